"""De-Pois step 1: authenticated synthetic augmentation of the trusted set.

Chen et al., "De-Pois: An Attack-Agnostic Defense against Data Poisoning Attacks", IEEE TIFS 2021,
Sec. IV-A. A conditional GAN learns the trusted clean set ``S_c``; an authenticator (a LeNet
trained on ``S_c``) keeps only generated samples it classifies as the label they were generated
for. ``S_c`` plus the kept samples is ``S_aug``, on which the mimic model (:mod:`.wgan_gp`) is
trained — the paper's answer to a trusted set too small to learn the clean distribution from.

Training follows the reference code: one random batch (drawn with replacement) per step, the
discriminator then the generator, Adam (lr 2e-4, β1 0.5), BCE losses, generator labels uniform
over the classes. Conditioning labels for synthetic samples follow ``S_c``'s class frequencies.
As in the reference, synthetic pixels dimmer than ``floor`` (on a 0–1 scale) are set to black,
which removes the GAN's grey background haze.

>>> import torch
>>> x, y = torch.rand(64, 1, 28, 28) * 2 - 1, torch.arange(64) % 10
>>> s = CGANSettings(steps=2, batch_size=8, authenticator_steps=2, authenticator_batch_size=8)
>>> xs, ys = authenticated_augmentation(x, y, 16, s, seed=0)
>>> xs.shape[1:], bool((ys >= 0).all())
(torch.Size([1, 28, 28]), True)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from defenses.depois import vector_networks
from defenses.depois.networks import IMAGE_SHAPE, LATENT_DIM, Authenticator, Generator
from defenses.depois.wgan_gp import PROGRESS_EVERY
from streamsim import IMAGES, DataSpace, ProgressFactory, silent
from streamsim.seeds import seeded, torch_generator


@dataclass(frozen=True)
class CGANSettings:
    """Everything that shapes the cGAN, the authenticator and the synthetic samples."""

    steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-4
    beta1: float = 0.5
    latent_dim: int = LATENT_DIM
    authenticator_steps: int = 2000
    authenticator_batch_size: int = 64
    authenticator_lr: float = 1e-3
    floor: float = 0.3
    max_rounds: int = 20  # generation rounds before giving up on filling S_aug


def train_cgan(x: torch.Tensor, y: torch.Tensor, settings: CGANSettings, seed: int,
               progress: ProgressFactory = silent, space: DataSpace = IMAGES) -> Generator:
    """Train a conditional GAN on ``(x, y)`` (networks sized to ``space``); return its generator in eval mode.

    The networks live on ``x``'s device. The real and fake halves go through the discriminator as one
    batch (each sample keeps its own dropout mask); the fake half is generated without a graph, and
    the discriminator's weights take no gradient during generator steps; losses are read every
    :data:`~defenses.depois.wgan_gp.PROGRESS_EVERY` steps.
    """
    device = x.device
    y = y.to(device)
    with seeded(seed):
        gen = vector_networks.generator(space, settings.latent_dim).to(device)
        disc = vector_networks.discriminator(space).to(device)
        opt_g = torch.optim.Adam(gen.parameters(), lr=settings.lr, betas=(settings.beta1, 0.999), foreach=True)
        opt_d = torch.optim.Adam(disc.parameters(), lr=settings.lr, betas=(settings.beta1, 0.999), foreach=True)
        b = settings.batch_size
        ones, targets = torch.ones(b, device=device), torch.cat([torch.ones(b), torch.zeros(b)]).to(device)
        noise = torch.empty(b, settings.latent_dim, device=device)
        task, reported = progress("De-Pois cGAN", settings.steps), 0
        try:
            for step in range(1, settings.steps + 1):
                idx = torch.randint(len(x), (b,), device=device)
                real, labels = x[idx], y[idx]
                with torch.no_grad():
                    fake = gen(noise.normal_(), labels)
                disc.requires_grad_(True)
                d_loss = F.binary_cross_entropy_with_logits(disc(torch.cat([real, fake]), labels.repeat(2)), targets)
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()

                disc.requires_grad_(False)  # the generator step needs gradients through the discriminator, not of it
                labels = torch.randint(space.n_classes, (b,), device=device)
                g_loss = F.binary_cross_entropy_with_logits(disc(gen(noise.normal_(), labels), labels), ones)
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                if step % PROGRESS_EVERY == 0 or step == settings.steps:
                    task.advance(step - reported, d_loss=d_loss.item(), g_loss=g_loss.item())
                    reported = step
        finally:
            task.close()
    return gen.eval()


def train_authenticator(x: torch.Tensor, y: torch.Tensor, settings: CGANSettings, seed: int,
                        progress: ProgressFactory = silent, space: DataSpace = IMAGES) -> Authenticator:
    """Train the authenticator (LeNet on images, an MLP on vectors) on the trusted samples only; return it in eval mode."""
    device = x.device
    y = y.to(device)
    with seeded(seed):
        net = vector_networks.authenticator(space).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=settings.authenticator_lr, foreach=True)
        task, reported = progress("De-Pois authenticator", settings.authenticator_steps), 0
        try:
            for step in range(1, settings.authenticator_steps + 1):
                idx = torch.randint(len(x), (settings.authenticator_batch_size,), device=device)
                loss = F.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if step % PROGRESS_EVERY == 0 or step == settings.authenticator_steps:
                    task.advance(step - reported, loss=loss.item())
                    reported = step
        finally:
            task.close()
    return net.eval()


def apply_floor(images: torch.Tensor, floor: float) -> torch.Tensor:
    """Set pixels dimmer than ``floor`` (0–1 scale) to black (-1), as the reference does."""
    return torch.where((images + 1) / 2 < floor, torch.full_like(images, -1.0), images)


@torch.no_grad()
def generate_authenticated(gen: Generator, authenticator: Authenticator, label_pool: torch.Tensor, n: int,
                           settings: CGANSettings, seed: int, progress: ProgressFactory = silent,
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``n`` generated samples that the authenticator classifies as their conditioning label.

    Labels are drawn from ``label_pool`` (the trusted labels), so ``S_aug`` keeps ``S_c``'s class
    balance. Warns if ``settings.max_rounds`` rounds do not yield ``n`` samples.
    """
    rng = torch_generator(seed)
    kept_x, kept_y, have = [], [], 0
    task = progress("De-Pois augmentation", n)
    try:
        for _ in range(settings.max_rounds):
            if have >= n:
                break
            chunk = max(2 * (n - have), 256)
            device = label_pool.device  # draws stay on the CPU generator, so every device sees the same ones
            labels = label_pool[torch.randint(len(label_pool), (chunk,), generator=rng).to(device)]
            images = gen(torch.randn(chunk, gen.latent_dim, generator=rng).to(device), labels)
            if images.dim() == 4:  # the floor removes an image GAN's grey haze; vectors have none
                images = apply_floor(images, settings.floor)
            ok = authenticator(images).argmax(dim=1) == labels
            take = min(int(ok.sum()), n - have)
            kept_x.append(images[ok][:take])
            kept_y.append(labels[ok][:take])
            have += take
            task.advance(take, accepted_rate=float(ok.float().mean()))
    finally:
        task.close()
    if have < n:
        warnings.warn(f"De-Pois augmentation: the authenticator accepted only {have} of the {n} synthetic samples "
                      f"wanted after {settings.max_rounds} rounds; training the critic on fewer", stacklevel=2)
    if not kept_x:
        return (label_pool.new_empty(0, *getattr(gen, "out_shape", IMAGE_SHAPE), dtype=torch.float),
                label_pool.new_empty(0))
    return torch.cat(kept_x), torch.cat(kept_y)


def authenticated_augmentation(x: torch.Tensor, y: torch.Tensor, n_synthetic: int, settings: CGANSettings, seed: int,
                               progress: ProgressFactory = silent, space: DataSpace = IMAGES,
                               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Train the cGAN and the authenticator on ``(x, y)``; return ``n_synthetic`` vetted samples."""
    if n_synthetic <= 0:
        return x[:0], y[:0]
    gen = train_cgan(x, y, settings, seed, progress, space)
    authenticator = train_authenticator(x, y, settings, seed + 1, progress, space)
    return generate_authenticated(gen, authenticator, y, n_synthetic, settings, seed + 2, progress)
