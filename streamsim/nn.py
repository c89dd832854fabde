"""Networks for plugins: the image classifiers a learner deploys and an attacker rebuilds as a shadow.

Public API: an attack that distils a copy of the deployed classifier builds it from here, not from
the learner plugin's module. Each function returns a fresh, untrained ``nn.Module`` mapping a batch
of ``1 × 28 × 28`` images in ``[−1, 1]`` to ``N_CLASSES`` logits; seed it with
:func:`streamsim.seeds.seeded`.

``paper_cnn`` is the classifier of Oschart et al. (arXiv 2204.01090): Conv2d 256 3×3 stride 2 →
LeakyReLU 0.2 → MaxPool 2 stride 1 → Conv2d 512 3×3 stride 2 → Flatten → Linear 10.
``small_cnn`` is a tenth of its cost. ``mlp`` is the network of feature vectors (the ``mlp``
learner, and shadows of any learner on vectors); :func:`classifier` picks by the data's space.

>>> import torch
>>> small_cnn()(torch.zeros(2, 1, 28, 28)).shape, paper_cnn()(torch.zeros(2, 1, 28, 28)).shape
(torch.Size([2, 10]), torch.Size([2, 10]))
>>> mlp(9, 2)(torch.zeros(5, 9)).shape
torch.Size([5, 2])
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from streamsim.core.base import N_CLASSES
from streamsim.core.space import DataSpace


def small_cnn() -> nn.Module:
    """Two stride-2 convolutions (16, 32 filters) and a linear layer: the default learner's network."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 7 * 7, N_CLASSES),
    )


def paper_cnn(padding: str = "valid") -> nn.Module:
    """The attack paper's classifier (256 and 512 filters).

    ``padding = "same"`` pads as the reference's Keras layers did (``padding="same"``: outputs of
    ``ceil(in / stride)``, the extra row and column at the bottom and right), 14 → 14 → 7 instead
    of 13 → 12 → 5; ``"valid"`` (the default) pads nothing.

    >>> import torch
    >>> paper_cnn("same")(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    if padding == "valid":
        return nn.Sequential(
            nn.Conv2d(1, 256, 3, stride=2), nn.LeakyReLU(0.2),
            nn.MaxPool2d(2, stride=1),
            nn.Conv2d(256, 512, 3, stride=2),
            nn.Flatten(), nn.Linear(512 * 5 * 5, N_CLASSES),
        )
    if padding != "same":
        raise ValueError(f"padding must be 'valid' or 'same', not {padding!r}")
    bottom_right = nn.ZeroPad2d((0, 1, 0, 1))  # Keras "same" for 28 → 14 and 14 → 7 at stride 2
    return nn.Sequential(
        bottom_right, nn.Conv2d(1, 256, 3, stride=2), nn.LeakyReLU(0.2),
        # Keras pads max-pooling with -inf (the window ignores the pad), which this reproduces
        nn.ConstantPad2d((0, 1, 0, 1), float("-inf")), nn.MaxPool2d(2, stride=1),
        bottom_right, nn.Conv2d(256, 512, 3, stride=2),
        nn.Flatten(), nn.Linear(512 * 7 * 7, N_CLASSES),
    )


def paper_cnn_channels_first() -> nn.Module:
    """The attack paper's layer list as its reference code built the *shadow* classifier.

    The reference's distiller builds its student after ``K.set_image_data_format('channels_first')``
    with ``Input(shape=(28, 28, 1))``, so Keras reads each image's 28 rows as channels of a 28 × 1
    image: the first kernel is ``3 × 3 × 28 × 256`` and the last layer ``3584 × 10`` (the shapes in
    the reference's saved shadow, ``src/weights/shadow_classifier``). Its 3 × 3 kernels therefore
    slide along the columns only, each row a separate input channel. The reference's *target*
    classifier was built channels-last (first kernel ``3 × 3 × 1 × 256``): only the shadow has this
    shape. Padding follows Keras ``"same"`` for these sizes (28 → 14 → 14 → 7 along the columns,
    1 → 1 across).

    >>> import torch
    >>> net = paper_cnn_channels_first()
    >>> net(torch.zeros(2, 1, 28, 28)).shape, tuple(net[3].weight.shape), tuple(net[-1].weight.shape)
    (torch.Size([2, 10]), (256, 28, 3, 3), (10, 3584))
    """
    # Keras "same" at stride 2: columns 28 → 14 pad one at the end; the width of 1 pads one each side
    pad = nn.ZeroPad2d((1, 1, 0, 1))
    return nn.Sequential(
        # (N, 1, rows, columns) → (N, rows as 28 channels, columns, 1)
        nn.Unflatten(3, (28, 1)), nn.Flatten(1, 2),
        pad, nn.Conv2d(28, 256, 3, stride=2), nn.LeakyReLU(0.2),
        nn.ConstantPad2d((0, 1, 0, 1), float("-inf")), nn.MaxPool2d(2, stride=1),
        pad, nn.Conv2d(256, 512, 3, stride=2),
        nn.Flatten(), nn.Linear(512 * 7 * 1, N_CLASSES),
    )


def mlp(in_features: int, n_classes: int, hidden: Sequence[int] = (64, 64)) -> nn.Module:
    """Flatten → (Linear → ReLU) per ``hidden`` width → Linear to ``n_classes`` logits."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, n_classes))


def classifier(name: str, space: DataSpace) -> nn.Module:
    """A fresh classifier for ``space``: the named image network on images, an :func:`mlp` on vectors."""
    if space.kind == "vectors":
        return mlp(space.n_features, space.n_classes)
    return CLASSIFIERS[name]()


#: The classifiers by the name scenarios use for them (``shadow_classifier = "paper-cnn"``).
CLASSIFIERS = {"paper-cnn": paper_cnn, "paper-cnn-same": lambda: paper_cnn("same"),
               "paper-cnn-channels-first": paper_cnn_channels_first, "small-cnn": small_cnn}
