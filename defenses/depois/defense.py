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

**Boundary refresh (opt-in, ``refresh_every``).** Under natural drift clean data slides below a
boundary fitted once. With ``refresh_every = n`` the scores of accepted samples go into a rolling
buffer of ``refresh_window`` and every ``n`` accepted samples the boundary is recomputed over the
trusted scores plus that buffer. This opens a poisoning channel of its own: poisons that slip
through just above the boundary enter the buffer and drag its mean and std down, so each refresh
admits slightly worse samples (boundary creep). It is off by default; keep ``refresh_window`` small
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
10,000 steps of batch 32; ≈20 min on 2 CPU cores), S_c grown 5× by cGAN samples. ``"fast"``: 600
WGAN-GP steps at a higher learning rate on the trusted set alone (``augment_factor = 1.0``, no
cGAN): with a 500-step cGAN its samples made the critic fragile — near chance on some seeds and
datasets — and the trusted set alone was robust (README, "Is De-Pois robust?"). Set
``augment_factor = 5.0`` for the method as published. ``"tabular"``: for feature vectors, where
the networks are small MLPs (:mod:`.vector_networks`): 2× augmentation, 300 cGAN steps, 600
WGAN-GP steps of batch 64 with two critic steps each — tens of seconds for a few hundred trusted
rows of a dozen features on a busy 2-core machine. Any setting left ``None``
takes the preset's value. Trained critics are cached (see :func:`streamsim.cached_fit`).

A tiny (useless but quick) run:

>>> import torch
>>> from streamsim import Batch, SetupContext
>>> trusted = Batch.clean(torch.rand(40, 1, 28, 28) * 2 - 1, torch.arange(40) % 10)
>>> d = DePois(cgan_steps=2, authenticator_steps=2, wgan_steps=2, augment_factor=1.5)
>>> d.fit(trusted, learner=None, context=SetupContext(seed=0))
>>> v = d.screen(trusted)
>>> v.accept.dtype, len(v), d.score(trusted.x, trusted.labels).shape
(torch.bool, 40, torch.Size([40]))
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from typing import Any, Literal

import numpy as np
import torch

from defenses.depois import vector_networks
from defenses.depois.cgan import CGANSettings, authenticated_augmentation
from defenses.depois.networks import Critic
from defenses.depois.wgan_gp import WGANGPSettings, train_critic
from streamsim import Batch, ConfigError, Defense, Learner, SetupContext, Verdicts, cached_fit

CACHE_KIND = "depois-critic"
CODE_VERSION = "2"  # bump whenever training changes what a given config produces (2: batched passes)

Preset = Literal["fast", "paper", "tabular"]
Condition = Literal["claimed", "predicted"]
InputLayout = Literal["upright", "transposed"]
BoundaryFrom = Literal["trusted", "test"]

