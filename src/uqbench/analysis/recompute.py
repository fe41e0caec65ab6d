"""Metrics recomputed from a run's saved predictions, with the recorded definitions or the user's.

:func:`recorded_metrics` recomputes every metric a run's predictions allow exactly as the
evaluation harness defines it (docs/run_directory.md), so that it can be checked against
``summary.json``; :func:`calibration_metrics` computes calibration errors with the user's
definition (number of bins, equal-width or equal-mass, top label or classwise) beside the
recorded ones. Not recomputable from the files: a regression NLL of MC dropout (its Monte-Carlo
samples are not saved) and costs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from uqbench import metrics
from uqbench.analysis.rundirs import Run
from uqbench.metrics.ood_scores import ood_scores

DEFAULT_SCORE = "max_prob"
COVERAGE = 0.9


@dataclass(frozen=True)
class Calibration:
    """A calibration-error definition: ``num_bins`` bins, ``binning`` ``width`` or ``mass``,
    top label or ``classwise``."""

    num_bins: int = 15
    binning: str = "width"
    classwise: bool = False

    def __post_init__(self) -> None:
        if self.binning not in ("width", "mass"):
            raise ValueError(f"binning must be 'width' or 'mass', got {self.binning!r}")
        if self.num_bins < 1:
            raise ValueError(f"--num_bins must be at least 1, got {self.num_bins}")

    @property
    def key(self) -> str:
        """The metric key it is reported under, e.g. ``recomputed/test/ece_mass_20``."""
        name = "classwise_ece" if self.classwise else "ece"
        return f"recomputed/test/{name}_{self.binning}_{self.num_bins}"

    def describe(self) -> str:
        what = "classwise (mean over classes)" if self.classwise else "top label"
        bins = "equal-mass" if self.binning == "mass" else "equal-width"
        return f"{self.key}: {what}, {self.num_bins} {bins} bins, from predictions/test.npz"

    def __call__(self, probs: np.ndarray, labels: np.ndarray) -> float:
        if self.classwise:
            return metrics.classwise_ece(probs, labels, self.num_bins, binning=self.binning)
        if self.binning == "mass":
            return metrics.adaptive_ece(probs, labels, self.num_bins)
        return metrics.ece(probs, labels, self.num_bins)


def _nll(arrays: Mapping[str, np.ndarray]) -> float:
    """The harness's NLL: exact from ``log_probs`` or ``logits`` where saved, else from probs."""
    for key in ("log_probs", "logits"):
        if key in arrays:
            return metrics.nll_from_logits(arrays[key], arrays["labels"])
    return metrics.nll(arrays["probs"], arrays["labels"])


def classification(arrays: Mapping[str, np.ndarray], prefix: str = "test") -> dict[str, float]:
    """Prediction, calibration, selective-prediction and diversity metrics of one saved set."""
    probs, labels = arrays["probs"], arrays["labels"]
    out = {
        f"{prefix}/accuracy": metrics.accuracy(probs, labels),
        f"{prefix}/nll": _nll(arrays),
        f"{prefix}/brier": metrics.brier(probs, labels),
        f"{prefix}/ece": metrics.ece(probs, labels),
        f"{prefix}/mce": metrics.mce(probs, labels),
        f"{prefix}/adaptive_ece": metrics.adaptive_ece(probs, labels),
        f"{prefix}/classwise_ece": metrics.classwise_ece(probs, labels),
        f"{prefix}/aurc": metrics.aurc(probs, labels),
        f"{prefix}/augrc": metrics.augrc(probs, labels),
        f"{prefix}/accuracy_at_90": metrics.accuracy_at_coverage(probs, labels, COVERAGE),
    }
    members = arrays.get("member_probs")
    if members is not None and members.shape[0] >= 2:
        out[f"{prefix}/diversity/disagreement"] = metrics.disagreement(members)
        out[f"{prefix}/diversity/average_kl"] = metrics.average_kl(members)
        out[f"{prefix}/diversity/cosine_similarity"] = metrics.cosine_similarity(members)
        out[f"{prefix}/member_mean/accuracy"] = metrics.member_mean_accuracy(members, labels)
        out[f"{prefix}/member_mean/nll"] = metrics.member_mean_nll(members, labels)
    return out


