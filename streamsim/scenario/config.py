"""Scenario files: TOML in, validated once with pydantic, fully resolved TOML out.

>>> s = Scenario.model_validate({"name": "t", "clean": [{"batch_size": 8}]})
>>> s.defense.name, s.clean[0].arrival
('none', 'fixed')
>>> apply_override({"a": {"b": 1}}, "a.b=2.5")
{'a': {'b': 2.5}}
"""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from streamsim.core.errors import ConfigError
from streamsim.files.reading import read_text


def _builtin_scenario_dir() -> Path:
    # One copy, the repository's top-level scenarios/: a wheel carries it as package data beside this
    # module (setup.py maps it to streamsim/scenario/builtin); a source checkout or editable install
    # reads it in place.
    here = Path(__file__).resolve().parent
    installed = here / "builtin"
    return installed if installed.is_dir() else here.parent.parent / "scenarios"


SCENARIO_DIR = _builtin_scenario_dir()
MAX_THREADS = 1024
MAX_DEPTH = 32  # tables and lists nested deeper than this are refused (and never reach a recursive parser)
MAX_SCENARIO_BYTES = 1 << 20  # a scenario file is settings (kilobytes): a larger one is not a scenario
MAX_SOURCES = 10_000  # clean and attacker sources together, counted before any of them is validated


class _Strict(BaseModel):
    # strict: TOML is typed, so "32" for a number is a mistake to report, not to coerce
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class PluginRef(_Strict):
    """A registered plugin name (``depois``) or ``module:attr`` (imports that module), plus its settings."""

    name: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


class PerBatch(_Strict):
    """One learning step (``steps_per_batch`` of them) on each batch's accepted samples, alone."""

    policy: Literal["per-batch"] = "per-batch"


class PerSample(_Strict):
    """One learning step per accepted sample, in arrival order."""

    policy: Literal["per-sample"]


class Buffered(_Strict):
    """Accepted samples wait in a buffer; every ``every`` samples and/or every ``interval`` time units
    the learner takes ``steps`` steps on shuffled mini-batches of ``batch_size`` drawn from it, then
    the buffer is emptied."""

    policy: Literal["buffered"]
    every: int | None = Field(None, gt=0, le=10_000_000, description="update once this many samples are buffered")
    interval: float | None = Field(None, gt=0, description="update every this many time units (if anything is buffered)")
    steps: int = Field(1, gt=0, le=100_000, description="learning steps per update")
    batch_size: int = Field(64, gt=0, le=100_000, description="samples per step, drawn from the buffer")

    @model_validator(mode="after")
    def _when(self) -> Buffered:
        if self.every is None and self.interval is None:
            raise ValueError("buffered updates need every (samples) or interval (time units), or both")
        return self


class Replay(_Strict):
    """Each accepted batch is learned mixed with samples replayed from a reservoir of earlier accepted
    samples (``capacity`` of them, a uniform sample of everything accepted so far): ``mix`` is the
    replayed share of each step's batch."""

    policy: Literal["replay"]
    capacity: int = Field(1024, gt=0, le=10_000_000, description="samples the reservoir holds")
    mix: float = Field(0.5, ge=0, le=0.95, description="share of each step's batch replayed from the reservoir")


class WindowRetrain(_Strict):
    """Every ``interval`` time units the learner is reset to its pretrained weights and retrained for
    ``epochs`` shuffled epochs of ``batch_size`` on the last ``window`` accepted samples."""

    policy: Literal["window-retrain"]
    interval: float = Field(gt=0, description="retrain every this many time units")
    window: int = Field(1024, gt=0, le=10_000_000, description="the most recent accepted samples retrained on")
    epochs: int = Field(1, gt=0, le=10_000)
    batch_size: int = Field(64, gt=0, le=100_000)


UpdatePolicy = Annotated[PerBatch | PerSample | Buffered | Replay | WindowRetrain, Field(discriminator="policy")]


