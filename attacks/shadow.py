"""Shadow models: a black-box attacker's differentiable stand-ins for the deployed classifier and critic.

Oschart et al. (arXiv 2204.01090, Sec. "Black-box attack") assume the attacker knows the
architecture of De-Pois but holds only query access (``posteriors``: the model's probabilities
and the critic's scores). It distils both models on its own data and runs FGSM on the copies.

**Queries.** :func:`query_teachers` asks the view once per pool point and per model; it never
asks for more than ``view.queries_left`` allows, so a small budget means fewer training points,
not an error.

**Classifier.** A fresh network (the paper's CNN by default) trained with Hinton distillation as
the reference code does: ``L = α·CE(y, p_s) + KL(p_t^T ‖ p_s^T)``, ``p^T = softmax(logits / T)``;
the teacher's logits are recovered up to a constant as ``log p_t``, which softmax ignores.

**The reference recipe.** The attack paper's code distilled the classifier with
``0.1·CE + 0.9·KL`` at ``T = 10`` for one epoch of batch 32 (``alpha = 0.1, kl_weight = 0.9``;
the paper's text says α = 0.5), and the critic with the batch-softmax KL at ``T = 1`` over
batches of 2,084, querying the critic under the *true* labels (``teacher_labels = "claimed"``)
although the deployed De-Pois conditions on predicted ones. Each is a setting here.

**Critic.** The De-Pois critic architecture (flattened image ⊙ label embedding → 1024 → 128 →
16 → 1) trained, as in the reference, on ``KL(softmax_batch(t / T) ‖ softmax_batch(s / T))``:
a softmax over the *batch* of scores, so the shadow learns which points the critic trusts more,
not the critic's offset. The reference used ``T = 1``, which assumes scores of order one; a
WGAN critic's scores can spread over tens, where a batch softmax is one-hot on the maximum and
teaches nothing about the rest. So ``T`` defaults to the spread (std) of the teacher's scores.
The shadow is conditioned on the *claimed* label: the view's scores already reflect whatever
labels the defense conditions on (``Scoring.score`` conditions as the defense screens), so the
shadow learns the map from what the attacker controls to the score the defense will compute.

**Boundary.** The shadow's scores live on their own scale, so the real boundary is useless to
it, and a black-box attacker does not know the real boundary anyway. De-Pois sets it at
``mean − k·std`` of the critic's scores on clean data (``k = 1`` in the reference). The attacker
applies that rule to the real scores it bought on its own clean pool, notes which fraction of its
pool falls below that estimate, and puts the shadow boundary at the same quantile of the
shadow's scores on the pool. Quantile matching survives any monotone mismatch between the two
scales, which a batch-softmax fit does not pin down.

>>> import torch
>>> critic = ConditionalCritic(hidden=(32, 8))
>>> critic(torch.zeros(3, 1, 28, 28), torch.tensor([0, 1, 2])).shape
torch.Size([3])
>>> teacher = torch.tensor([0., 1., 2., 3., 4.])
>>> matched_boundary(teacher, 10 * teacher, k=1.0)  # same ranks, other scale
10.0
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

from streamsim import (
    IMAGES,
    N_CLASSES,
    ArtifactCache,
    Batch,
    ConfigError,
    DataSpace,
    Defense,
    Learner,
    PluginError,
    SetupContext,
    TargetView,
    ThreatModelError,
    cached_fit,
)
from streamsim.nn import CLASSIFIERS
from streamsim.nn import classifier as classifier_for
from streamsim.seeds import seeded, shuffled_batches, torch_generator

IMAGE_PIXELS = IMAGES.n_features  # the default critic's input; a vector space passes its own
LEAK = 0.2
DROPOUT = 0.4


class ConditionalCritic(nn.Module):
    """The De-Pois critic's shape: ``flatten(x) ⊙ embed(label)`` → hidden layers → one score.

    LeakyReLU 0.2 after each hidden layer, dropout 0.4 after all but the first (as De-Pois), and
    Keras-style initialisation (Glorot weights, zero biases, embeddings in ±0.05): with PyTorch's
    ``N(0, 1)`` embeddings the gated inputs start ~20× too large for the same learning rate.
    """

    def __init__(self, hidden: Sequence[int] = (1024, 128, 16), n_classes: int = N_CLASSES,
                 in_features: int = IMAGE_PIXELS) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_classes, in_features)
        layers: list[nn.Module] = []
        width = in_features
        for i, out in enumerate(hidden):
            layers += [nn.Linear(width, out), nn.LeakyReLU(LEAK)]
            if i > 0:
                layers.append(nn.Dropout(DROPOUT))
            width = out
        layers.append(nn.Linear(width, 1))
        self.body = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.uniform_(self.embed.weight, -0.05, 0.05)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1) * self.embed(labels)).squeeze(1)


@dataclass
class TeacherAnswers:
    """What the attacker bought: its points, their labels, and the target's answers on them."""

    x: torch.Tensor
    labels: torch.Tensor
    proba: torch.Tensor | None
    scores: torch.Tensor | None
    queries: int


