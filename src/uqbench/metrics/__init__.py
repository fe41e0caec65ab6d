"""Metrics as pure functions of NumPy arrays or torch tensors (computed in float64).

Conventions (DESIGN.md): NLL is the mean per example in nats, exact from logits
(``nll_from_logits``), from probabilities with only an exact zero floored (``nll``); ECE uses
15 equal-width bins on the top-label confidence; OOD detection treats in-distribution as the
positive class with higher scores meaning more in-distribution (``ood_aupr_out`` and
``tnr_at_95_tpr`` take OOD as positive, as Uncertainty Baselines does); ensemble outputs have
members on axis 0.

``__all__`` lists the metrics (``uqbench list metrics``). Helpers that are not metrics live in
their modules: ``uqbench.metrics.ood_scores.{OOD_SCORES, ood_scores}`` (every OOD score the
outputs allow) and ``uqbench.metrics.latency.latency_record`` (the timing record).
"""

from __future__ import annotations

import inspect

from uqbench.metrics.calibration import adaptive_ece, classwise_ece, ece, mce
from uqbench.metrics.diversity import (
    average_kl,
    cosine_similarity,
    disagreement,
    expected_entropy,
    member_mean_accuracy,
    member_mean_nll,
    mutual_information,
    predictive_entropy,
)
from uqbench.metrics.latency import ms_per_example
from uqbench.metrics.ood import (
    fpr_at_95_tpr,
    ood_aupr_in,
    ood_aupr_out,
    ood_auroc,
    tnr_at_95_tpr,
)
from uqbench.metrics.ood_scores import (
    dempster_shafer,
    max_probability,
    negative_entropy,
    negative_mutual_information,
)
from uqbench.metrics.regression import (
    gaussian_crps,
    gaussian_nll,
    interval_coverage,
    mixture_gaussian_nll,
    mixture_mean_variance,
    regression_calibration_error,
    rmse,
)
from uqbench.metrics.scoring import accuracy, brier, nll, nll_from_logits
from uqbench.metrics.selective import accuracy_at_coverage, augrc, aurc, risk_coverage_curve

__all__ = [
    "accuracy",
    "accuracy_at_coverage",
    "adaptive_ece",
    "augrc",
    "aurc",
    "average_kl",
    "brier",
    "classwise_ece",
    "cosine_similarity",
    "dempster_shafer",
    "disagreement",
    "ece",
    "expected_entropy",
    "fpr_at_95_tpr",
    "gaussian_crps",
    "gaussian_nll",
    "interval_coverage",
    "max_probability",
    "mce",
    "member_mean_accuracy",
    "member_mean_nll",
    "mixture_gaussian_nll",
    "mixture_mean_variance",
    "ms_per_example",
    "mutual_information",
    "negative_entropy",
    "negative_mutual_information",
    "nll",
    "nll_from_logits",
    "ood_aupr_in",
    "ood_aupr_out",
    "ood_auroc",
    "predictive_entropy",
    "regression_calibration_error",
    "risk_coverage_curve",
    "rmse",
    "tnr_at_95_tpr",
]


def names() -> list[str]:
    """Names of the public metrics."""
    return sorted(__all__)


def describe() -> list[tuple[str, str]]:
    """``(name, first docstring line)`` of every public metric, for ``uqbench list``."""
    module = globals()
    return [(name, inspect.getdoc(module[name]).splitlines()[0]) for name in names()]
