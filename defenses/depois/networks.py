"""The four networks of De-Pois (Chen et al., IEEE TIFS 2021), as in the authors' reference code.

* :class:`Generator` — conditional generator shared by the cGAN and the WGAN-GP: noise ⊙ label
  embedding → 256 → 512 → 1024 → 784 (LeakyReLU 0.2, then batch norm), ``tanh`` output.
* :class:`Discriminator` — the cGAN discriminator: flattened image ⊙ label embedding →
  512 → 512 → 512 → 1 (dropout 0.4 on the last two hidden layers). Returns a logit.
* :class:`Critic` — the WGAN-GP critic, De-Pois's detector: flattened image ⊙ label embedding →
  1024 → 128 → 16 → 1 (dropout 0.4 after 128 and 16). Returns an unbounded realness score.
* :class:`Authenticator` — a LeNet-style classifier (conv 20 and 50 filters 5×5, dense 500) that
  vets generated samples.

Layers are initialised the way Keras initialises them (Glorot-uniform kernels, zero biases,
embeddings uniform in ±0.05), because the paper's hyperparameters (learning rates, iteration
counts) were tuned under that initialisation: with PyTorch's ``N(0, 1)`` embeddings the
``image ⊙ embedding`` products start ~20× larger.

>>> import torch
>>> g, c = Generator(), Critic()
>>> x = g(torch.randn(4, 100), torch.tensor([0, 1, 2, 3]))
>>> tuple(x.shape), tuple(c(x, torch.tensor([0, 1, 2, 3])).shape)
((4, 1, 28, 28), (4,))
"""

from __future__ import annotations

import torch
from torch import nn

from streamsim import IMAGES

# De-Pois's networks are the paper's, for its images: their sizes are the image space's.
N_CLASSES = IMAGES.n_classes
IMAGE_SHAPE = IMAGES.shape
IMAGE_PIXELS = IMAGES.n_features
LATENT_DIM = 100
LEAK = 0.2
DROPOUT = 0.4
BN_MOMENTUM = 0.2  # Keras momentum 0.8 is PyTorch momentum 0.2
BN_EPS = 1e-3  # Keras default
EMBEDDING_INIT = 0.05  # Keras' uniform embedding initialiser range


def _keras_init(module: nn.Module) -> None:
    """Glorot-uniform weights, zero biases, ±0.05 embeddings — the Keras defaults."""
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.uniform_(m.weight, -EMBEDDING_INIT, EMBEDDING_INIT)


class _LeakyReLUFunction(torch.autograd.Function):
    """``leaky_relu`` whose backward multiplies by a saved slope mask (1 or ``slope``).

    Same values as :func:`torch.nn.functional.leaky_relu` forward and backward. The difference is in
    the second derivative: PyTorch's backward depends on the input, so a double backward (the
    WGAN-GP gradient penalty) sends a tensor of zeros back through the whole forward pass — a
    weight-gradient and an input-gradient product per layer, all zero. Here the mask is a constant,
    and the double backward stops at it.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, slope: float) -> torch.Tensor:
        slopes = torch.where(x > 0, 1.0, slope).to(x.dtype)
        ctx.save_for_backward(slopes)
        return x * slopes

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (slopes,) = ctx.saved_tensors
        return grad * slopes, None


class LeakyReLU(nn.Module):
    """:class:`torch.nn.LeakyReLU` (same outputs and gradients) with a cheap double backward.

    >>> x = torch.linspace(-1, 1, 5, requires_grad=True)
    >>> torch.equal(LeakyReLU(0.2)(x), nn.LeakyReLU(0.2)(x))
    True
    """

    def __init__(self, negative_slope: float = LEAK) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _LeakyReLUFunction.apply(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Generator(nn.Module):
    """Maps noise and a class label to an image in ``[-1, 1]``."""

    def __init__(self, latent_dim: int = LATENT_DIM, n_classes: int = N_CLASSES) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.embed = nn.Embedding(n_classes, latent_dim)
        widths = [latent_dim, 256, 512, 1024]
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths, widths[1:], strict=False):
            layers += [nn.Linear(w_in, w_out), nn.LeakyReLU(LEAK), nn.BatchNorm1d(w_out, eps=BN_EPS, momentum=BN_MOMENTUM)]
        layers += [nn.Linear(widths[-1], IMAGE_PIXELS), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        _keras_init(self)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.body(noise * self.embed(labels)).view(-1, *IMAGE_SHAPE)


class _ConditionedMLP(nn.Module):
    """An MLP on ``flatten(image) ⊙ embedding(label)``: the label gates every pixel."""

    def __init__(self, widths: list[int], dropout_after: set[int], n_classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_classes, IMAGE_PIXELS)
        layers: list[nn.Module] = []
        w_in = IMAGE_PIXELS
        for i, w_out in enumerate(widths):
            layers += [nn.Linear(w_in, w_out), LeakyReLU(LEAK)]
            if i in dropout_after:
                layers.append(nn.Dropout(DROPOUT))
            w_in = w_out
        layers.append(nn.Linear(w_in, 1))
        self.body = nn.Sequential(*layers)
        _keras_init(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1) * self.embed(labels)).squeeze(1)


class Discriminator(_ConditionedMLP):
    """The cGAN discriminator; returns a logit (real > 0)."""

    def __init__(self, n_classes: int = N_CLASSES) -> None:
        super().__init__([512, 512, 512], dropout_after={1, 2}, n_classes=n_classes)


class Critic(_ConditionedMLP):
    """The WGAN-GP critic; higher output = more like the (augmented) trusted data."""

    def __init__(self, n_classes: int = N_CLASSES) -> None:
        super().__init__([1024, 128, 16], dropout_after={1, 2}, n_classes=n_classes)


class Authenticator(nn.Module):
    """LeNet-style classifier; returns logits over the classes.

    The reference code writes ``Conv2D(20, 5, 5)``, which Keras 2 reads as *stride* 5; we use the
    LeNet the paper describes (5×5 kernels, stride 1, 2×2 max pooling).
    """

    def __init__(self, n_classes: int = N_CLASSES) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 20, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(20, 50, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(50 * 7 * 7, 500), nn.ReLU(), nn.Linear(500, n_classes),
        )
        _keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