class LearnerRef(PluginRef):
    """The learner plugin, and ``update``: when and on what it learns (:mod:`streamsim.simulation.parts.updates`)."""

    update: UpdatePolicy = Field(default_factory=PerBatch)


class Splits(_Strict):
    """Fractions of the dataset for each role; drawn without overlap from one seeded permutation.

    They may add up to less than 1 (a quick run on part of a large dataset): the rest is left unused,
    which ``streamsim validate`` reports. More than 1 is refused.
    """

    pretrain: float = Field(0.2, ge=0, le=1)
    trusted: float = Field(0.2, ge=0, le=1)
    stream: float = Field(0.3, ge=0, le=1)
    attacker: float = Field(0.1, ge=0, le=1)
    test: float = Field(0.2, gt=0, le=1)

    def unused(self) -> float:
        """The share of the dataset no role gets.

        >>> round(Splits(pretrain=0.1, trusted=0.1, stream=0.3, attacker=0.1, test=0.2).unused(), 3)
        0.2
        """
        return max(0.0, 1.0 - (self.pretrain + self.trusted + self.stream + self.attacker + self.test))

    @model_validator(mode="after")
    def _sum_to_at_most_one(self) -> Splits:
        total = self.pretrain + self.trusted + self.stream + self.attacker + self.test
        if total > 1 + 1e-9:
            raise ValueError(f"split fractions add up to {total:g}, more than 1")
        return self


class Scaling(_Strict):
    """Feature scaling of a vector dataset: each feature's ``lo..hi`` (raw units) maps to ``[-1, 1]``.

    Fitted on the pretrain split when a scenario does not give it, and written into the resolved
    scenario; ``kinds`` says which features are ``real``, ``integer`` or ``binary``.
    """

    lo: list[float]
    hi: list[float]
    kinds: list[Literal["real", "integer", "binary"]]

    @model_validator(mode="after")
    def _same_length(self) -> Scaling:
        if not len(self.lo) == len(self.hi) == len(self.kinds) or not self.lo:
            raise ValueError("lo, hi and kinds must be non-empty and of the same length")
        if any(h < lo for lo, h in zip(self.lo, self.hi, strict=True)):
            raise ValueError("every hi must be >= its lo")
        return self


class DataConfig(_Strict):
    dataset: str = "mnist-5k"
    root: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="settings of river/sklearn/synthetic datasets")
    scaling: Scaling | None = Field(None, description="feature vectors only: fitted on pretrain when unset")
    splits: Splits = Field(default_factory=Splits)
    eval_size: int | None = Field(None, gt=0, description="evaluate on this many test samples (all when unset)")


class PriorShift(_Strict):
    at: float = Field(ge=0)
    priors: list[float] = Field(min_length=2, max_length=1000, description="one weight per class")

    @model_validator(mode="after")
    def _positive(self) -> PriorShift:
        if any(p < 0 for p in self.priors) or sum(self.priors) <= 0:
            raise ValueError("priors must be non-negative and not all zero")
        return self


class Drift(_Strict):
    """Natural drift of a clean source: images rotate gradually; class priors change at a time."""

    rotation_per_time: float = Field(0.0, ge=-90, le=90, description="degrees added per simulated time unit")
    max_rotation: float = Field(90.0, ge=0, le=180)
    prior_shift: PriorShift | None = None


class _Source(_Strict):
    name: str = Field("", description="unique source name; defaults to clean-N / attack-N")
    batch_size: int = Field(32, gt=0, le=100_000)
    arrival: Literal["fixed", "poisson"] = "fixed"
    interval: float = Field(1.0, gt=0, description="time between batches (fixed arrivals)")
    rate: float = Field(1.0, gt=0, description="batches per time unit (poisson arrivals)")
    start: float = Field(0.0, ge=0)
    stop: float | None = Field(None, ge=0)
    budget: int | None = Field(None, gt=0, description="total samples this source may send")


