"""The metric catalogue: every number a run reports, with its label, its format and what it means.

One list for every place that shows metrics: the console summary table (:mod:`streamsim.presentation.console`),
the live dashboard, ``report.md`` (:mod:`streamsim.presentation.report`) and the columns of a sweep's
``results.csv`` (:mod:`streamsim.running.sweep`). The numbers themselves come from the record folds in
:mod:`streamsim.core.metrics` and :class:`streamsim.artifacts.results.Collector`.

>>> METRICS["poisons"].format(816), METRICS["ca"].format(0.51234), METRICS["first_drift_alarm"].format(None)
('816', '0.5123', '–')
>>> attacker_metric("inferred_balanced_accuracy_window").label
'inferred verdicts: balanced accuracy, last window'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["rate", "count", "time", "seconds", "value", "text"]


@dataclass(frozen=True)
class Metric:
    """One reported number: ``kind`` decides its format (counts as integers, rates to 4 places)."""

    name: str
    label: str
    kind: Kind
    description: str
    short: str = ""  # a column header where space is tight (the dashboard)

    def format(self, value: Any) -> str:
        """``value`` as the tables show it; ``–`` for a missing value (None or NaN)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if self.kind == "count" and isinstance(value, int | float) and float(value).is_integer():
            return f"{int(value):d}"
        if self.kind == "time" and isinstance(value, int | float):
            return f"{value:g}"
        if self.kind == "seconds" and isinstance(value, int | float):
            return f"{value:.1f}"
        if isinstance(value, float):
            return f"{value:.4f}"
        return str(value)


def _m(name: str, label: str, kind: Kind, description: str, short: str = "") -> tuple[str, Metric]:
    return name, Metric(name, label, kind, description, short)


