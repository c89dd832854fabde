"""Tabular and synthetic streams that ship with river and scikit-learn: nothing downloads.

A scenario names them with a prefix, and passes settings in ``data.params``:

- ``river:NAME`` — river's bundled real datasets: ``Phishing`` (1,250 web pages, 9 features,
  phishing or not), ``Shuttle`` (49,097 NASA shuttle sensor readings, 9 integer features,
  anomalous or not: an intrusion-style stream), ``ImageSegments`` (2,310 image regions, 18
  features, 7 classes), ``Bananas`` (5,300 points, 2 features, 2 classes).
- ``sklearn:NAME`` — scikit-learn's bundled ``breast_cancer`` (569 × 30, 2 classes), ``wine``
  (178 × 13, 3 classes), ``digits`` (1,797 8×8 digits as vectors of 64, 10 classes), ``iris``.
- ``river.synth:NAME`` — river's generators (``SEA``, ``Agrawal``, ``Hyperplane``,
  ``RandomRBF``, ``RandomRBFDrift``, ``LED``, ``LEDDrift``, ``STAGGER``, ``Sine``, ``Mixed``,
  ``Waveform``, ``ConceptDriftStream``...) with their own parameters; ``size`` (default 5,000) is
  how many samples to draw, and the seed comes from the run's seed unless ``params`` gives one.
  A generator parameter that is itself a generator (``ConceptDriftStream``'s ``stream`` and
  ``drift_stream``) is a table with a ``name``: ``{ name = "SEA", variant = 2 }``.

Every loader returns :class:`~streamsim.data.datasets.RawData` with float64 features, labels
mapped to ``0..K-1`` (sorted class names; ``False``/``True`` → 0/1) and the feature names. A
synthetic stream is *ordered*: its samples keep their time order, and ``ConceptDriftStream``'s
``position`` is recorded as a concept change (natural drift) that reports mark.

``size`` also caps the real datasets (the first ``size`` samples).

>>> raw = load("river.synth:SEA", {"size": 200, "variant": 1}, seed=0)
>>> raw.x.shape, raw.n_classes, raw.ordered, raw.feature_names
((200, 3), 2, True, ('0', '1', '2'))
>>> load("river.synth:ConceptDriftStream", {"size": 100, "position": 60, "width": 10,
...      "stream": {"name": "SEA", "variant": 0}, "drift_stream": {"name": "SEA", "variant": 3}}, 0).concept_changes
(60,)
"""

from __future__ import annotations

import functools
import inspect
import itertools
import json
import math
from typing import Any

import numpy as np

from streamsim.core.errors import DataError
from streamsim.data.datasets import RawData

PREFIXES = ("river:", "sklearn:", "river.synth:")
RIVER_BUNDLED = ("Bananas", "ImageSegments", "Phishing", "Shuttle")
SKLEARN_BUNDLED = ("breast_cancer", "digits", "iris", "wine")
SYNTH = ("Agrawal", "AnomalySine", "ConceptDriftStream", "Hyperplane", "LED", "LEDDrift", "Logical", "Mixed",
         "RandomRBF", "RandomRBFDrift", "RandomTree", "SEA", "STAGGER", "Sine", "Waveform")
DEFAULT_SIZE = 5_000
MAX_SIZE = 1_000_000
SEED_NAMES = ("seed", "seed_model", "seed_sample", "seed_tree")
# Generator settings that set how much work drawing samples takes, and their limits: a generator's
# own checks stop wrong types, these stop a million centroids or features that would never finish.
SYNTH_LIMITS = {"n_features": 1_000, "n_num_features": 1_000, "n_cat_features": 1_000,
                "n_categories_per_feature": 100, "n_centroids": 1_000, "n_drift_centroids": 1_000, "n_tiles": 1_000}
MAX_VALUES = 20_000_000  # size × features drawn from a generator
MAX_TREE_NODES = 1_000_000  # RandomTree's largest possible tree (it is built node by node, recursively)


