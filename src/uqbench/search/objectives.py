"""A trial's objective from its validation metrics (``uqbench.metrics``) and costs.

One metric (``[objective] metric = "nll"``) is read as it is. A weighted sum
(``[objective] terms = { nll = 1.0, ood_auroc = -0.5, params = 0.1 }``) is minimised:
``sum_k w_k m_k``, where a metric is its validation value (give a higher-is-better metric a
negative weight) and a cost (``params``, ``ms_per_example``) is its value, or, with a budget
(``budgets = { params = 50000 }``), its overshoot ``max(0, cost / budget - 1)``, so a model
within budget pays nothing. ``ece_penalised_accuracy`` is ``accuracy - ece``;
``ood_auroc`` is the max-probability AUROC of the validation split against the validation OOD
set (in-distribution positive).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from uqbench import metrics
from uqbench.search.space import COSTS, SearchSpace


def derived(val_metrics: Mapping[str, float]) -> dict[str, float]:
    """Validation metrics computed from others: ``val/ece_penalised_accuracy``."""
    if "val/accuracy" in val_metrics and "val/ece" in val_metrics:
        return {"val/ece_penalised_accuracy": val_metrics["val/accuracy"] - val_metrics["val/ece"]}
    return {}


def ood_auroc(val_probs: np.ndarray, ood_probs: np.ndarray) -> dict[str, float]:
    """``val/ood_auroc``: max probability as the score, in-distribution positive."""
    return {"val/ood_auroc": metrics.ood_auroc(val_probs.max(axis=1), ood_probs.max(axis=1))}


def cost_term(space: SearchSpace, name: str, value: float) -> float:
    """A cost as the weighted sum takes it: its overshoot of the budget, or its value."""
    budget = space.budgets.get(name)
    return max(0.0, value / budget - 1.0) if budget else value


def value(space: SearchSpace, val_metrics: Mapping[str, float], cost: Mapping[str, float]) -> float:
    """The objective (the space's direction applies) of a trial with these validation metrics
    (``val/<metric>``) and costs (``params``, ``ms_per_example``)."""
    if not space.terms:
        return float(val_metrics[space.objective_key])
    total = 0.0
    for name, weight in space.terms.items():
        if name in COSTS:
            total += weight * cost_term(space, name, float(cost[name]))
        else:
            key = f"val/{name}"
            if key not in val_metrics:
                raise ValueError(f"the objective term {name!r} has no validation value")
            total += weight * float(val_metrics[key])
    return total