METRICS: dict[str, Metric] = dict([
    _m("final_accuracy", "target accuracy (final)", "rate", "accuracy on the held-out test split at the end of the attacked run"),
    _m("initial_accuracy", "target accuracy (start)", "rate", "accuracy on the held-out test split at time 0"),
    _m("baseline_final_accuracy", "no-attack baseline (final)", "rate", "final accuracy of the same stream without attackers"),
    _m("accuracy_drop", "accuracy drop vs baseline", "rate", "baseline final accuracy minus final accuracy under attack"),
    _m("mean_accuracy_drop", "mean accuracy drop vs baseline", "rate", "accuracy drop averaged over the evaluations"),
    _m("max_accuracy_drop", "largest accuracy drop vs baseline", "rate", "the largest accuracy drop at any evaluation"),
    # Harm (streamsim.artifacts.results.harm_summary): what accepted poisons did to the model.
    _m("asr", "backdoor attack success rate (final)", "rate",
       "held-out inputs not of the target class, trigger stamped, classified as the target", "ASR"),
    _m("baseline_asr", "backdoor ASR in the no-attack baseline", "rate",
       "the same triggered inputs classified as the target by the model that saw no poison"),
    _m("max_asr", "largest backdoor ASR", "rate", "the largest ASR at any evaluation"),
    _m("targeted_success", "targeted success (final)", "rate",
       "the attack's target inputs classified as the class it wants for them", "targeted"),
    _m("baseline_targeted_success", "targeted success in the no-attack baseline", "rate",
       "the same target inputs classified as wanted without any poison"),
    _m("max_targeted_success", "largest targeted success", "rate", "the largest targeted success at any evaluation"),
    _m("worst_class", "class that lost most accuracy", "count", "the class whose accuracy fell most against the baseline"),
    _m("worst_class_drop", "its accuracy drop vs baseline", "rate", "baseline minus attacked accuracy on that class"),
    _m("harm_per_1k_accepted", "accuracy drop per 1,000 accepted poisons", "value",
       "1000 × accuracy drop / poisons accepted: the harm each poison that got through did"),
    _m("ca", "ca (rejected poisons / poisons)", "rate", "critic accuracy: share of poisons the defense rejected"),
    _m("da", "da ((rejected + harmless accepted) / poisons)", "rate",
       "De-Pois accuracy: poisons rejected, or accepted but classified by their true label"),
    _m("ca_window", "ca, last window", "rate", "ca over the last metrics.window attacker batches"),
    _m("da_window", "da, last window", "rate", "da over the last metrics.window attacker batches"),
    _m("clean_frr", "clean false-rejection rate", "rate", "share of clean samples the defense rejected"),
    _m("baseline_clean_frr", "clean false-rejection rate (baseline)", "rate", "the same in the no-attack baseline"),
    _m("precision", "detector precision (poison = positive)", "rate", "rejected poisons / rejected samples"),
    _m("recall", "detector recall (poison = positive)", "rate", "rejected poisons / poisons (= ca)"),
    _m("f1", "detector F1 (poison = positive)", "rate", "harmonic mean of precision and recall"),
    _m("clean_precision", "detector precision (clean = positive)", "rate",
       "accepted clean / accepted samples (De-Pois's own count_score convention)"),
    _m("clean_recall", "detector recall (clean = positive)", "rate", "accepted clean / clean samples (= 1 − clean FRR)"),
    _m("clean_f1", "detector F1 (clean = positive)", "rate", "harmonic mean of clean precision and clean recall"),
    _m("detection_accuracy", "detector accuracy", "rate", "share of samples the defense judged right (poison rejected, clean accepted)"),
    _m("clean_prequential_error", "prequential error on clean batches", "rate", "model mistakes on clean batches before learning them"),
    _m("poisons", "poisons sent", "count", "samples sent by attacker sources"),
    _m("accepted_poisons", "poisons accepted", "count", "poisons the defense let through"),
    _m("screened", "samples screened", "count", "every sample that went through the gate"),
    _m("drift_alarms", "drift alarms", "count", "ADWIN alarms on the clean error stream"),
    _m("first_drift_alarm", "first ADWIN alarm (sim time)", "time", "simulated time of the first drift alarm"),
    _m("model_updates", "model updates", "count", "times the update policy (learner.update) changed the model"),
    _m("last_model_update", "last model update (sim time)", "time", "simulated time the model last changed"),
    _m("wall_time_s", "wall time (s)", "seconds", "wall-clock seconds of the whole run"),
    # Filter diagnostics (streamsim.artifacts.diagnostics), folded from the screen records for every defense.
    _m("clean_removal_bias_p", "class bias of clean rejections (χ² p)", "value",
       "p-value of the rejected clean points' class mix against the clean stream's; small = biased"),
    _m("screen_s_per_1k", "screening cost (s per 1,000 points)", "seconds",
       "wall seconds of defense.screen per 1,000 screened points"),
    # What attacker sources report (summary.json's attackers, timeline columns attack:<source>:<key>).
    _m("knowledge", "knowledge", "text", "the attack's threat model"),
    _m("queries_used", "queries spent", "count", "samples the attack asked the target about", "queries"),
    _m("submitted", "samples submitted", "count", "samples the source sent to the gate"),
    _m("queries_spent", "queries spent (its own count)", "count", "queries as the attack counts them"),
    _m("feedback_batches", "feedback batches absorbed", "count", "observations the attack learned from"),
    _m("eps", "eps of the last batch", "value", "perturbation budget the policy chose last", "eps"),
    _m("rate", "submission rate", "value", "the policy's current submission rate", "rate"),
    _m("arm", "bandit arm", "count", "index of the arm the policy pulled last"),
    _m("mode", "poison mode", "count", "index of the poison mode of the last arm"),
    _m("backoffs", "rate back-offs", "count", "times the policy backed off after a rejection spike", "back-offs"),
    _m("policy_frozen", "policy frozen", "count", "1 once the policy stopped exploring"),
])

