"""De-Pois: an attack-agnostic poisoning detector built from a trusted clean set.

Chen et al., "De-Pois: An Attack-Agnostic Defense against Data Poisoning Attacks", IEEE TIFS 2021.
From the trusted set ``S_c`` it (1) trains a conditional GAN and keeps the generated samples an
authenticator vouches for, growing ``S_c`` to ``S_aug`` (:mod:`.cgan`); (2) trains a conditional
WGAN-GP on ``S_aug`` whose critic is the detector (:mod:`.wgan_gp`); (3) scores ``S_c`` with the
critic and sets the boundary ``mean − k·std`` (population std, as in the reference code). A sample
whose score is under the boundary is rejected.

The critic is conditioned on a label. ``condition="claimed"`` (our default) uses the label that
arrives with the sample, so label flips score low. ``condition="predicted"`` uses the deployed
learner's prediction, as in the paper's evaluation; it only sees image-space poisons. In both modes
the boundary comes from the trusted set scored with its true labels, as the reference does.

**Threat model.** The defense never looks at attack code: it models clean data only. The critic is
differentiable (:meth:`DePois.score`), so a white-box attacker can optimise against it — the known
weakness (Oschart et al., "Breaking the De-Pois defense").

**Boundary refresh (opt-in, the ``refresh`` table).** Under natural drift clean data slides below a
boundary fitted once. With ``refresh = { every = n }`` the scores of accepted samples go into a rolling
buffer of ``refresh.window`` and every ``n`` accepted samples the boundary is recomputed over the
trusted scores plus that buffer. This opens a poisoning channel of its own: poisons that slip
through just above the boundary enter the buffer and drag its mean and std down, so each refresh
admits slightly worse samples (boundary creep). It is off by default; keep ``refresh.window`` small
relative to the trusted set if you turn it on.

**Reference-profile options (default off).** The attack paper's code (github:Oschart/Attack-On-DePois)
ran De-Pois differently in three ways; each can be switched on alone to measure what it changes:

* ``input_layout = "transposed"``: the critic scores every image with rows and columns swapped
  (``x.transpose(-1, -2)``) after training on upright ones — what the reference's
  ``K.set_image_data_format('channels_first')`` did to a critic that flattens a 28×28×1 input.
  Training is untouched, so a cached critic is reused.
* ``boundary_from = "test"``: the boundary is fitted on the run's held-out test split scored with
  its true labels (the runner calls :meth:`fit_boundary`), as the reference fitted it on the
  10,000 clean test images it then attacked. A leak by design: the defense sees the attacked images.
* ``reject_ties = True``: a score *equal* to the boundary is rejected too (``score <= boundary``).
* ``critic_weights = PATH``: no training; the critic's weights come from a safetensors file, e.g.
  the reference's own trained critic converted by ``tools/reference_critic.py``. The boundary is
  fitted as usual. (Not a reference *setting*: the cleanest test of everything but training.)

**Presets.** ``"paper"``: the reference's budgets (cGAN and authenticator 2,000 steps, WGAN-GP
10,000 steps of batch 32; about 25 CPU-minutes at one thread), S_c grown 5× by cGAN samples. ``"fast"``: 600
WGAN-GP steps at a higher learning rate on the trusted set alone (``augment.factor = 1.0``, no
cGAN): with a 500-step cGAN its samples made the critic fragile — near chance on some seeds and
datasets — and the trusted set alone was robust (docs/studies/depois.md, "Is De-Pois robust?"). Set
``augment = { factor = 5.0 }`` for the method as published. ``"tabular"``: for feature vectors, where
the networks are small MLPs (:mod:`.vector_networks`): 2× augmentation, 300 cGAN steps, 600
WGAN-GP steps of batch 64 with two critic steps each — tens of seconds for a few hundred trusted
rows of a dozen features on a busy 2-core machine. The training settings come in two tables,
``augment`` (:class:`AugmentSettings`: S_c → S_aug, the cGAN and its authenticator) and ``critic``
(:class:`CriticSettings`: the WGAN-GP), e.g. ``critic = { steps = 2000 }``; any setting left out
takes the preset's value. The flat keywords of earlier versions (``augment_factor``,
``wgan_steps``, ``refresh_every``, ...) are refused with their new spelling. Trained critics are
cached (see :func:`streamsim.cached_fit`).

A tiny (useless but quick) run:

>>> import torch
>>> from streamsim import Batch, SetupContext
>>> trusted = Batch.clean(torch.rand(40, 1, 28, 28) * 2 - 1, torch.arange(40) % 10)
>>> d = DePois(augment={"factor": 1.5, "cgan_steps": 2, "authenticator_steps": 2}, critic={"steps": 2})
>>> d.fit(trusted, learner=None, context=SetupContext(seed=0))
>>> v = d.screen(trusted)
>>> v.accept.dtype, len(v), d.score(trusted.x, trusted.labels).shape
(torch.bool, 40, torch.Size([40]))
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from defenses.depois import vector_networks
from defenses.depois.cgan import CGANSettings, authenticated_augmentation
from defenses.depois.networks import Critic
from defenses.depois.wgan_gp import WGANGPSettings, train_critic
from streamsim import Batch, ConfigError, Defense, Learner, SetupContext, Verdicts, cached_fit, settings_table

CACHE_KIND = "depois-critic"
CODE_VERSION = "2"  # bump whenever training changes what a given config produces (2: batched passes)

Preset = Literal["fast", "paper", "tabular"]
Condition = Literal["claimed", "predicted"]
InputLayout = Literal["upright", "transposed"]
BoundaryFrom = Literal["trusted", "test"]

#: Training settings per preset, by table. ``augment.factor`` is |S_aug| / |S_c| (paper: S_c is 20 % of the data).
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {
        "augment": {"factor": 5.0, "cgan_steps": 2000, "cgan_batch_size": 32, "cgan_lr": 2e-4,
                    "authenticator_steps": 2000, "authenticator_batch_size": 64, "authenticator_lr": 1e-3,
                    "floor": 0.3},
        "critic": {"steps": 10_000, "batch_size": 32, "n_critic": 5, "lr": 5e-5, "gp_weight": 10.0},
    },
    "fast": {
        # factor 1.0: no cGAN samples. A 500-step cGAN's samples made the fast critic fragile (ca − clean FRR
        # 0.11–0.25 against label flips over 2 seeds × 2 datasets); the trusted set alone gave 0.58–0.61.
        # See experiments/depois_robustness.py and docs/studies/depois.md, "Is De-Pois robust?".
        "augment": {"factor": 1.0, "cgan_steps": 500, "cgan_batch_size": 32, "cgan_lr": 2e-4,
                    "authenticator_steps": 100, "authenticator_batch_size": 64, "authenticator_lr": 1e-3,
                    "floor": 0.3},
        "critic": {"steps": 600, "batch_size": 32, "n_critic": 5, "lr": 2e-4, "gp_weight": 10.0},
    },
    "tabular": {
        "augment": {"factor": 2.0, "cgan_steps": 300, "cgan_batch_size": 64, "cgan_lr": 1e-3,
                    "authenticator_steps": 200, "authenticator_batch_size": 64, "authenticator_lr": 1e-3,
                    "floor": 0.0},
        "critic": {"steps": 600, "batch_size": 64, "n_critic": 2, "lr": 1e-3, "gp_weight": 10.0},
    },
}


def _positive(table: object, names: tuple[str, ...]) -> None:
    """Each named field is unset (the preset's) or > 0; the message names the first that is not."""
    for name in names:
        value = getattr(table, name)
        if value is not None and not value > 0:
            raise ConfigError(f"{name} must be > 0 (or left out: the preset's), got {value}")


@dataclass(frozen=True)
class AugmentSettings:
    """The ``augment`` table: how the trusted set S_c grows to S_aug (:mod:`.cgan`). Unset: the preset's.

    ``factor`` is |S_aug| / |S_c| (1.0: no cGAN samples); the cGAN and the authenticator train for
    ``*_steps`` batches of ``*_batch_size`` at ``*_lr``; synthetic pixels under ``floor`` (0–1
    scale) are set to black.
    """

    factor: float | None = None
    cgan_steps: int | None = None
    cgan_batch_size: int | None = None
    cgan_lr: float | None = None
    authenticator_steps: int | None = None
    authenticator_batch_size: int | None = None
    authenticator_lr: float | None = None
    floor: float | None = None

    def __post_init__(self) -> None:
        if self.factor is not None and self.factor < 1:
            raise ConfigError(f"factor must be >= 1 (S_aug includes S_c), got {self.factor}")
        _positive(self, ("cgan_batch_size", "authenticator_batch_size", "cgan_lr", "authenticator_lr"))
        if self.floor is not None and not 0 <= self.floor <= 1:
            raise ConfigError(f"floor must be in [0, 1], got {self.floor}")


@dataclass(frozen=True)
class CriticSettings:
    """The ``critic`` table: the conditional WGAN-GP whose critic is the detector (:mod:`.wgan_gp`).
    Unset: the preset's. ``steps`` generator steps of ``batch_size``, ``n_critic`` critic steps
    each, learning rate ``lr``, gradient penalty weight ``gp_weight``."""

    steps: int | None = None
    batch_size: int | None = None
    n_critic: int | None = None
    lr: float | None = None
    gp_weight: float | None = None

    def __post_init__(self) -> None:
        _positive(self, ("batch_size", "n_critic", "lr"))
        if self.gp_weight is not None and self.gp_weight < 0:
            raise ConfigError(f"gp_weight must be >= 0, got {self.gp_weight}")


@dataclass(frozen=True)
class RefreshSettings:
    """The ``refresh`` table (opt-in): every ``every`` accepted samples, refit the boundary over the
    trusted scores plus the last ``window`` accepted ones. ``every`` unset: never."""

    every: int | None = None
    window: int = 1000

    def __post_init__(self) -> None:
        if self.every is not None and self.every < 1:
            raise ConfigError(f"every must be a positive number of samples, got {self.every}")
        if self.window < 1:
            raise ConfigError(f"window must be >= 1, got {self.window}")


DEFAULT_AUGMENT, DEFAULT_CRITIC, DEFAULT_REFRESH = AugmentSettings(), CriticSettings(), RefreshSettings()
#: The flat keywords of earlier versions and their place in the tables now.
RENAMED = {
    "augment_factor": "augment.factor", "synthetic_floor": "augment.floor",
    **{k: f"augment.{k}" for k in ("cgan_steps", "cgan_batch_size", "cgan_lr", "authenticator_steps",
                                   "authenticator_batch_size", "authenticator_lr")},
    "wgan_steps": "critic.steps", "wgan_batch_size": "critic.batch_size", "wgan_lr": "critic.lr",
    "n_critic": "critic.n_critic", "gp_weight": "critic.gp_weight",
    "refresh_every": "refresh.every", "refresh_window": "refresh.window",
}


def _frozen(critic: Critic) -> Critic:
    """In eval mode, no gradients piling up in the weights; gradients still flow to the inputs (white-box attacks)."""
    critic.zero_grad(set_to_none=True)
    return critic.eval().requires_grad_(False)


def _fingerprint(x: torch.Tensor, y: torch.Tensor) -> str:
    """sha256 of the trusted data itself, so a cache hit needs the very same samples."""
    h = hashlib.sha256()
    h.update(x.detach().cpu().contiguous().float().numpy().tobytes())
    h.update(y.detach().cpu().contiguous().long().numpy().tobytes())
    return h.hexdigest()


class DePois(Defense):
    """De-Pois (Chen et al. 2021): a conditional WGAN-GP critic on trusted data (cGAN-augmented in the paper preset)."""

    accepts = ("images", "vectors")
    renamed: ClassVar[dict[str, str]] = RENAMED

    def __init__(
        self,
        preset: Preset = "fast",
        condition: Condition = "claimed",
        k: float = 1.0,
        augment: AugmentSettings | Mapping[str, Any] = DEFAULT_AUGMENT,
        critic: CriticSettings | Mapping[str, Any] = DEFAULT_CRITIC,
        refresh: RefreshSettings | Mapping[str, Any] = DEFAULT_REFRESH,
        input_layout: InputLayout = "upright",
        boundary_from: BoundaryFrom = "trusted",
        reject_ties: bool = False,
        critic_weights: str | None = None,
    ) -> None:
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, not {preset!r}")
        if condition not in ("claimed", "predicted"):
            raise ValueError(f"condition must be 'claimed' or 'predicted', not {condition!r}")
        if input_layout not in ("upright", "transposed"):
            raise ValueError(f"input_layout must be 'upright' or 'transposed', not {input_layout!r}")
        if boundary_from not in ("trusted", "test"):
            raise ValueError(f"boundary_from must be 'trusted' or 'test', not {boundary_from!r}")
        self.preset = preset
        self.condition = condition
        self.k = k
        self.augment = settings_table(AugmentSettings, augment, "augment")
        self.critic = settings_table(CriticSettings, critic, "critic")
        self.refresh = settings_table(RefreshSettings, refresh, "refresh")
        self.input_layout = input_layout
        self.boundary_from = boundary_from
        self.reject_ties = reject_ties
        self.critic_weights = critic_weights
        # fitted state
        self._critic: Critic | None = None
        self._device = torch.device("cpu")
        self._learner: Learner | None = None
        self._trusted_scores = torch.empty(0)
        self._recent_scores = torch.empty(0)
        self._since_refresh = 0
        self._boundary = float("nan")
        self.loaded_from_cache = False

    @classmethod
    def _unit_test_params(cls) -> dict[str, Any]:
        """Settings cheap enough for a unit test (streamsim.testing): a few steps of each network."""
        return {"augment": {"factor": 1.5, "cgan_steps": 3, "authenticator_steps": 3}, "critic": {"steps": 3}}

    def __repr__(self) -> str:
        set_: dict[str, Any] = {"preset": self.preset, "condition": self.condition, "k": self.k}
        for table in ("augment", "critic"):
            fields = {k: v for k, v in asdict(getattr(self, table)).items() if v is not None}
            if fields:
                set_[table] = fields
        reference = {"input_layout": "upright", "boundary_from": "trusted", "reject_ties": False,
                     "critic_weights": None}
        set_ |= {name: getattr(self, name) for name, default in reference.items() if getattr(self, name) != default}
        return "DePois(" + ", ".join(f"{n}={v!r}" for n, v in set_.items()) + ")"

    # --- settings ---------------------------------------------------------------------------
    def training_config(self) -> dict[str, dict[str, Any]]:
        """The ``augment`` and ``critic`` tables with every unset (``None``) setting replaced by the preset's."""
        return {table: {name: value if (value := getattr(getattr(self, table), name)) is not None else preset_value
                        for name, preset_value in PRESETS[self.preset][table].items()}
                for table in ("augment", "critic")}

    def _settings(self) -> tuple[CGANSettings, WGANGPSettings]:
        c = self.training_config()
        a, w = c["augment"], c["critic"]
        cgan = CGANSettings(
            steps=a["cgan_steps"], batch_size=a["cgan_batch_size"], lr=a["cgan_lr"],
            authenticator_steps=a["authenticator_steps"], authenticator_batch_size=a["authenticator_batch_size"],
            authenticator_lr=a["authenticator_lr"], floor=a["floor"],
        )
        wgan = WGANGPSettings(steps=w["steps"], batch_size=w["batch_size"], n_critic=w["n_critic"], lr=w["lr"],
                              gp_weight=w["gp_weight"])
        return cgan, wgan

    # --- fitting ----------------------------------------------------------------------------
    def fit(self, trusted: Batch, learner: Learner, context: SetupContext) -> None:
        """Train (or load from ``context.cache``) the critic on ``trusted`` and set the boundary."""
        x, y = trusted.x.detach().float(), trusted.labels.detach().long()
        if len(x) == 0:
            raise ValueError("De-Pois needs a non-empty trusted set")
        self._learner = learner
        cgan_settings, wgan_settings = self._settings()
        key = {
            "data_key": context.data_key,
            "data_sha256": _fingerprint(x, y),
            "config": {"cgan": asdict(cgan_settings), "wgan_gp": asdict(wgan_settings),
                       "augment_factor": self.training_config()["augment"]["factor"]},
            "seed": context.seed,
            "code_version": CODE_VERSION,
        }
        space = context.space
        if space.kind == "vectors":  # the networks are sized to the data (images keep their old keys)
            key["space"] = {"features": space.n_features, "classes": space.n_classes}

        self._device = torch.device(context.device)
        xd, yd = x.to(self._device), y.to(self._device)  # moved once: training samples its batches there

        def fit() -> Critic:
            augment_seed, critic_seed = np.random.SeedSequence(context.seed).generate_state(2).tolist()
            n_synthetic = round((key["config"]["augment_factor"] - 1) * len(x))
            xs, ys = authenticated_augmentation(xd, yd, n_synthetic, cgan_settings, augment_seed, context.progress,
                                                space)
            return _frozen(train_critic(torch.cat([xd, xs]), torch.cat([yd, ys]), wgan_settings, critic_seed,
                                        context.progress, space))

        def load(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Critic:
            tensors.pop("trusted_scores", None)  # recomputed from the weights, so it always matches them
            critic = vector_networks.critic(space)
            critic.load_state_dict(tensors, strict=True)
            return _frozen(critic.to(self._device))

        def save(critic: Critic) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            with torch.no_grad():
                scores = critic(xd, yd)  # stored for inspection only
            tensors = {**critic.state_dict(), "trusted_scores": scores}
            return {k: v.cpu() for k, v in tensors.items()}, {"defense": repr(self), "n_trusted": len(x)}

        if self.critic_weights is not None:
            self._critic, self.loaded_from_cache = _frozen(self._load_weights().to(self._device)), True
        else:
            self._critic, self.loaded_from_cache = cached_fit(context.cache, CACHE_KIND, key, fit=fit, load=load,
                                                              save=save)
        self.fit_boundary(trusted)

    def _load_weights(self) -> Critic:
        """The critic from ``critic_weights`` (safetensors: loading runs no code), checked against the network."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            tensors = load_file(self.critic_weights)
        except (OSError, SafetensorError) as e:
            raise ConfigError(f"defense.params.critic_weights {self.critic_weights!r}: cannot read it as safetensors ({e})") from None
        critic = Critic()
        try:
            critic.load_state_dict(tensors, strict=True)
        except RuntimeError as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ConfigError(f"defense.params.critic_weights {self.critic_weights!r}: not a De-Pois critic ({first})") from None
        return critic

    def fit_boundary(self, clean: Batch) -> None:
        """Set the boundary at ``mean − k·std`` of the critic's scores of ``clean`` with its true labels.

        :meth:`fit` calls it on the trusted set; with ``boundary_from = "test"`` the runner calls
        it again on the held-out test split. The refresh buffer starts empty either way.
        """
        with torch.no_grad():
            self._trusted_scores = self.conditioned_score(clean.x.detach().float(), clean.labels.detach().long()).cpu()
        self._recent_scores = torch.empty(0)
        self._since_refresh = 0
        self._boundary = self._boundary_of(self._trusted_scores)

    def _boundary_of(self, scores: torch.Tensor) -> float:
        return float(scores.mean() - self.k * scores.std(correction=0))

    # --- screening --------------------------------------------------------------------------
    def _fitted_critic(self) -> Critic:
        if self._critic is None:
            raise RuntimeError("DePois is not fitted; call fit(trusted, learner, context) first")
        return self._critic

    @property
    def boundary(self) -> float:
        """Scores strictly under this are rejected (and equal ones too with ``reject_ties``):
        ``mean − k·std`` of the trusted (and refresh) scores; NaN before fit."""
        return self._boundary

    @property
    def trusted_scores(self) -> torch.Tensor:
        """The critic's scores of what the boundary was fitted on (the trusted set, or the test split)."""
        return self._trusted_scores

    def _condition(self, x: torch.Tensor, claimed: torch.Tensor) -> torch.Tensor:
        """The labels the critic is conditioned on: ``claimed``, or the deployed learner's predictions."""
        if self.condition == "claimed":
            return claimed.long()
        if self._learner is None:
            raise RuntimeError("DePois(condition='predicted') needs the learner it was fitted with")
        with torch.no_grad():
            return self._learner.predict(x).long()

    def score(self, x: torch.Tensor, claimed: torch.Tensor) -> torch.Tensor:
        """The critic's realness score of submitting ``x`` with labels ``claimed``, conditioned as
        :meth:`screen` conditions (differentiable in ``x``)."""
        return self.conditioned_score(x, self._condition(x, claimed))

    def conditioned_score(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The critic's realness score of ``x`` as a sample of class ``labels`` (differentiable in ``x``)."""
        critic = self._fitted_critic()
        seen = x.transpose(-1, -2) if self.input_layout == "transposed" else x
        return critic(seen.to(self._device), labels.long().to(self._device)).to(x.device)

    def screen(self, batch: Batch) -> Verdicts:
        with torch.no_grad():
            scores = self.conditioned_score(batch.x, self._condition(batch.x, batch.labels))
        accept = scores > self._boundary if self.reject_ties else scores >= self._boundary
        return Verdicts(accept=accept, score=scores)

    def after_learn(self, accepted: Batch) -> None:
        """With ``refresh.every`` set: buffer accepted scores and refit the boundary periodically."""
        if self.refresh.every is None or len(accepted) == 0:
            return
        with torch.no_grad():
            scores = self.score(accepted.x, accepted.labels)
        self._recent_scores = torch.cat([self._recent_scores, scores])[-self.refresh.window:]
        self._since_refresh += len(accepted)
        if self._since_refresh >= self.refresh.every:
            self._since_refresh = 0
            self._boundary = self._boundary_of(torch.cat([self._trusted_scores, self._recent_scores]))

    def checkpoint_state(self) -> dict[str, Any]:
        """The boundary and its refresh buffer. The critic is not stored: fit rebuilds it, seeded and cached."""
        self._fitted_critic()
        return {"boundary": self._boundary, "recent_scores": self._recent_scores.clone(),
                "since_refresh": self._since_refresh}

    def restore_state(self, state: dict[str, Any]) -> None:
        self._fitted_critic()
        self._boundary = float(state["boundary"])
        self._recent_scores = state["recent_scores"].clone()
        self._since_refresh = int(state["since_refresh"])