class CleanSource(_Source):
    drift: Drift = Field(default_factory=Drift)


class AttackerSource(_Source):
    attack: PluginRef = Field(default_factory=lambda: PluginRef(name="label-flip"))
    pool: Literal["attacker", "test"] = Field("attacker", description="split the base samples come from")
    query_budget: int | None = Field(None, ge=0, description="queries to the target (samples); unlimited when unset")
    feedback_delay: float = Field(0.0, ge=0, description="observations (verdicts, or that the batch was processed) "
                                  "reach the attacker this much later")
    feedback_flip: float = Field(0.0, ge=0, le=1, description="probability each verdict reaches it flipped")
    effects_proba: bool = Field(False, description="'effects' attackers may query probabilities, not only labels")
    announce_processed: bool = Field(True, description="the attacker is told when each of its batches was processed "
                                     "(an observation without verdicts, feedback_delay after screening); false "
                                     "withholds it from attackers that see no verdicts (see streamsim.simulation.threat)")
    training_data: bool = Field(False, description="the attacker holds the target classifier's training data (the "
                                "pretrain split), as the reference's black-box distiller did; attacks see it as "
                                "context.training")


class MetricsConfig(_Strict):
    window: int = Field(10, gt=0, description="attacker batches in the windowed ca/da")
    adwin_delta: float = Field(0.002, gt=0, lt=1)