def _scores(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """OOD scores as the harness computes them (float64 from the saved outputs)."""
    return ood_scores(arrays["probs"], arrays.get("logits"), arrays.get("member_probs"))


def ood(
    test: Mapping[str, np.ndarray], out: Mapping[str, np.ndarray], name: str
) -> dict[str, float]:
    """AUROC, AUPR in/out, FPR95 and TNR at 95% TPR of every score against OOD set ``name``."""
    scores_in, scores_out = _scores(test), _scores(out)
    values = {}
    for score, a in scores_in.items():
        if score not in scores_out:
            continue
        b = scores_out[score]
        prefix = f"ood/{name}" if score == DEFAULT_SCORE else f"ood/{name}/{score}"
        values[f"{prefix}/auroc"] = metrics.ood_auroc(a, b)
        values[f"{prefix}/aupr_in"] = metrics.ood_aupr_in(a, b)
        values[f"{prefix}/aupr_out"] = metrics.ood_aupr_out(a, b)
        values[f"{prefix}/fpr95"] = metrics.fpr_at_95_tpr(a, b)
        values[f"{prefix}/tnr_at_95_tpr"] = metrics.tnr_at_95_tpr(a, b)
    return values


def corrupted(per_set: Mapping[tuple[str, int], Mapping[str, np.ndarray]]) -> dict[str, float]:
    """``corrupted/...`` keys from the saved corrupted sets, aggregated as UB does: the mean
    over types at each severity, then the mean of those over severities."""
    out: dict[str, float] = {}
    values: dict[tuple[str, int], dict[str, float]] = {}
    for (kind, severity), arrays in per_set.items():
        values[kind, severity] = {
            "accuracy": metrics.accuracy(arrays["probs"], arrays["labels"]),
            "nll": _nll(arrays),
            "ece": metrics.ece(arrays["probs"], arrays["labels"]),
        }
        for metric, value in values[kind, severity].items():
            out[f"corrupted/{kind}/{severity}/{metric}"] = value
    severities = sorted({s for _, s in values})
    for metric in ("accuracy", "nll", "ece"):
        means = [
            float(np.mean([v[metric] for (_, s), v in values.items() if s == sev]))
            for sev in severities
        ]
        for severity, mean in zip(severities, means, strict=True):
            out[f"corrupted/mean/{severity}/{metric}"] = mean
        if means:
            out[f"corrupted/mean/{metric}"] = float(np.mean(means))
    return out


def regression(arrays: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per split (``split`` axis of ``predictions/test.npz``): RMSE, CRPS, coverage and quantile
    calibration of the saved (moment-matched) Gaussian, and the mixture NLL where the members'
    means and variances are saved."""
    out = {}
    for i, split in enumerate(arrays["split"]):
        mean, var, y = arrays["mean"][i], arrays["variance"][i], arrays["y"][i]
        values = {
            "test/rmse": metrics.rmse(mean, y),
            "test/crps": metrics.gaussian_crps(mean, var, y),
            "test/coverage95": metrics.interval_coverage(mean, var, y, level=0.95),
            "test/calibration_error": metrics.regression_calibration_error(mean, var, y),
        }
        if "member_means" in arrays:
            values["test/nll"] = metrics.mixture_gaussian_nll(
                arrays["member_means"][i], arrays["member_variances"][i], y
            )
        out[str(int(split))] = values
    return out


def parse_set(name: str, ood_names: list[str]) -> tuple[str, str | tuple[str, int]] | None:
    """``("ood", set name)`` or ``("corrupted", (type, severity))`` for a prediction file name."""
    if name.startswith("corrupted_"):
        kind, _, severity = name[len("corrupted_") :].rpartition("_")
        return ("corrupted", (kind, int(severity))) if severity.isdigit() else None
    if name.startswith("ood_"):
        safe = name[len("ood_") :]
        for original in ood_names:  # file names replace odd characters with "_"
            if "".join(c if c.isalnum() or c in "-_." else "_" for c in original) == safe:
                return "ood", original
        return "ood", safe
    return None


def recorded_metrics(run: Run) -> dict[str, float]:
    """Every metric of ``run`` that its saved predictions allow, by the recorded definitions
    (for a regression run over several splits: the mean over splits, as recorded)."""
    sets = run.prediction_sets()
    if "test" not in sets:
        return {}
    test = run.predictions("test")
    if "split" in test and "mean" in test:
        per_split = regression(test)
        keys = sorted({k for v in per_split.values() for k in v})
        return {k: float(np.mean([v[k] for v in per_split.values()])) for k in keys}
    out = classification(test)
    ood_names = list((run.summary.get("ood_sets") or {}).keys())
    corrupted_sets = {}
    for name in sets:
        parsed = parse_set(name, ood_names)
        if parsed is None:
            continue
        if parsed[0] == "ood":
            out.update(ood(test, run.predictions(name), str(parsed[1])))
        else:
            corrupted_sets[parsed[1]] = run.predictions(name)
    out.update(corrupted(corrupted_sets))
    return {k: v for k, v in out.items() if math.isfinite(v)}
