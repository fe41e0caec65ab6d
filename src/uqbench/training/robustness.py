"""Robustness under corruption: a classifier's accuracy, NLL and ECE on corrupted test images,
aggregated as Uncertainty Baselines does (``baselines/cifar/utils.py``,
``aggregate_corrupt_metrics``).

Keys: ``corrupted/<type>/<severity>/{accuracy,nll,ece}`` per set;
``corrupted/mean/<severity>/{accuracy,nll,ece}``, the mean over the corruption types at one
severity; and ``corrupted/mean/{accuracy,nll,ece}``, the mean of those over the severities
(UB's ``{nll,accuracy,ece}_mean_corrupted``: with every type at every severity this is also the
mean over all sets). NLL and ECE follow the harness's conventions (exact NLL from logits where
the method gives them; 15 equal-width bins, top label).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch

from uqbench import metrics
from uqbench.data.corrupted import CorruptedSet
from uqbench.training.evaluation import PredictFn, Predictions, collect, nll
from uqbench.training.progress import Progress

METRICS = ("accuracy", "nll", "ece")


def set_metrics(predictions: Predictions, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, NLL and ECE of one corrupted set's predictions."""
    return {
        "accuracy": metrics.accuracy(predictions.probs, labels),
        "nll": nll(predictions.probs, labels, predictions.log_probabilities()),
        "ece": metrics.ece(predictions.probs, labels),
    }


def aggregate(per_set: Mapping[tuple[str, int], Mapping[str, float]]) -> dict[str, float]:
    """The flat ``corrupted/...`` keys from ``{(type, severity): {metric: value}}``: every set,
    the mean over types per severity, and the mean over severities of those."""
    out: dict[str, float] = {}
    for (corruption, severity), values in per_set.items():
        for metric in METRICS:
            out[f"corrupted/{corruption}/{severity}/{metric}"] = float(values[metric])
    severities = sorted({severity for _, severity in per_set})
    for metric in METRICS:
        means = []
        for severity in severities:
            values = [v[metric] for (_, s), v in per_set.items() if s == severity]
            means.append(float(np.mean(values)))
            out[f"corrupted/mean/{severity}/{metric}"] = means[-1]
        out[f"corrupted/mean/{metric}"] = float(np.mean(means))
    return out


def evaluate_corrupted(
    predict_fn: PredictFn,
    sets: Iterable[CorruptedSet],
    device: torch.device,
    batch_size: int = 500,
    *,
    progress: Progress | None = None,
    quiet: bool = True,
) -> tuple[dict[str, float], dict[str, tuple[Predictions, np.ndarray]]]:
    """Predict every corrupted set; returns the aggregated metrics and, per set name, its
    predictions and labels (for ``predictions/corrupted_<type>_<severity>.npz``). Progress
    goes to ``progress`` when given (else a delayed line of its own per set)."""
    per_set: dict[tuple[str, int], dict[str, float]] = {}
    saved: dict[str, tuple[Predictions, np.ndarray]] = {}
    for corrupted in sets:
        predictions = collect(
            predict_fn,
            corrupted.images,
            device,
            batch_size,
            progress=progress,
            label=f"corrupted {corrupted.corruption} severity {corrupted.severity}",
            quiet=quiet,
        )
        labels = corrupted.labels.cpu().numpy()
        per_set[(corrupted.corruption, corrupted.severity)] = set_metrics(predictions, labels)
        saved[corrupted.name] = (predictions, labels)
    if not per_set:
        return {}, {}
    return aggregate(per_set), saved