def is_tabular(ref: str) -> bool:
    """Whether a dataset reference names one of these loaders."""
    return ref.startswith(PREFIXES)


def load(ref: str, params: dict[str, Any], seed: int) -> RawData:
    """The dataset ``ref`` (``river:Phishing``, ``sklearn:wine``, ``river.synth:SEA``...) with ``params``."""
    # Loaded by the checks before a run and by the run itself: parse once per process.
    return _load(ref, json.dumps(params, sort_keys=True), seed)


@functools.lru_cache(maxsize=4)
def _load(ref: str, params_json: str, seed: int) -> RawData:
    params = json.loads(params_json)
    size = params.pop("size", None)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_SIZE):
        raise DataError(f"data.params.size: {size!r} is not a sample count in 1..{MAX_SIZE:,}")
    prefix, _, name = ref.partition(":")
    if prefix == "river.synth":
        return _synth(name, params, size or DEFAULT_SIZE, seed)
    if params:
        raise DataError(f"data.params: {ref} takes only size, got {', '.join(sorted(params))}")
    if prefix == "river":
        return _river(name, size)
    return _sklearn(name, size)


def _choose(name: str, known: tuple[str, ...], ref: str) -> str:
    if name not in known:
        raise DataError(f"dataset {ref!r}: unknown; known: {', '.join(known)}")
    return name


def _rows_to_arrays(rows: list[tuple[dict[Any, Any], Any]], where: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], int]:
    if not rows:
        raise DataError(f"{where}: no samples")
    names = list(rows[0][0])
    try:
        x = np.array([[float(r[0][k]) for k in names] for r in rows], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{where}: features must be numbers present in every sample ({type(e).__name__}: {e})") from None
    y, n_classes = _class_indices([r[1] for r in rows])
    return x, y, tuple(str(n) for n in names), n_classes


def _class_indices(labels: list[Any], n_classes: int | None = None) -> tuple[np.ndarray, int]:
    """Labels as 0..K-1: integers (and booleans) as they are when they already are 0..K-1, else by sorted name."""
    values = [int(v) if isinstance(v, bool | np.bool_) else v for v in labels]
    if all(isinstance(v, int | np.integer) for v in values) and min(values) >= 0:
        y = np.asarray(values, dtype=np.int64)
        return y, max(int(y.max()) + 1, n_classes or 0, 2)
    classes = sorted({str(v) for v in values})
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[str(v)] for v in values], dtype=np.int64), max(len(classes), 2)


def _river(name: str, size: int | None) -> RawData:
    from river import datasets

    ref = f"river:{name}"
    dataset = getattr(datasets, _choose(name, RIVER_BUNDLED, ref))()
    x, y, names, n_classes = _rows_to_arrays(list(itertools.islice(dataset, size)), ref)
    return RawData(x, y, f"{ref} (river {_version('river')})", n_classes, names)


def _sklearn(name: str, size: int | None) -> RawData:
    from sklearn import datasets

    ref = f"sklearn:{name}"
    bunch = getattr(datasets, f"load_{_choose(name, SKLEARN_BUNDLED, ref)}")()
    x, y = np.asarray(bunch.data, dtype=np.float64)[:size], np.asarray(bunch.target, dtype=np.int64)[:size]
    names = tuple(str(n) for n in getattr(bunch, "feature_names", [])) or tuple(f"x{i}" for i in range(x.shape[1]))
    return RawData(x, y, f"{ref} (scikit-learn {_version('sklearn')})", int(len(bunch.target_names)), names)


def _version(module: str) -> str:
    import importlib

    return str(getattr(importlib.import_module(module), "__version__", "?"))