#: Training settings per preset. ``augment_factor`` is |S_aug| / |S_c| (paper: S_c is 20 % of the data).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "augment_factor": 5.0,
        "cgan_steps": 2000, "cgan_batch_size": 32, "cgan_lr": 2e-4,
        "authenticator_steps": 2000, "authenticator_batch_size": 64, "authenticator_lr": 1e-3,
        "synthetic_floor": 0.3,
        "wgan_steps": 10_000, "wgan_batch_size": 32, "n_critic": 5, "wgan_lr": 5e-5, "gp_weight": 10.0,
    },
    "fast": {
        # 1.0: no cGAN samples. A 500-step cGAN's samples made the fast critic fragile (ca − clean FRR
        # 0.11–0.25 against label flips over 2 seeds × 2 datasets); the trusted set alone gave 0.58–0.61.
        # See benchmarks/bench_depois_robustness.py and the README's "Is De-Pois robust?".
        "augment_factor": 1.0,
        "cgan_steps": 500, "cgan_batch_size": 32, "cgan_lr": 2e-4,
        "authenticator_steps": 100, "authenticator_batch_size": 64, "authenticator_lr": 1e-3,
        "synthetic_floor": 0.3,
        "wgan_steps": 600, "wgan_batch_size": 32, "n_critic": 5, "wgan_lr": 2e-4, "gp_weight": 10.0,
    },
}
PRESETS["tabular"] = {
    "augment_factor": 2.0,
    "cgan_steps": 300, "cgan_batch_size": 64, "cgan_lr": 1e-3,
    "authenticator_steps": 200, "authenticator_batch_size": 64, "authenticator_lr": 1e-3,
    "synthetic_floor": 0.0,
    "wgan_steps": 600, "wgan_batch_size": 64, "n_critic": 2, "wgan_lr": 1e-3, "gp_weight": 10.0,
}
TRAINING_SETTINGS = tuple(PRESETS["paper"])


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
    """De-Pois (Chen et al. 2021): a conditional WGAN-GP critic trained on augmented trusted data."""

    accepts = ("images", "vectors")

    def __init__(
        self,
        preset: Preset = "fast",
        condition: Condition = "claimed",
        k: float = 1.0,
        augment_factor: float | None = None,
        cgan_steps: int | None = None,
        cgan_batch_size: int | None = None,
        cgan_lr: float | None = None,
        authenticator_steps: int | None = None,
        authenticator_batch_size: int | None = None,
        authenticator_lr: float | None = None,
        synthetic_floor: float | None = None,
        wgan_steps: int | None = None,
        wgan_batch_size: int | None = None,
        n_critic: int | None = None,
        wgan_lr: float | None = None,
        gp_weight: float | None = None,
        refresh_every: int | None = None,
        refresh_window: int = 1000,
        input_layout: InputLayout = "upright",
        boundary_from: BoundaryFrom = "trusted",
        reject_ties: bool = False,
        critic_weights: str | None = None,
    ) -> None:
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, not {preset!r}")
        if condition not in ("claimed", "predicted"):
            raise ValueError(f"condition must be 'claimed' or 'predicted', not {condition!r}")
        if augment_factor is not None and augment_factor < 1:
            raise ValueError(f"augment_factor must be >= 1 (S_aug includes S_c), not {augment_factor}")
        if input_layout not in ("upright", "transposed"):
            raise ValueError(f"input_layout must be 'upright' or 'transposed', not {input_layout!r}")
        if boundary_from not in ("trusted", "test"):
            raise ValueError(f"boundary_from must be 'trusted' or 'test', not {boundary_from!r}")
        if refresh_every is not None and refresh_every < 1:
            raise ValueError(f"refresh_every must be a positive number of samples, not {refresh_every}")
        self.preset = preset
        self.condition = condition
        self.k = k
        self.augment_factor = augment_factor
        self.cgan_steps = cgan_steps
        self.cgan_batch_size = cgan_batch_size
        self.cgan_lr = cgan_lr
        self.authenticator_steps = authenticator_steps
        self.authenticator_batch_size = authenticator_batch_size
        self.authenticator_lr = authenticator_lr
        self.synthetic_floor = synthetic_floor
        self.wgan_steps = wgan_steps
        self.wgan_batch_size = wgan_batch_size
        self.n_critic = n_critic
        self.wgan_lr = wgan_lr
        self.gp_weight = gp_weight
        self.refresh_every = refresh_every
        self.refresh_window = refresh_window
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
        return {"cgan_steps": 3, "authenticator_steps": 3, "wgan_steps": 3, "augment_factor": 1.5}

    def __repr__(self) -> str:
        set_ = {name: getattr(self, name) for name in ("preset", "condition", "k", *TRAINING_SETTINGS)}
        reference = {"input_layout": "upright", "boundary_from": "trusted", "reject_ties": False,
                     "critic_weights": None}
        set_ |= {name: getattr(self, name) for name, default in reference.items() if getattr(self, name) != default}
        return "DePois(" + ", ".join(f"{n}={v!r}" for n, v in set_.items() if v is not None) + ")"

    # --- settings ---------------------------------------------------------------------------
    def training_config(self) -> dict[str, Any]:
        """Every training setting, with ``None`` replaced by the preset's value."""
        preset = PRESETS[self.preset]
        return {name: preset[name] if getattr(self, name) is None else getattr(self, name) for name in TRAINING_SETTINGS}

    def _settings(self) -> tuple[CGANSettings, WGANGPSettings]:
        c = self.training_config()
        cgan = CGANSettings(
            steps=c["cgan_steps"], batch_size=c["cgan_batch_size"], lr=c["cgan_lr"],
            authenticator_steps=c["authenticator_steps"], authenticator_batch_size=c["authenticator_batch_size"],
            authenticator_lr=c["authenticator_lr"], floor=c["synthetic_floor"],
        )
        wgan = WGANGPSettings(steps=c["wgan_steps"], batch_size=c["wgan_batch_size"], n_critic=c["n_critic"],
                              lr=c["wgan_lr"], gp_weight=c["gp_weight"])
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
                       "augment_factor": self.training_config()["augment_factor"]},
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
        """With ``refresh_every`` set: buffer accepted scores and refit the boundary periodically."""
        if self.refresh_every is None or len(accepted) == 0:
            return
        with torch.no_grad():
            scores = self.score(accepted.x, accepted.labels)
        self._recent_scores = torch.cat([self._recent_scores, scores])[-self.refresh_window:]
        self._since_refresh += len(accepted)
        if self._since_refresh >= self.refresh_every:
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
