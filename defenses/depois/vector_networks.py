"""De-Pois's four networks for feature vectors, and the factories that pick networks by the data.

The method is the same as on images (:mod:`.networks`): a conditional GAN plus an authenticator
grows the trusted set, a conditional WGAN-GP critic trained on it is the detector. Only the
networks change, sized to ``d`` features and ``K`` classes:

* :class:`VectorGenerator` — noise ⊙ label embedding → 128 → 128 (LeakyReLU 0.2, batch norm) →
  ``d``, ``tanh`` (features are scaled to ``[-1, 1]``).
* :class:`VectorCritic` / :class:`VectorDiscriminator` — ``[x, embedding(label)]`` → 128 → 64 → 1
  (LeakyReLU 0.2, dropout 0.4 on the hidden layers). On images the label *gates* every pixel
  (``x ⊙ embedding``); on a handful of features scaled around 0 a product would erase the label
  wherever a feature is near 0, so the label is concatenated instead (the usual cGAN conditioning).
* :class:`VectorAuthenticator` — an MLP classifier ``d`` → 64 → 64 → ``K``.

Initialised as Keras would (Glorot-uniform, zero biases, ±0.05 embeddings), like the image networks.

>>> import torch
>>> from streamsim import IMAGES, DataSpace
>>> space = DataSpace.vectors(3, ("real",) * 9)
>>> g, c = generator(space, 16), critic(space)
>>> x = g(torch.randn(4, 16), torch.tensor([0, 1, 2, 0]))
>>> tuple(x.shape), tuple(c(x, torch.tensor([0, 1, 2, 0])).shape), type(critic(IMAGES)).__name__
((4, 9), (4,), 'Critic')
"""

from __future__ import annotations

import torch
from torch import nn

from defenses.depois.networks import (
    BN_EPS,
    BN_MOMENTUM,
    DROPOUT,
    LEAK,
    Authenticator,
    Critic,
    Discriminator,
    Generator,
    _keras_init,
)
from streamsim import DataSpace

LABEL_DIM = 16  # the label embedding concatenated to a feature vector


class VectorGenerator(nn.Module):
    """Maps noise and a class label to a feature vector in ``[-1, 1]^d``."""

    def __init__(self, d: int, n_classes: int, latent_dim: int, hidden: tuple[int, ...] = (128, 128)) -> None:
        super().__init__()
        self.latent_dim, self.out_shape = latent_dim, (d,)
        self.embed = nn.Embedding(n_classes, latent_dim)
        layers: list[nn.Module] = []
        w_in = latent_dim
        for w in hidden:
            layers += [nn.Linear(w_in, w), nn.LeakyReLU(LEAK), nn.BatchNorm1d(w, eps=BN_EPS, momentum=BN_MOMENTUM)]
            w_in = w
        self.body = nn.Sequential(*layers, nn.Linear(w_in, d), nn.Tanh())
        _keras_init(self)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.body(noise * self.embed(labels))


def _hidden_stack(w_in: int, hidden: tuple[int, ...]) -> tuple[list[nn.Module], int]:
    """Linear → LeakyReLU → dropout per hidden width (the critic's and discriminator's shared body)."""
    layers: list[nn.Module] = []
    for w in hidden:
        layers += [nn.Linear(w_in, w), nn.LeakyReLU(LEAK), nn.Dropout(DROPOUT)]
        w_in = w
    return layers, w_in


class _ConcatConditioned(nn.Module):
    """An MLP on ``[x, embedding(label)]`` with dropout on every hidden layer; one output."""

    def __init__(self, d: int, n_classes: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_classes, LABEL_DIM)
        layers, w_in = _hidden_stack(d + LABEL_DIM, hidden)
        self.body = nn.Sequential(*layers, nn.Linear(w_in, 1))
        _keras_init(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([x.flatten(1), self.embed(labels)], dim=1)).squeeze(1)


class VectorDiscriminator(_ConcatConditioned):
    """The cGAN discriminator on vectors; returns a logit (real > 0)."""

    def __init__(self, d: int, n_classes: int) -> None:
        super().__init__(d, n_classes, (128, 64))


class VectorCritic(nn.Module):
    """The WGAN-GP critic on vectors; higher output = more like the (augmented) trusted data.

    A projection critic (Miyato & Koyama 2018): ``w·h(x) + embedding(label)·h(x)`` over the features
    ``h(x)`` of an MLP on ``[x, embedding(label)]`` — the label enters twice, so a real-looking vector
    with the wrong label scores low (what catches label flips).
    """

    def __init__(self, d: int, n_classes: int, hidden: tuple[int, ...] = (128, 64)) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_classes, LABEL_DIM)
        layers, w_in = _hidden_stack(d + LABEL_DIM, hidden)
        self.features = nn.Sequential(*layers)
        self.out = nn.Linear(w_in, 1)
        self.project = nn.Embedding(n_classes, w_in)
        _keras_init(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(torch.cat([x.flatten(1), self.embed(labels)], dim=1))
        return self.out(h).squeeze(1) + (self.project(labels) * h).sum(1)


class VectorAuthenticator(nn.Module):
    """An MLP classifier that vets generated vectors; returns logits over the classes."""

    def __init__(self, d: int, n_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, n_classes))
        _keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1))


def generator(space: DataSpace, latent_dim: int) -> nn.Module:
    """The conditional generator for ``space`` (the image one, exactly as before, on images)."""
    if space.kind == "images":
        return Generator(latent_dim)
    return VectorGenerator(space.n_features, space.n_classes, latent_dim)


def discriminator(space: DataSpace) -> nn.Module:
    return Discriminator() if space.kind == "images" else VectorDiscriminator(space.n_features, space.n_classes)


def critic(space: DataSpace) -> nn.Module:
    return Critic() if space.kind == "images" else VectorCritic(space.n_features, space.n_classes)


def authenticator(space: DataSpace) -> nn.Module:
    return Authenticator() if space.kind == "images" else VectorAuthenticator(space.n_features, space.n_classes)


