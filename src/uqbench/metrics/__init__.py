"""Metrics as pure functions of NumPy arrays or torch tensors (computed in float64).

Conventions (DESIGN.md): NLL is the mean per example in nats; ECE uses 15 equal-width bins on the
top-label confidence; OOD detection treats in-distribution as the positive class with higher
scores meaning more in-distribution; ensemble outputs have members on axis 0.
"""

from __future__ import annotations

import inspect

from uqbench.metrics.calibration import adaptive_ece, classwise_ece, ece
from uqbench.metrics.diversity import (
    disagreement,
    expected_entropy,
    mutual_information,
    predictive_entropy,
)
from uqbench.metrics.ood import fpr_at_95_tpr, ood_aupr_in, ood_aupr_out, ood_auroc
from uqbench.metrics.regression import (
    gaussian_crps,
    gaussian_nll,
    interval_coverage,
    mixture_gaussian_nll,
    mixture_mean_variance,
    regression_calibration_error,
    rmse,
)
from uqbench.metrics.scoring import accuracy, brier, nll
from uqbench.metrics.selective import accuracy_at_coverage, aurc, risk_coverage_curve

__all__ = [
    "accuracy",
    "accuracy_at_coverage",
    "adaptive_ece",
    "aurc",
    "brier",
    "classwise_ece",
    "disagreement",
    "ece",
    "expected_entropy",
    "fpr_at_95_tpr",
    "gaussian_crps",
    "gaussian_nll",
    "interval_coverage",
    "mixture_gaussian_nll",
    "mixture_mean_variance",
    "mutual_information",
    "nll",
    "ood_aupr_in",
    "ood_aupr_out",
    "ood_auroc",
    "predictive_entropy",
    "regression_calibration_error",
    "risk_coverage_curve",
    "rmse",
]


def names() -> list[str]:
    """Names of the public metrics."""
    return sorted(__all__)


def describe() -> list[tuple[str, str]]:
    """``(name, first docstring line)`` of every public metric, for ``uqbench list``."""
    module = globals()
    return [(name, inspect.getdoc(module[name]).splitlines()[0]) for name in names()]
