"""De-Pois step 2: the mimic model, a conditional WGAN-GP whose critic becomes the detector.

Chen et al., "De-Pois: An Attack-Agnostic Defense against Data Poisoning Attacks", IEEE TIFS 2021,
Sec. IV-B; Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017. Trained on the
augmented clean set ``S_aug``, the critic learns a score that is high on samples that look like
clean data *with that label* and low elsewhere — whatever the attack that produced them.

As in the reference code: ``n_critic`` critic steps (each on a fresh random batch drawn with
replacement) per generator step, RMSprop (lr 5e-5; Keras' ρ = 0.9), critic loss
``D(fake) − D(real) + λ·(1 − ‖∇D(x̂)‖)²`` on random interpolates ``x̂`` conditioned on the real
batch's labels, generator loss ``−D(G(z, c))`` with ``c`` uniform over the classes. The critic
trains with dropout on and scores in eval mode. The generator is thrown away.

>>> import torch
>>> x, y = torch.rand(64, 1, 28, 28) * 2 - 1, torch.arange(64) % 10
>>> critic = train_critic(x, y, WGANGPSettings(steps=2, batch_size=8, n_critic=2), seed=0)
>>> critic.training
False
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from defenses.depois import vector_networks
from defenses.depois.networks import LATENT_DIM, Critic
from streamsim import IMAGES, DataSpace, ProgressFactory, silent
from streamsim.seeds import seeded

RMSPROP_RHO = 0.9  # Keras' RMSprop default (PyTorch's is 0.99)
PROGRESS_EVERY = 25  # generator steps between progress updates (reading a loss is a device sync)


@dataclass(frozen=True)
class WGANGPSettings:
    """Everything that shapes the mimic model's training."""

    steps: int = 10_000  # generator steps; the reference's "epochs"
    batch_size: int = 32
    n_critic: int = 5
    lr: float = 5e-5
    gp_weight: float = 10.0
    latent_dim: int = LATENT_DIM


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor,
                     alpha: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``(1 − ‖∇ₓ D(x̂, c)‖₂)²`` over random interpolates ``x̂ = α·real + (1 − α)·fake``.

    ``alpha`` (one per sample: shape ``(batch, 1, 1, 1)`` for images, ``(batch, 1)`` for vectors; uniform
    in [0, 1)) is drawn here unless the caller passes a buffer it has filled.
    """
    if alpha is None:
        alpha = torch.rand(real.shape[0], *[1] * (real.dim() - 1), device=real.device)
    mixed = torch.lerp(fake, real, alpha).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed, labels).sum(), mixed, create_graph=True)
    return (1 - grad.flatten(1).norm(dim=1)).pow(2).mean()


def train_critic(x: torch.Tensor, y: torch.Tensor, settings: WGANGPSettings, seed: int,
                 progress: ProgressFactory = silent, space: DataSpace = IMAGES) -> Critic:
    """Train a conditional WGAN-GP on ``(x, y)`` (networks sized to ``space``); return the critic in eval mode.

    The networks live on ``x``'s device. Per critic step the real and fake halves go through the
    critic as one batch (one weight-gradient product instead of two; each sample still gets its own
    dropout mask); the critic's weights take no gradient during generator steps; losses are read
    (``.item()``, a device sync) only every :data:`PROGRESS_EVERY` steps.
    """
    device = x.device
    y = y.to(device)
    with seeded(seed):
        gen = vector_networks.generator(space, settings.latent_dim).to(device)
        critic = vector_networks.critic(space).to(device)
        opt_g = torch.optim.RMSprop(gen.parameters(), lr=settings.lr, alpha=RMSPROP_RHO, foreach=True)
        opt_c = torch.optim.RMSprop(critic.parameters(), lr=settings.lr, alpha=RMSPROP_RHO, foreach=True)
        b = settings.batch_size
        noise = torch.empty(b, settings.latent_dim, device=device)
        alpha = torch.empty(b, *[1] * (x.dim() - 1), device=device)  # one mixing weight per sample
        task, reported = progress("De-Pois WGAN-GP", settings.steps), 0
        try:
            for step in range(1, settings.steps + 1):
                critic.requires_grad_(True)
                for _ in range(settings.n_critic):
                    idx = torch.randint(len(x), (b,), device=device)
                    real, labels = x[idx], y[idx]
                    with torch.no_grad():
                        fake = gen(noise.normal_(), labels)
                    scores = critic(torch.cat([real, fake]), labels.repeat(2))
                    wasserstein = scores[b:].mean() - scores[:b].mean()
                    c_loss = wasserstein + settings.gp_weight * gradient_penalty(critic, real, fake, labels,
                                                                                 alpha.uniform_())
                    opt_c.zero_grad(set_to_none=True)
                    c_loss.backward()
                    opt_c.step()

                critic.requires_grad_(False)  # the generator step needs gradients through the critic, not of it
                labels = torch.randint(space.n_classes, (b,), device=device)
                g_loss = -critic(gen(noise.normal_(), labels), labels).mean()
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                if step % PROGRESS_EVERY == 0 or step == settings.steps:
                    task.advance(step - reported, critic_loss=c_loss.item(), wasserstein=-wasserstein.item(),
                                 g_loss=g_loss.item())
                    reported = step
        finally:
            task.close()
    return critic.requires_grad_(True).eval()
