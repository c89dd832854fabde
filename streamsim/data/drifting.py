"""Natural drift of a clean source, so that drift and poisoning can be told apart.

Two kinds: images rotate gradually (degrees per simulated time unit, up to a maximum), and the
class priors change at a given time.
"""

from __future__ import annotations

import numpy as np
import torch

BACKGROUND = -1.0  # black in [-1, 1] pixels


def rotation_at(time: float, per_time: float, maximum: float) -> float:
    angle = per_time * time
    return float(np.clip(angle, -maximum, maximum))


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate a whole batch by the same angle, filling the corners with background."""
    if degrees == 0:
        return x
    # torchvision costs seconds to import; only drifting scenarios pay for it.
    from torchvision.transforms.v2 import functional as F

    return F.rotate(x, degrees, fill=BACKGROUND)


def sample_weights(labels: torch.Tensor, priors: list[float] | None) -> np.ndarray | None:
    """Per-sample probabilities that make the sampled classes follow ``priors`` (``None`` = uniform)."""
    if priors is None:
        return None
    y = labels.numpy()
    counts = np.bincount(y, minlength=len(priors)).astype(float)
    p = np.asarray(priors, dtype=float)
    p = np.where(counts > 0, p, 0.0)
    if p.sum() <= 0:
        raise ValueError("the prior shift gives zero weight to every class present in the stream")
    w = (p / p.sum())[y] / counts[y]
    return w / w.sum()