def query_teachers(view: TargetView, pool: Batch, classifier: bool, critic: bool, max_points: int | None,
                   generator: torch.Generator, chunk: int = 1024, on_claimed: bool = False) -> TeacherAnswers:
    """Query the deployed models on (a random subset of) the pool, within the view's budget.

    Each point costs one query per model asked. If the defense has no score (a critic query
    answers ``None``), ``scores`` is ``None`` and the budget goes to the classifier. With
    ``on_claimed`` the critic is asked for its score under the pool's (true) labels, whatever the
    defense conditions on (:meth:`~streamsim.simulation.threat.TargetView.critic_score`).
    """
    start_used = view.queries_used
    order = torch.randperm(len(pool), generator=generator)
    x, labels = pool.x[order], pool.labels[order]
    first_scores: list[torch.Tensor] = []
    if critic and view.queries_left >= 1 and len(pool) > 0:
        probe = view.critic_score(x[:1], labels[:1], on_claimed)  # one point: a defense without a score wastes one query
        if probe is None:
            critic = False
        else:
            first_scores.append(probe)
    done = len(first_scores)
    cost = int(classifier) + int(critic)
    n = len(pool) if max_points is None else min(len(pool), max_points)
    if cost and view.queries_left != float("inf"):
        n = min(n, int((view.queries_left + done * int(critic)) // cost))
    n = max(n, done)
    x, labels = x[:n], labels[:n]
    proba = torch.cat([view.predict_proba(x[i:i + chunk]) for i in range(0, n, chunk)]) if classifier else None
    scores = None
    if critic:
        rest = [view.critic_score(x[i:i + chunk], labels[i:i + chunk], on_claimed) for i in range(done, n, chunk)]
        scores = torch.cat(first_scores + rest).float()
    return TeacherAnswers(x, labels, proba, scores, int(view.queries_used - start_used))


def distill_classifier(student: nn.Module, x: torch.Tensor, y: torch.Tensor, teacher_proba: torch.Tensor, *,
                       alpha: float, temperature: float, epochs: int, batch_size: int, lr: float,
                       generator: torch.Generator, kl_weight: float = 1.0) -> None:
    """Train ``student`` on ``α·CE(y, p_s) + β·KL(p_t^T ‖ p_s^T)`` (Hinton distillation, ``β = kl_weight``)."""
    teacher_soft = F.log_softmax(teacher_proba.clamp_min(1e-12).log() / temperature, dim=1)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    student.train()
    for idx in shuffled_batches(len(x), batch_size, epochs, generator):
        logits = student(x[idx])
        kl = F.kl_div(F.log_softmax(logits / temperature, dim=1), teacher_soft[idx], log_target=True,
                      reduction="batchmean")
        loss = alpha * F.cross_entropy(logits, y[idx]) + kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    student.eval()


def distill_critic(student: ConditionalCritic, x: torch.Tensor, labels: torch.Tensor, teacher_scores: torch.Tensor,
                   *, temperature: float, epochs: int, batch_size: int, lr: float, generator: torch.Generator) -> None:
    """Train ``student`` on ``KL(softmax_batch(t/T) ‖ softmax_batch(s/T))``, the reference's critic loss.

    The critic's dropout draws from torch's global RNG, so training runs under a seed drawn from
    ``generator``: the shadow then repeats from the attack's seed, whatever else the process did.
    """
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    dropout_seed = int(torch.randint(2**62, (1,), generator=generator))
    student.train()
    with seeded(dropout_seed):
        for idx in shuffled_batches(len(x), batch_size, epochs, generator):
            if len(idx) < 2:
                continue  # a softmax over one score is constant: nothing to learn
            target = F.log_softmax(teacher_scores[idx] / temperature, dim=0)
            pred = F.log_softmax(student(x[idx], labels[idx]) / temperature, dim=0)
            loss = F.kl_div(pred, target, log_target=True, reduction="sum")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    student.eval()


def matched_boundary(teacher_scores: torch.Tensor, student_scores: torch.Tensor, k: float) -> float:
    """The shadow score that rejects as many pool points as the estimated real boundary (mean − k·std).

    If ``m`` pool points fall below the estimate, the boundary is the ``m``-th smallest shadow
    score (0-based), so exactly ``m`` shadow scores fall below it (barring ties).
    """
    estimate = teacher_scores.mean() - k * teacher_scores.std()
    m = min(int((teacher_scores < estimate).sum()), len(student_scores) - 1)
    return float(student_scores.float().sort().values[m])


def _rank_corr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman correlation: does the shadow order points like the critic? 0 where it is undefined
    (fewer than two points, or constant scores): no evidence of a shared order."""
    if len(a) < 2 or bool((a == a[0]).all()) or bool((b == b[0]).all()):
        return 0.0
    return float(spearmanr(a.detach().double().numpy(), b.detach().double().numpy()).statistic)


@dataclass
class Shadows:
    """The distilled copies and the shadow critic's own boundary."""

    classifier: nn.Module | None
    critic: ConditionalCritic | None
    boundary: float = float("nan")
    stats: dict[str, float] = field(default_factory=dict)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)

    def score(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.critic(x, labels)

    @torch.no_grad()
    def fidelity(self, defense: Defense | None, learner: Learner | None, x: torch.Tensor,
                 y: torch.Tensor) -> dict[str, float]:
        """How well the shadows stand in for the deployed models on ``(x, y)`` (held-out data).

        ``classifier_agreement``: fraction where shadow and learner predict the same class.
        ``critic_agreement``: fraction where the shadow critic (own boundary) and the real critic
        (real boundary) make the same accept/reject call for claimed labels ``y``;
        ``critic_accept_real`` / ``critic_accept_shadow`` are the two accept rates and
        ``critic_rank_corr`` the Spearman correlation of the two scores.
        """
        out: dict[str, float] = {"n": float(len(x))}
        if self.classifier is not None and learner is not None:
            out["classifier_agreement"] = float((self.classifier(x).argmax(1) == learner.predict(x)).float().mean())
        if self.critic is not None and defense is not None:
            real = defense.score(x, y).detach().float()
            shadow = self.critic(x, y).float()
            real_ok, shadow_ok = real >= defense.boundary, shadow >= self.boundary
            out["critic_agreement"] = float((real_ok == shadow_ok).float().mean())
            out["critic_accept_real"] = float(real_ok.float().mean())
            out["critic_accept_shadow"] = float(shadow_ok.float().mean())
            out["critic_rank_corr"] = _rank_corr(real, shadow)
        return out


Classifier = Literal["paper-cnn", "paper-cnn-same", "paper-cnn-channels-first", "small-cnn"]
Pool = Literal["attacker", "attacker+base", "training"]
TeacherLabels = Literal["defense", "claimed"]
POOLS = ("attacker", "attacker+base", "training")


@dataclass(frozen=True)
class ShadowSettings:
    """How a black-box attacker buys and trains its shadows: the ``shadow`` table of ``fgsm``,
    ``pgd``, ``targeted`` and ``accumulative`` (``shadow = { points = 1000, epochs = 3 }``).

    ``classifier`` names the shadow network on images (:data:`streamsim.nn.CLASSIFIERS`; an MLP on
    vectors), ``points`` caps the pool points bought (``None``: as many as the pool and budget
    allow), ``pool`` says where they come from (``"attacker"``: the attacker's own split;
    ``"attacker+base"``: plus the images it poisons; ``"training"``: the target's training data,
    which the source must grant). The classifier is distilled with ``alpha·CE + kl_weight·KL`` at
    ``temperature`` for ``epochs`` of ``batch_size``; the critic (``critic_hidden`` layers) with the
    batch-softmax KL at ``critic_temperature`` (``None``: the teacher scores' std) for
    ``critic_epochs`` of ``critic_batch_size``; ``teacher_labels`` conditions the critic queries
    (``"claimed"``: the true labels, as the reference code did); ``boundary_k`` sets the boundary
    estimate ``mean − k·std``.

    >>> ShadowSettings(points=0)
    Traceback (most recent call last):
    ...
    streamsim.core.errors.ConfigError: points must be >= 1 (or left out: the whole pool), got 0
    """

    classifier: Classifier = "paper-cnn"
    points: int | None = None
    pool: Pool = "attacker"
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    alpha: float = 0.5
    temperature: float = 10.0
    kl_weight: float = 1.0
    critic_hidden: Sequence[int] = (1024, 128, 16)
    critic_epochs: int = 100
    critic_batch_size: int = 2048
    critic_lr: float = 1e-3
    critic_temperature: float | None = None
    boundary_k: float = 1.0
    teacher_labels: TeacherLabels = "defense"

    def __post_init__(self) -> None:
        object.__setattr__(self, "critic_hidden", tuple(self.critic_hidden))
        if self.classifier not in CLASSIFIERS:
            raise ConfigError(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {self.classifier!r}")
        if self.points is not None and self.points < 1:
            raise ConfigError(f"points must be >= 1 (or left out: the whole pool), got {self.points}")
        if self.pool not in POOLS:
            raise ConfigError(f"pool must be one of {', '.join(POOLS)}, got {self.pool!r}")
        if self.teacher_labels not in ("defense", "claimed"):
            raise ConfigError(f"teacher_labels must be 'defense' or 'claimed', got {self.teacher_labels!r}")
        if self.epochs < 0 or self.critic_epochs < 0:
            raise ConfigError(f"epochs and critic_epochs must be >= 0, got {self.epochs} and {self.critic_epochs}")
        if self.batch_size < 1 or self.critic_batch_size < 2:
            raise ConfigError("batch_size must be >= 1 and critic_batch_size >= 2 (a batch softmax needs two), "
                              f"got {self.batch_size} and {self.critic_batch_size}")
        if not (self.lr > 0 and self.critic_lr > 0 and self.temperature > 0):
            raise ConfigError(f"lr, critic_lr and temperature must be > 0, got {self.lr}, {self.critic_lr}, "
                              f"{self.temperature}")
        if self.critic_temperature is not None and not self.critic_temperature > 0:
            raise ConfigError(f"critic_temperature must be > 0 (or left out: the scores' std), got {self.critic_temperature}")
        if self.alpha < 0 or self.kl_weight < 0:
            raise ConfigError(f"alpha and kl_weight must be >= 0, got {self.alpha} and {self.kl_weight}")
        if any(width < 1 for width in self.critic_hidden):
            raise ConfigError(f"critic_hidden must be layer widths >= 1, got {list(self.critic_hidden)}")


#: What the flat keywords of earlier versions are called now: the ``renamed`` of every attack with a shadow table.
RENAMED = {f"shadow_{name}": f"shadow.{name}" for name in ShadowSettings.__dataclass_fields__}


def distillation_pool(settings: ShadowSettings, context: SetupContext, who: str) -> Batch:
    """The points a black-box attacker buys answers on: its pool, with its base split, or the target's training data."""
    if context.pool is None or len(context.pool) == 0:
        raise PluginError(f"{who} with knowledge 'posteriors' needs an attacker pool to distil on")
    if settings.pool == "attacker+base" and context.base is not None:
        return Batch.concat([context.pool, context.base])  # the images it poisons are its data too
    if settings.pool == "training":
        if context.training is None or len(context.training) == 0:
            raise ThreatModelError(f"{who} shadow.pool 'training' needs the target's training data: "
                                   "set the attacker source's training_data = true")
        return context.training
    return context.pool


CACHE_KIND = "attack-shadows"
LATER_DEFAULTS = {"kl_weight": 1.0, "teacher_labels": "defense"}
NOT_KEYED = ("pool",)  # where the points came from is in the answers' digest


def keyed_settings(settings: ShadowSettings) -> dict[str, object]:
    """The settings that enter a cached shadow's key. Options added later enter it only when set,
    so shadows cached before them stay valid."""
    return {k: v for k, v in asdict(settings).items()
            if k not in NOT_KEYED and (k not in LATER_DEFAULTS or v != LATER_DEFAULTS[k])}


def _answers_digest(bought: TeacherAnswers) -> str:
    """sha256 of everything the target answered: a cache hit needs the very same answers."""
    h = hashlib.sha256()
    for t in (bought.x, bought.labels, bought.proba, bought.scores):
        h.update(b"-" if t is None else t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def distill_shadows(view: TargetView, pool: Batch, settings: ShadowSettings, seed: int, *,
                    classifier: bool = True, critic: bool = True, cache: ArtifactCache | None = None,
                    space: DataSpace = IMAGES) -> Shadows:
    """Buy the target's answers on the pool (within budget) and distil the shadows asked for.

    The shadows are sized to ``space``: the named CNN on images, an MLP (:func:`streamsim.nn.mlp`)
    on feature vectors — whatever the target is, a river model included: only its answers matter.

    With a ``cache``, trained shadows are stored under a key made of the settings, the seed and a
    hash of the answers bought, so they are reused only for the very same target answers; the
    queries are spent either way, so a cached run counts its budget exactly like a fresh one.
    """
    generator = torch_generator(seed)
    bought = query_teachers(view, pool, classifier, critic, settings.points, generator,
                            on_claimed=settings.teacher_labels == "claimed")
    stats: dict[str, float] = {"points": float(len(bought.x)), "queries": float(bought.queries)}
    if len(bought.x) == 0:
        return Shadows(classifier=None, critic=None, stats=stats)

    def fresh() -> tuple[nn.Module | None, ConditionalCritic | None]:
        with seeded(seed):  # seeded initialisation, caller's global RNG untouched
            student = classifier_for(settings.classifier, space) if bought.proba is not None else None
            shadow_critic = ConditionalCritic(settings.critic_hidden, space.n_classes, space.n_features) \
                if bought.scores is not None else None
        return student, shadow_critic

    def load(tensors: dict[str, torch.Tensor], meta: dict) -> Shadows:
        nets = fresh()
        for prefix, net in zip(("classifier.", "critic."), nets, strict=True):
            if net is not None:
                net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
                net.eval()
        boundary = meta["boundary"] if meta["boundary"] is not None else float("nan")
        return Shadows(*nets, boundary=boundary, stats={**stats, **meta["stats"], "cached": 1.0})

    def save(shadows: Shadows) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {f"{prefix}{k}": v for prefix, net in (("classifier.", shadows.classifier), ("critic.", shadows.critic))
                   if net is not None for k, v in net.state_dict().items()}
        fitted = {k: v for k, v in shadows.stats.items() if k not in ("points", "queries")}
        # JSON has no NaN: a shadow without a critic (classifier-only modes) stores no boundary.
        boundary = shadows.boundary if math.isfinite(shadows.boundary) else None
        return tensors, {"boundary": boundary, "stats": {
            k: v if not isinstance(v, float) or math.isfinite(v) else None for k, v in fitted.items()}}

    key = {"answers": _answers_digest(bought), "settings": keyed_settings(settings), "seed": seed}
    if space.kind == "vectors":  # the networks are sized to the data (images keep their old keys)
        key["space"] = {"features": space.n_features, "classes": space.n_classes}
    shadows, _ = cached_fit(cache, CACHE_KIND, key, fit=lambda: _fit_shadows(bought, settings, *fresh(), stats, generator),
                            load=load, save=save)
    return shadows


def _fit_shadows(bought: TeacherAnswers, settings: ShadowSettings, student: nn.Module | None,
                 shadow_critic: ConditionalCritic | None, stats: dict[str, float], generator: torch.Generator) -> Shadows:
    """Distil the (freshly initialised) networks on what was bought; the fit's statistics go into ``stats``."""
    shadows = Shadows(classifier=None, critic=None, stats=stats)
    if student is not None:
        distill_classifier(student, bought.x, bought.labels, bought.proba, alpha=settings.alpha,
                           temperature=settings.temperature, epochs=settings.epochs, batch_size=settings.batch_size,
                           lr=settings.lr, generator=generator, kl_weight=settings.kl_weight)
        with torch.no_grad():
            agree = student(bought.x).argmax(1) == bought.proba.argmax(1)
        stats["fit_classifier_agreement"] = float(agree.float().mean())
        shadows.classifier = student
    if shadow_critic is not None:
        t = bought.scores
        temperature = settings.critic_temperature
        if temperature is None:
            temperature = float(t.std().clamp_min(1e-6)) if len(t) > 1 else 1.0
        distill_critic(shadow_critic, bought.x, bought.labels, t, temperature=temperature,
                       epochs=settings.critic_epochs, batch_size=settings.critic_batch_size, lr=settings.critic_lr,
                       generator=generator)
        with torch.no_grad():
            s = shadow_critic(bought.x, bought.labels)
        shadows.critic = shadow_critic
        shadows.boundary = matched_boundary(t, s, settings.boundary_k) if len(t) > 1 else float(s.min())
        stats["critic_temperature"] = temperature
        stats["fit_critic_rank_corr"] = _rank_corr(t, s)
        estimate = t.mean() - settings.boundary_k * t.std()
        stats["fit_critic_agreement"] = float(((t >= estimate) == (s >= shadows.boundary)).float().mean())
    return shadows