class Scenario(_Strict):
    name: str = "scenario"
    description: str = ""
    seed: int = Field(0, ge=0, lt=2**63)
    duration: float = Field(100.0, gt=0, le=1e7)
    eval_every: float = Field(10.0, gt=0)
    baseline: bool = Field(True, description="also run the no-attack baseline (same seed, no attackers)")
    data: DataConfig = Field(default_factory=DataConfig)
    learner: LearnerRef = Field(default_factory=lambda: LearnerRef(name="small-cnn"))
    defense: PluginRef = Field(default_factory=lambda: PluginRef(name="none"))
    clean: list[CleanSource] = Field(default_factory=lambda: [CleanSource()])
    attackers: list[AttackerSource] = Field(default_factory=list)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    threads: int = Field(1, ge=1, le=MAX_THREADS, description="torch intra-op threads for training and crafting; "
                         "part of the scenario because the numbers depend on it")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "cpu", description="where torch networks train and run: cpu (the reproducible reference), cuda (refused "
        "without a GPU) or auto (cuda when there is one)")

    @model_validator(mode="before")
    @classmethod
    def _few_sources(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            n = sum(len(raw[key]) for key in ("clean", "attackers") if isinstance(raw.get(key), list))
            if n > MAX_SOURCES:
                raise ValueError(f"{n:,} clean and attacker sources, more than the limit of {MAX_SOURCES:,}")
        return raw

    @model_validator(mode="after")
    def _name_sources(self) -> Scenario:
        for i, s in enumerate(self.clean):
            s.name = s.name or f"clean-{i}"
        for i, s in enumerate(self.attackers):
            s.name = s.name or f"attack-{i}"
        counts = Counter(s.name for s in [*self.clean, *self.attackers])  # linear: 200,000 sources must not hang
        dupes = sorted(n for n, c in counts.items() if c > 1)
        if dupes:
            raise ValueError(f"source names must be unique, repeated: {', '.join(dupes)}")
        if not self.clean and not self.attackers:
            raise ValueError("a scenario needs at least one source")
        return self

    def resolved_toml(self) -> str:
        return tomli_w.dumps(_drop_none(self.model_dump(mode="json")))


def _drop_none(value: Any) -> Any:
    # TOML has no null: an unset optional is written by leaving the key out.
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _format_validation_error(err: ValidationError, where: str) -> str:
    first = err.errors()[0]
    path = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "union_tag_not_found":  # a table that names none of its kinds (learner.update)
        msg = f"missing the key {first.get('ctx', {}).get('discriminator', '?')} that says which kind it is"
    more = len(err.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{where}: {path}: {msg}{tail}"


def parse_value(text: str) -> Any:
    """A TOML literal (``3``, ``0.5``, ``true``, ``[1, 2]``, ``"x"``), else the raw string."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    except RecursionError:
        raise ConfigError(f"value {text[:40]!r}...: nested more than {MAX_DEPTH} levels deep") from None
    check_depth(value, "value")
    return value


def check_depth(value: Any, where: str, depth: int = 0) -> None:
    """Refuse data nested more than :data:`MAX_DEPTH` levels (a recursion bomb, not a scenario),
    and strings with NUL characters (no path or name may hold one).

    >>> check_depth({"a": [[1]]}, "x")
    >>> check_depth(eval("[" * 40 + "]" * 40), "x")
    Traceback (most recent call last):
    ...
    streamsim.core.errors.ConfigError: x: nested more than 32 levels deep
    """
    if depth > MAX_DEPTH:
        raise ConfigError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str) and "\x00" in value:
        raise ConfigError(f"{where}: {value[:40]!r} holds a NUL character")
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        check_depth(child, where, depth + 1)


def apply_override(raw: dict[str, Any], assignment: str) -> dict[str, Any]:
    """Set ``key.path=value`` in a raw scenario dict; list items are addressed by index."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected key.path=value")
    key, _, text = assignment.partition("=")
    return set_path(raw, key.strip().split("."), parse_value(text.strip()))


def set_path(raw: dict[str, Any], parts: list[str], value: Any) -> dict[str, Any]:
    """Set a nested key (tables by name, lists by index), creating missing tables."""
    key = ".".join(parts)
    if not parts or not all(parts):
        raise ConfigError(f"override {key!r}: empty key in path")
    node: Any = raw
    for i, part in enumerate(parts):
        here = ".".join(parts[: i + 1])
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override {key}: {here} is not an index into a list of {len(node)}")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise ConfigError(f"override {key}: {'.'.join(parts[:i])} is not a table")
    return raw


def resolve_path(path_or_name: str | Path) -> Path:
    """A scenario path, or the name of a built-in scenario (``scenarios/``, shipped in the wheel too)."""
    p = Path(path_or_name)
    if p.is_file():
        return p
    builtin = SCENARIO_DIR / f"{path_or_name}.toml"
    if builtin.is_file():
        return builtin
    raise ConfigError(f"scenario {str(path_or_name)!r} not found (no such file, and no built-in scenario of that name)")


def read_raw(path_or_name: str | Path) -> tuple[dict[str, Any], str]:
    path = resolve_path(path_or_name)
    try:
        text = read_text(path, MAX_SCENARIO_BYTES)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or type(e).__name__})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested more than Python's recursion limit") from None
    check_depth(raw, str(path))
    return raw, str(path)


def validate(raw: dict[str, Any], where: str = "scenario") -> Scenario:
    check_depth(raw, where)
    try:
        return Scenario.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(e, where)) from None


def load_scenario(
    path_or_name: str | Path | dict[str, Any] | Scenario,
    overrides: list[str] | tuple[str, ...] = (),
    values: dict[str, Any] | None = None,
) -> Scenario:
    """Read, override and validate a scenario (a path, a built-in name, a dict or a Scenario).

    ``overrides`` are ``key.path=value`` strings (the CLI's ``--set``); ``values`` maps dotted
    key paths to already-typed values (the Python API's keyword arguments).
    """
    if isinstance(path_or_name, Scenario):
        path_or_name = path_or_name.model_dump(mode="json")
    if isinstance(path_or_name, dict):
        import copy

        raw, where = copy.deepcopy(path_or_name), "scenario"
    else:
        raw, where = read_raw(path_or_name)
    for assignment in overrides:
        apply_override(raw, assignment)
    for key, value in (values or {}).items():
        set_path(raw, key.split("."), value)
    return validate(raw, where)

