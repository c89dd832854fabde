"""De-Pois training loops: the fast paths compute what the plain ones did, and report progress in full."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from defenses.depois.cgan import CGANSettings, train_authenticator, train_cgan
from defenses.depois.networks import Critic, LeakyReLU
from defenses.depois.wgan_gp import PROGRESS_EVERY, WGANGPSettings, gradient_penalty, train_critic


def _with_torch_leaky_relu(critic: Critic) -> Critic:
    critic = copy.deepcopy(critic)
    for i, layer in enumerate(critic.body):
        if isinstance(layer, LeakyReLU):
            critic.body[i] = nn.LeakyReLU(layer.negative_slope)
    return critic


def _critic_loss_and_grads(critic: Critic, real, fake, labels, alpha) -> tuple[torch.Tensor, list[torch.Tensor]]:
    torch.manual_seed(1)  # the same dropout masks for both critics
    scores = critic(torch.cat([real, fake]), labels.repeat(2))
    loss = scores[len(real):].mean() - scores[:len(real)].mean() + 10 * gradient_penalty(critic, real, fake, labels, alpha)
    critic.zero_grad(set_to_none=True)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in critic.parameters()]


def test_leaky_relu_double_backward_gives_the_same_gradients_bit_for_bit():
    """The cheap double backward skips only zeros: the WGAN-GP loss and every weight gradient are unchanged."""
    torch.manual_seed(0)
    ours = Critic()
    real, fake = torch.rand(16, 1, 28, 28) * 2 - 1, torch.rand(16, 1, 28, 28) * 2 - 1
    labels, alpha = torch.arange(16) % 10, torch.rand(16, 1, 1, 1)
    loss, grads = _critic_loss_and_grads(ours, real, fake, labels, alpha)
    ref_loss, ref_grads = _critic_loss_and_grads(_with_torch_leaky_relu(ours), real, fake, labels, alpha)
    assert torch.equal(loss, ref_loss)
    assert all(torch.equal(g, r) for g, r in zip(grads, ref_grads, strict=True))


class _Recorder:
    def __init__(self) -> None:
        self.tasks: dict[str, list[tuple[int, dict[str, float]]]] = {}

    def __call__(self, description: str, total: int):
        calls = self.tasks.setdefault(description, [])
        recorder = self

        class Task:
            def advance(self, n: int = 1, **fields: float) -> None:
                calls.append((n, fields))

            def close(self) -> None:
                recorder.tasks[description + " closed"] = []
        return Task()


@pytest.mark.parametrize("steps", [PROGRESS_EVERY - 1, 2 * PROGRESS_EVERY + 3])
def test_training_loops_report_every_step_but_read_losses_rarely(steps):
    x, y = torch.rand(40, 1, 28, 28) * 2 - 1, torch.arange(40) % 10
    rec = _Recorder()
    train_critic(x, y, WGANGPSettings(steps=steps, batch_size=4, n_critic=1), seed=0, progress=rec)
    settings = CGANSettings(steps=steps, batch_size=4, authenticator_steps=steps, authenticator_batch_size=4)
    train_cgan(x, y, settings, seed=0, progress=rec)
    train_authenticator(x, y, settings, seed=0, progress=rec)
    for name in ("De-Pois WGAN-GP", "De-Pois cGAN", "De-Pois authenticator"):
        calls = rec.tasks[name]
        assert sum(n for n, _ in calls) == steps, name
        assert len(calls) == -(-steps // PROGRESS_EVERY), name  # one loss read per PROGRESS_EVERY steps
        assert all(fields and all(isinstance(v, float) for v in fields.values()) for _, fields in calls)
        assert name + " closed" in rec.tasks


def test_trained_critic_is_seeded_and_returned_ready_to_score():
    x, y = torch.rand(40, 1, 28, 28) * 2 - 1, torch.arange(40) % 10
    settings = WGANGPSettings(steps=3, batch_size=8, n_critic=2)
    a, b = train_critic(x, y, settings, seed=5), train_critic(x, y, settings, seed=5)
    assert not a.training and all(p.requires_grad for p in a.parameters())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
