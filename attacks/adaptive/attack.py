"""``adaptive``: an online poisoner that learns the critic from feedback or from effects, and adapts.

The paper attacks De-Pois offline, with the critic's scores in hand (:mod:`attacks.fgsm`). A live
attacker sees less and learns while the stream runs. Per batch it

1. picks ``(ε, mode)`` and a submission rate (:class:`~attacks.adaptive.policy.Policy`);
2. crafts FGSM (``steps = 1``) or PGD poison with the arm's stages, the critic stage ascending its
   :class:`~attacks.adaptive.shadow_critic.OnlineShadowCritic` instead of the real critic and the
   classifier stage its surrogate classifier (trained on its own pool with true labels);
3. records its shadow's *forecast* of the verdicts, and — under ``effects`` — queries the model on
   the poisons and on controls before sending (:mod:`attacks.adaptive.inference`);
4. when the batch's observation arrives (late and noisy under ``verdicts``; with no verdicts under
   ``effects``, where it queries again and infers them), it takes the observed verdicts, or the
   inferred probabilities of acceptance, as its *inferred* verdicts, trains the shadow on them
   (soft targets under ``effects``) and rewards the arm.

Only :meth:`Adaptive.observe` learns, so delayed feedback is used no earlier than it arrives.
Claimed labels stay the true ones: only the pixels are poisoned, as in the paper — except for an
``effects`` attacker's *probes* (``probes``, :mod:`attacks.adaptive.probing`): label-inconsistent
canaries or boundary probes in a share of the batch, or *groups* (a batch cut to
``probing.group_size`` points, whose acceptance reads exactly from whether the model changed:
:mod:`attacks.adaptive.group`).
The probe design is part of the bandit's arms; its reward counts damage per base-batch slot, so a
design that sends fewer poisons pays for it.

**Settings.** The arms (``eps`` × ``modes`` × ``probes``), ``steps`` and ``surrogate_epochs``
are top-level; the rest comes in one table per part: ``policy``
(:class:`~attacks.adaptive.policy.PolicySettings`: the bandit and the back-off), ``shadow``
(:class:`~attacks.adaptive.shadow_critic.OnlineShadowSettings`: the online shadow critic and its
warm start) and ``probing`` (:class:`~attacks.adaptive.probing.ProbingSettings`: controls, probe
share and costs, groups), e.g. ``policy = { discount = 0.9 }``. The flat keywords of earlier
versions (``discount``, ``shadow_hidden``, ``probe_share``, ...) are refused with their new spelling.

Threat model: ``knowledge = "verdicts"`` (no queries at all) or ``"effects"`` (queries counted
against ``query_budget``: ``2(n + probing.controls)`` per inferred batch; when the budget cannot cover a
batch it stops inferring and keeps its last policy — best arm, current rate). Sample budgets are
the source's ``budget``, enforced by the simulator.

:meth:`Adaptive.verdict_beliefs` exposes ``forecast`` (the shadow critic before the verdicts; its
accuracy is the shadow's agreement with the real critic) and ``inferred``; the simulator scores
them against the truth, which the attack never sees.

>>> import numpy as np, torch
>>> from streamsim import Batch, CraftContext, SetupContext, TargetView
>>> pool = Batch.clean(torch.rand(40, 1, 28, 28) * 2 - 1, torch.arange(40) % 10)
>>> view = TargetView("verdicts", learner=None, defense=None)
>>> attack = Adaptive(eps=[0.1], modes=["classifier"], surrogate_epochs=1)
>>> attack.prepare(SetupContext(seed=0, pool=pool, view=view))
>>> ctx = CraftContext(time=1.0, rng=np.random.default_rng(0), generator=torch.Generator(), view=view)
>>> poison = attack.craft(pool.subset(torch.arange(8)), ctx)
>>> bool((poison.x - pool.x[:8]).abs().max() <= 0.1 + 1e-6), poison.labels.tolist() == pool.labels[:8].tolist()
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from attacks.adaptive.group import ChangeDetector, conditional
from attacks.adaptive.inference import EffectsInference
from attacks.adaptive.policy import Arm, Policy, PolicySettings
from attacks.adaptive.probing import DESIGNS, Prober, ProbingSettings
from attacks.adaptive.shadow_critic import OnlineShadowCritic, OnlineShadowSettings
from attacks.fgsm import FGSM, MODES
from attacks.gradients import classifier_grad, critic_grad, frozen
from attacks.pgd import PGD
from streamsim import (
    IMAGES,
    Attack,
    Batch,
    ConfigError,
    CraftContext,
    DataSpace,
    Observation,
    PluginError,
    SetupContext,
    TargetView,
    ThreatModelError,
    settings_table,
)
from streamsim.nn import classifier as classifier_for
from streamsim.seeds import seeded, shuffled_batches, torch_generator

Knowledge = Literal["verdicts", "effects"]
DEFAULT_POLICY, DEFAULT_SHADOW, DEFAULT_PROBING = PolicySettings(), OnlineShadowSettings(), ProbingSettings()


def train_surrogate(pool: Batch, epochs: int, seed: int, lr: float = 1e-3, batch_size: int = 64,
                    space: DataSpace = IMAGES) -> nn.Module:
    """A small CNN (an MLP on feature vectors) trained on the attacker's own pool: the classifier stage's transfer surrogate."""
    generator = torch_generator(seed)
    with seeded(seed):  # seeded weights (and any dropout); the global RNG untouched
        net = classifier_for("small-cnn", space)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        for idx in shuffled_batches(len(pool), batch_size, epochs, generator):
            loss = F.cross_entropy(net(pool.x[idx]), pool.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


@dataclass
class _Sent:
    arm: int
    x: torch.Tensor
    labels: torch.Tensor
    forecast: torch.Tensor  # the shadow's acceptance logits when the batch was crafted
    fooled: torch.Tensor  # the target (effects: queried) or else the surrogate misclassifies the poison
    probes: int = 0  # the last ``probes`` points are probes of design ``probe`` (effects only)
    probe: str = "none"
    slots: int = 0  # base-batch points the policy allowed (the reward's denominator); 0: as many as sent


class Adaptive(Attack):
    """Online FGSM/PGD poison steered by a shadow critic learned from (inferred) verdicts and a bandit."""

    knowledge = "verdicts"
    accepts = ("images", "vectors")
    labels = {"verdicts": "adaptive verdicts", "effects": "adaptive effects"}

    renamed: ClassVar[dict[str, str]] = {  # the flat keywords of earlier versions
        **{k: f"policy.{k}" for k in ("discount", "exploration", "backoff_spike", "backoff_factor", "min_rate")},
        **{f"shadow_{k}": f"shadow.{k}" for k in ("hidden", "steps", "lr", "buffer")}, "warm_start": "shadow.warm_start",
        **{k: f"probing.{k}" for k in ("controls", "bisection_steps", "group_size", "detectors", "detector_steps")},
        "probe_share": "probing.share",
    }

    def __init__(
        self,
        knowledge: Knowledge = "verdicts",
        eps: Sequence[float] = (0.1, 0.2, 0.3, 0.5),
        modes: Sequence[str] = ("critic-classifier", "classifier"),
        probes: Sequence[str] = ("none",),
        steps: int = 1,
        surrogate_epochs: int = 10,
        policy: PolicySettings | Mapping[str, Any] = DEFAULT_POLICY,
        shadow: OnlineShadowSettings | Mapping[str, Any] = DEFAULT_SHADOW,
        probing: ProbingSettings | Mapping[str, Any] = DEFAULT_PROBING,
    ) -> None:
        if knowledge not in ("verdicts", "effects"):
            raise ConfigError(f"knowledge must be 'verdicts' or 'effects', got {knowledge!r}")
        if not eps or any(e < 0 for e in eps):
            raise ConfigError(f"eps must be a non-empty list of values >= 0, got {list(eps)}")
        bad = [m for m in modes if m not in MODES]
        if not modes or bad:
            raise ConfigError(f"modes must be a non-empty list of {', '.join(MODES)}; got {list(modes)}")
        bad = [p for p in probes if p not in DESIGNS]
        if not probes or bad:
            raise ConfigError(f"probes must be a non-empty list of {', '.join(DESIGNS)}; got {list(probes)}")
        if knowledge != "effects" and any(p != "none" for p in probes):
            raise ConfigError(f"probes {list(probes)} need knowledge = 'effects' (a verdicts attacker hears its verdicts)")
        if steps < 1:
            raise ConfigError(f"steps must be >= 1, got {steps}")
        self.knowledge = knowledge  # per instance: the simulator reads attack.knowledge
        self.eps = tuple(float(e) for e in eps)
        self.modes = tuple(modes)
        self.probes = tuple(probes)
        self.steps = steps
        self.surrogate_epochs = surrogate_epochs
        self.policy = settings_table(PolicySettings, policy, "policy")
        self.shadow = settings_table(OnlineShadowSettings, shadow, "shadow")
        self.probing = settings_table(ProbingSettings, probing, "probing")
        # state, built in prepare()
        self.arms = [Arm(e, m, p) for e in self.eps for m in self.modes for p in self.probes]
        self.probers_: dict[str, Prober] = {}
        self.detector_: ChangeDetector | None = None
        self.view_: TargetView | None = None
        self.pool_: Batch | None = None
        self.surrogate_: nn.Module | None = None
        self.shadow_: OnlineShadowCritic | None = None
        self.policy_: Policy | None = None
        self.inference_: EffectsInference | None = None
        self.inferring_ = knowledge == "effects"
        self.sent_: dict[float, _Sent] = {}
        self.forecasts_: dict[float, torch.Tensor] = {}
        self.inferred_: dict[float, torch.Tensor] = {}
        self.observed_ = 0
        self.rewards_: list[float] = []
        self.probed_: dict[float, int] = {}  # probes at the end of each inferred batch that had any

    def craft_steps(self) -> int:
        """Gradient steps crafting one poison takes, at most: ``steps`` per stage of the longest mode."""
        return self.steps * max(len(m.split("-")) for m in self.modes)

    def __repr__(self) -> str:
        return f"Adaptive(knowledge={self.knowledge!r}, eps={list(self.eps)}, modes={list(self.modes)}, steps={self.steps})"

    # --- setup ------------------------------------------------------------------------------
    def prepare(self, context: SetupContext) -> None:
        """Train the surrogate on the pool, start the shadow critic (warm-started) and the policy."""
        if context.view is None:
            raise ThreatModelError(f"{type(self).__name__} needs a view of the target ({self.knowledge!r})")
        if context.pool is None or len(context.pool) == 0:
            raise PluginError(f"{type(self).__name__} needs an attacker pool (surrogate, controls)")
        self.view_, self.pool_ = context.view, context.pool
        self.surrogate_ = train_surrogate(context.pool, self.surrogate_epochs, context.seed, space=context.space)
        shadow = self.shadow
        self.shadow_ = OnlineShadowCritic(shadow.hidden, lr=shadow.lr, steps=shadow.steps, buffer=shadow.buffer,
                                          seed=context.seed, space=context.space)
        if shadow.warm_start:
            # Prior: the defense accepts clean samples and rejects noise-like perturbations of them.
            # Real feedback pushes these out of the replay buffer as it arrives.
            g = context.generator()
            pool = context.pool.subset(torch.randperm(len(context.pool), generator=g)[: shadow.warm_start])
            noise = torch.randint(0, 2, pool.x.shape, generator=g).float() * 2 - 1
            noisy = context.space.project(pool.x + max(self.eps) * noise)
            self.shadow_.update(torch.cat([pool.x, noisy]), torch.cat([pool.labels, pool.labels]),
                                torch.cat([torch.ones(len(pool)), torch.zeros(len(pool))]))
            self.shadow_.updates = 0
        p = self.policy
        self.policy_ = Policy(self.arms, p.discount, p.exploration, p.backoff_spike, p.backoff_factor, p.min_rate)
        if self.knowledge == "effects":
            probing = self.probing
            self.inference_ = EffectsInference(probing.controls)
            self.probers_ = {p: Prober(p, probing.bisection_steps) for p in self.probes if p in ("canary", "boundary")}
            if "group" in self.probes:
                self.detector_ = ChangeDetector(probing.detectors, probing.detector_steps)

    def _ready(self) -> tuple[TargetView, Batch, nn.Module, OnlineShadowCritic, Policy]:
        if self.view_ is None or self.pool_ is None or self.surrogate_ is None or self.shadow_ is None or self.policy_ is None:
            raise PluginError(f"{type(self).__name__}: call prepare() first")
        return self.view_, self.pool_, self.surrogate_, self.shadow_, self.policy_

    # --- crafting ---------------------------------------------------------------------------
    def perturb(self, x: torch.Tensor, labels: torch.Tensor, arm: Arm, context: CraftContext) -> torch.Tensor:
        """The arm's FGSM/PGD stages, the critic stage on the shadow critic (skipped until it is ready)."""
        _, _, surrogate, shadow, _ = self._ready()
        step = FGSM(eps=arm.eps, mode=arm.mode) if self.steps == 1 else PGD(eps=arm.eps, steps=self.steps, mode=arm.mode)
        directions = {
            "critic": (lambda v: critic_grad(shadow.score, v, labels)) if shadow.ready else None,
            "classifier": lambda v: classifier_grad(surrogate, v, labels),
        }
        with frozen(surrogate, shadow.net):
            return step.perturb(x.detach().clone(), directions, context).detach()

    def craft(self, base: Batch, context: CraftContext) -> Batch:
        view, pool, surrogate, shadow, policy = self._ready()
        choice = policy.choose()
        n = slots = max(1, round(choice.rate * len(base)))
        probing = self.inferring_ and self.inference_ is not None
        detect = probing and choice.arm.probe == "group" and not view.effects_proba
        if probing and choice.arm.probe == "group":
            n = min(n, self.probing.group_size)
            if detect and view.queries_left < self.detector_.cost() + 2 * (n + self.probing.controls):
                n, detect = slots, False  # the budget cannot cover the detectors: a plain batch
        base = base.subset(torch.arange(n))
        prober, k = self.probers_.get(choice.arm.probe), 0
        if probing and prober is not None and n > 1:
            k = prober.count(n, self.probing.share)
            if view.queries_left < prober.cost(k) + 2 * (n - k + self.probing.controls):
                k = 0  # the budget cannot cover the probes too: send poisons only
        m = n - k  # poisons; the last k base samples become probes
        x, labels = base.x[:m], base.labels[:m]
        if probing:
            pick = torch.from_numpy(context.rng.choice(len(pool), size=min(self.probing.controls, len(pool)), replace=False))
            x, labels = torch.cat([x, pool.x[pick]]), torch.cat([labels, pool.labels[pick]])
        crafted = self.perturb(x, labels, choice.arm, context)
        probed = probing and self.inference_.before(view, context.time, crafted, labels, m)
        if probing and not probed:
            self.inferring_ = False  # the budget cannot cover another batch: stop inferring, keep the policy
            policy.freeze()
        poison = context.space.project(crafted[:m])  # into each feature's range and grid (images: as it was)
        claimed = base.labels[:m]
        if probed and detect:
            self.detector_.before(view, context.time, pool.x, pool.labels, context.generator)
        if probed:
            fooled = self.inference_.misclassified(context.time)  # the target's own answer, already paid for
        else:
            with torch.no_grad():
                fooled = surrogate(poison).argmax(1) != claimed
        if probed and k:
            twins = torch.from_numpy(context.rng.choice(len(pool), size=min(k, len(pool)), replace=False))
            px, py = torch.cat([base.x[m:], pool.x[twins]]), torch.cat([base.labels[m:], pool.labels[twins]])
            probe_x, probe_claimed = prober.make(px, py, pool.x, pool.labels, view, context.generator, context.space.n_classes)
            prober.inference.before(view, context.time, probe_x, probe_claimed, k)  # covered: checked above
            poison, claimed = torch.cat([poison, probe_x[:k]]), torch.cat([claimed, probe_claimed[:k]])
            fooled = torch.cat([fooled, torch.ones(k, dtype=torch.bool)])  # the model does not give them that label
        else:
            k = 0
        forecast = shadow.logit(poison, claimed)
        self.forecasts_[context.time] = forecast > 0
        self.sent_[context.time] = _Sent(choice.index, poison, claimed, forecast, fooled, k, choice.arm.probe, slots)
        return base.with_(x=poison, labels=claimed)

    # --- feedback ---------------------------------------------------------------------------
    def observe(self, observation: Observation) -> None:
        """Turn the batch's feedback into (inferred) verdicts, train the shadow, reward the arm."""
        view, _, _, shadow, policy = self._ready()
        sent = self.sent_.pop(observation.submitted_at, None)
        if sent is None:
            return
        if observation.accepted is not None:
            accepted = observation.accepted.float()  # as observed: maybe flipped, we cannot tell which
        elif self.inference_ is not None:
            inferred = self.inference_.after(view, observation.submitted_at)
            if inferred is None:
                return  # not probed (budget): nothing learned from this batch
            if sent.probes:
                probed = self.probers_[sent.probe].inference.after(view, observation.submitted_at)
                inferred = torch.cat([inferred, torch.full((sent.probes,), 0.5) if probed is None else probed])
            # The group bit: the model changed iff the learner took any of the batch (probabilities: any
            # queried output moved; labels: a boundary detector flipped, when the arm placed them).
            changed = self.inference_.last_changed if view.effects_proba else (
                self.detector_.changed(view, observation.submitted_at) if self.detector_ is not None else None)
            accepted = inferred if changed is None else conditional(inferred, changed)
        else:
            return
        self.observed_ += 1
        believed = accepted > 0.5
        self.inferred_[observation.submitted_at] = believed
        if sent.probes:
            self.probed_[observation.submitted_at] = sent.probes
        shadow.update(sent.x, sent.labels, accepted)
        reward = float((accepted * sent.fooled.float()).sum()) / (sent.slots or len(accepted))
        self.rewards_.append(reward)
        policy.feedback(sent.arm, reward, rejected=float(1 - accepted.mean()))

    # --- checkpoints ------------------------------------------------------------------------
    def checkpoint_state(self) -> dict[str, Any]:
        """Everything the stream changed: surrogate, shadow, policy, inference, what is in flight, beliefs.

        Query counters live in the simulator's view of the target, which checkpoints them itself.
        """
        _, _, surrogate, shadow, policy = self._ready()

        def timed(beliefs: dict[float, torch.Tensor]) -> list[dict[str, Any]]:
            return [{"time": t, "accept": v.clone()} for t, v in beliefs.items()]

        return {
            "surrogate": {k: v.detach().clone() for k, v in surrogate.state_dict().items()},
            "shadow": shadow.checkpoint_state(), "policy": policy.checkpoint_state(),
            "inference": None if self.inference_ is None else self.inference_.checkpoint_state(),
            "probers": {p: prober.inference.checkpoint_state() for p, prober in self.probers_.items()},
            "detector": None if self.detector_ is None else [{"time": t, "x": x, "before": b}
                                                             for t, (x, b) in self.detector_.pending.items()],
            "inferring": self.inferring_, "observed": self.observed_, "rewards": list(self.rewards_),
            "sent": [{"time": t, "arm": s.arm, "x": s.x, "labels": s.labels, "forecast": s.forecast, "fooled": s.fooled,
                      "probes": s.probes, "probe": s.probe, "slots": s.slots} for t, s in self.sent_.items()],
            "forecasts": timed(self.forecasts_), "inferred": timed(self.inferred_),
            "probed": [{"time": t, "probes": k} for t, k in self.probed_.items()],
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`checkpoint_state`; call after :meth:`prepare` with the same settings."""
        _, _, surrogate, shadow, policy = self._ready()
        surrogate.load_state_dict(state["surrogate"])
        shadow.restore_state(state["shadow"])
        policy.restore_state(state["policy"])
        if self.inference_ is not None and state["inference"] is not None:
            self.inference_.restore_state(state["inference"])
        for p, prober_state in state.get("probers", {}).items():
            self.probers_[p].inference.restore_state(prober_state)
        if self.detector_ is not None and state.get("detector") is not None:
            self.detector_.pending = {float(d["time"]): (d["x"], d["before"]) for d in state["detector"]}
        self.inferring_, self.observed_ = bool(state["inferring"]), int(state["observed"])
        self.rewards_ = [float(r) for r in state["rewards"]]
        self.sent_ = {float(s["time"]): _Sent(int(s["arm"]), s["x"], s["labels"], s["forecast"], s["fooled"],
                                              int(s.get("probes", 0)), str(s.get("probe", "none")),
                                              int(s.get("slots", 0)))
                      for s in state["sent"]}
        self.forecasts_ = {float(b["time"]): b["accept"] for b in state["forecasts"]}
        self.inferred_ = {float(b["time"]): b["accept"] for b in state["inferred"]}
        self.probed_ = {float(b["time"]): int(b["probes"]) for b in state.get("probed", [])}

    # --- reporting --------------------------------------------------------------------------
    def verdict_beliefs(self) -> dict[str, dict[float, torch.Tensor]]:
        """``forecast`` and ``inferred`` on every submitted point; with probes, also ``inferred`` split
        into ``poisons`` and ``probes`` (NaN where a kind does not apply, so each is scored on its own)."""
        beliefs = {"forecast": dict(self.forecasts_), "inferred": dict(self.inferred_)}
        if any(p != "none" for p in self.probes):
            poisons, probes = {}, {}
            for t, believed in self.inferred_.items():
                k = self.probed_.get(t, 0)
                is_probe = torch.arange(len(believed)) >= len(believed) - k
                as_float = believed.float()
                poisons[t] = torch.where(is_probe, torch.nan, as_float)
                probes[t] = torch.where(is_probe, as_float, torch.nan)
            beliefs.update(inferred_poisons=poisons, inferred_probes=probes)
        return beliefs

    def stats(self) -> dict[str, float]:
        """Queries spent, feedback absorbed, the current arm and rate, recent reward."""
        out: dict[str, float] = {"feedback_batches": float(self.observed_)}
        if self.view_ is not None:
            out["queries_spent"] = float(self.view_.queries_used)
        if self.policy_ is not None:
            last = self.policy_.last
            if last is not None:
                out.update(arm=float(last.index), eps=last.arm.eps, mode=float(self.modes.index(last.arm.mode)),
                           rate=last.rate)
                if len(self.probes) > 1 or self.probes[0] != "none":
                    out["probe"] = float(self.probes.index(last.arm.probe))
            out["backoffs"] = float(self.policy_.backoff.backoffs)
            out["policy_frozen"] = float(self.policy_.frozen)
        if self.knowledge == "effects":
            out["inferring"] = float(self.inferring_)
            if self.inference_ is not None:
                out["unlearned_estimate"] = self.inference_.unlearned
        recent = self.rewards_[-10:]
        out["reward_recent"] = sum(recent) / len(recent) if recent else math.nan
        return out