# Belief-accuracy keys are <kind>_<suffix>, one set per kind of verdict belief (AttackRecord).
BELIEF_SUFFIXES: dict[str, tuple[str, Kind]] = {
    "_balanced_accuracy_window": ("balanced accuracy, last window", "rate"),
    "_accuracy_window": ("accuracy, last window", "rate"),
    "_balanced_accuracy": ("balanced accuracy", "rate"),
    "_accuracy": ("accuracy", "rate"),
    "_chance": ("chance accuracy", "rate"),
    "_n": ("samples believed", "count"),
}
BELIEF_SHORT = {"inferred": "inferred", "forecast": "shadow"}
PREFIXES = {"fidelity_": "shadow fidelity: ", "shadow_": "shadow training: "}  # an attack's shadow models' numbers

CONSOLE = ("final_accuracy", "baseline_final_accuracy", "accuracy_drop", "asr", "baseline_asr", "targeted_success",
           "baseline_targeted_success", "worst_class", "worst_class_drop", "harm_per_1k_accepted", "ca", "da", "ca_window", "da_window",
           "clean_frr", "precision", "recall", "f1", "clean_f1", "poisons", "accepted_poisons", "first_drift_alarm",
           "wall_time_s")
"""The end-of-run summary table (``streamsim run``)."""
REPORT = ("final_accuracy", "baseline_final_accuracy", "accuracy_drop", "asr", "baseline_asr", "targeted_success",
          "baseline_targeted_success", "worst_class", "worst_class_drop", "harm_per_1k_accepted", "ca", "da", "ca_window", "da_window",
          "clean_frr", "poisons", "accepted_poisons", "drift_alarms", "first_drift_alarm")
"""The metric table of a run's ``report.md``."""
SWEEP = ("ca", "da", "ca_window", "da_window", "clean_frr", "precision", "recall", "f1", "clean_precision",
         "clean_recall", "clean_f1", "detection_accuracy",
         "final_accuracy", "baseline_final_accuracy", "accuracy_drop", "mean_accuracy_drop", "poisons",
         "accepted_poisons", "first_drift_alarm", "wall_time_s", "clean_removal_bias_p", "screen_s_per_1k",
         "asr", "baseline_asr", "targeted_success", "baseline_targeted_success", "worst_class_drop",
         "harm_per_1k_accepted")
"""The metric columns of a sweep's ``results.csv`` (in this order; harm columns last, so older files keep their prefix)."""
PROBES = ("asr", "targeted_success")
"""The harm probes the catalogue knows (an attack may define others; they are reported under their own name)."""
SWEEP_PLOTS = ("ca", "da", "accuracy_drop")
"""Metrics a sweep report plots against each parameter."""
DASHBOARD_ATTACKERS = ("queries_used", "eps", "rate", "backoffs", "inferred_balanced_accuracy_window",
                       "forecast_balanced_accuracy_window")
"""Attacker numbers the dashboard gives a column when an attack reports them."""


def attacker_metric(key: str) -> Metric:
    """The catalogue entry of an attacker's number; belief scores and other stats get a derived one."""
    if key in METRICS:
        return METRICS[key]
    prefix = next((p for p in PREFIXES if key.startswith(p)), None)
    if prefix is not None:
        rest = key.removeprefix(prefix)
        return Metric(key, PREFIXES[prefix] + rest.replace("_", " "), "count" if rest == "n" else "value",
                      "reported by the attack")
    for suffix, (what, kind) in BELIEF_SUFFIXES.items():
        if key.endswith(suffix) and len(key) > len(suffix):
            belief = key.removesuffix(suffix)
            short = f"{BELIEF_SHORT.get(belief, belief)} bal.acc" if suffix == "_balanced_accuracy_window" else ""
            return Metric(key, f"{belief} verdicts: {what}", kind, f"how well the attack's {belief} verdicts match the truth", short)
    return Metric(key, key.replace("_", " "), "value", "reported by the attack")