def _generator(name: str, params: dict[str, Any], seed: int, where: str) -> tuple[Any, list[int]]:
    """A seeded river generator and the positions of the concept changes it announces."""
    from river.datasets import synth

    cls = getattr(synth, _choose(name, SYNTH, f"river.synth:{name}"))
    params, changes = dict(params), []
    for key in ("stream", "drift_stream"):
        sub = params.get(key)
        if isinstance(sub, dict):
            sub = dict(sub)
            sub_name = sub.pop("name", None)
            if not isinstance(sub_name, str):
                raise DataError(f"{where}.{key}: a generator table needs a name, e.g. {{ name = \"SEA\" }}")
            params[key], sub_changes = _generator(sub_name, sub, seed + (1 if key == "drift_stream" else 0), f"{where}.{key}")
            if key == "stream":
                changes += sub_changes
        elif sub is not None:
            raise DataError(f"{where}.{key}: expected a table naming a generator, got {sub!r}")
    accepted = inspect.signature(cls).parameters
    for seed_name in SEED_NAMES:
        if seed_name in accepted and seed_name not in params:
            params[seed_name] = seed
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise DataError(f"{where}.{unknown[0]}: river.synth.{name} has no such parameter "
                        f"(it takes {', '.join(accepted)})")
    _check_cost(name, {k: params.get(k, p.default) for k, p in accepted.items()}, where)
    try:
        generator = cls(**params)
    except Exception as e:  # river's own checks: asserts, TypeError, ValueError, and bugs on odd values alike
        raise DataError(f"{where}: river.synth.{name}: {type(e).__name__}: {e}") from None
    if name == "ConceptDriftStream":
        changes.append(int(generator.position))
    return generator, changes


def _check_cost(name: str, settings: dict[str, Any], where: str) -> None:
    """Refuse generator settings whose work has no sane bound (:data:`SYNTH_LIMITS`, :data:`MAX_TREE_NODES`)."""
    for key, limit in SYNTH_LIMITS.items():
        value = settings.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > limit:
            raise DataError(f"{where}.{key}: {value:,} is more than river.synth.{name} may take here ({limit:,})")
    if name == "RandomTree":
        depth, cats = settings.get("max_tree_depth"), settings.get("n_cat_features")
        branches = settings.get("n_categories_per_feature")
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (depth, cats, branches)):
            # every path splits on each categorical feature at most once, on a number in two otherwise
            deep, nominal = max(depth, 0), min(max(depth, 0), max(cats, 0))
            log_nodes = nominal * math.log10(max(branches, 2)) + (deep - nominal) * math.log10(2)
            if log_nodes > math.log10(MAX_TREE_NODES):
                raise DataError(f"{where}.max_tree_depth: {depth:,} allows a tree of up to 1e{log_nodes:.0f} nodes, more "
                                f"than the limit of {MAX_TREE_NODES:,} (lower it, or n_categories_per_feature)")


def _synth(name: str, params: dict[str, Any], size: int, seed: int) -> RawData:
    ref = f"river.synth:{name}"
    generator, changes = _generator(name, params, seed, "data.params")
    features = getattr(generator, "n_features", None)
    if isinstance(features, int) and size * features > MAX_VALUES:
        raise DataError(f"data.params.size: {size:,} samples of {features:,} features are more than the limit of "
                        f"{MAX_VALUES:,} values")
    try:
        rows = list(itertools.islice(generator, size))
    except Exception as e:  # river's generators fail on odd settings with any error (IndexError, ZeroDivisionError...)
        raise DataError(f"{ref}: cannot draw samples with data.params {json.dumps(params, sort_keys=True, default=str)} "
                        f"({type(e).__name__}: {e})") from None
    x, _, names, _ = _rows_to_arrays(rows, ref)
    y, n_classes = _class_indices([r[1] for r in rows], getattr(generator, "n_classes", None))
    return RawData(x, y, f"{ref} {json.dumps(params, sort_keys=True)} seed={seed}", n_classes, names,
                   ordered=True, concept_changes=tuple(sorted(c for c in changes if 0 < c < size)))
