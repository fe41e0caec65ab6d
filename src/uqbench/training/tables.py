"""Training and prediction for networks on tables: classification (softmax over logits) or
regression (a mean-variance Gaussian head, Nix & Weigend 1994), one network or a uniform
mixture of several.

:func:`fit_table` trains with the :class:`~uqbench.training.classifier.Recipe`'s SGD, schedule,
weight decay and label smoothing (augmentation does not apply to rows), clipping the gradient
norm at :data:`CLIP_NORM`. :func:`table_outputs` is the one prediction path: the search's
trials, its ensembles and ``uqbench.load_run`` all call it, so a loaded model reproduces the
recorded metrics exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from uqbench import metrics
from uqbench.data.preprocessing import TablePreprocessing
from uqbench.layers.gaussian_head import gaussian_mean_variance
from uqbench.training.classifier import Recipe, make_optimizer
from uqbench.training.divergence import NonFiniteLossError
from uqbench.training.evaluation import classification_metrics
from uqbench.training.predictors import mixture
from uqbench.training.schedules import lr_factor

CLIP_NORM = 5.0
TABLE_RECIPE = Recipe(
    epochs=40,
    batch_size=64,
    learning_rate=0.05,
    schedule="cosine",
    momentum=0.9,
    weight_decay=1e-4,
    crop_padding=0,
    flip=False,
)


def table_loss(task: str, label_smoothing: float = 0.0) -> Callable[..., torch.Tensor]:
    """Mean cross-entropy of logits, or mean Gaussian NLL of a ``(B, 2)`` mean-variance output."""
    if task == "classification":
        return lambda out, y: F.cross_entropy(out.float(), y, label_smoothing=label_smoothing)
    return gaussian_nll


def gaussian_nll(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian NLL (with the constant) of a mean-variance output ``(B, 2)``."""
    mean, var = gaussian_mean_variance(output.float())
    return F.gaussian_nll_loss(mean, y, var, full=True)


def fit_table(
    network: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    task: str,
    recipe: Recipe,
    *,
    seed: int = 0,
    on_epoch_end: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train ``network`` on rows ``x`` ``(N, D)`` and targets ``y``; one history record per
    epoch. Shuffled minibatches (the last one partial), the schedule stepped every step; a
    non-finite epoch loss raises :class:`NonFiniteLossError`."""
    recipe.check()
    n = int(y.shape[0])
    batch = min(recipe.batch_size, n)
    steps = math.ceil(n / batch)
    total = recipe.epochs * steps
    optimizer = make_optimizer(network, recipe)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lr_factor(
            recipe.schedule,
            total,
            warmup_steps=round(recipe.warmup_epochs * steps),
            milestones=[round(m * total) for m in recipe.milestones],
            decay_factor=recipe.decay_factor,
        ),
    )
    loss_fn = table_loss(task, recipe.label_smoothing)
    generator = torch.Generator().manual_seed(seed)
    history: list[dict] = []
    network.train()
    for epoch in range(1, recipe.epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(n, generator=generator).to(x.device)
        total_loss = torch.zeros((), device=x.device)
        for first in range(0, n, batch):
            index = order[first : first + batch]
            if index.shape[0] < 2 <= n:  # batch norm cannot train on one row
                continue
            loss = loss_fn(network(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(network.parameters(), CLIP_NORM)
            optimizer.step()
            scheduler.step()
            total_loss += loss.detach() * index.shape[0]
        epoch_loss = float(total_loss) / n
        if not math.isfinite(epoch_loss):
            raise NonFiniteLossError(
                f"the training loss is {epoch_loss} at epoch {epoch}: lower the learning rate"
            )
        record = {
            "epoch": epoch,
            "train/loss": epoch_loss,
            "learning_rate": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - start,
        }
        history.append(record)
        if on_epoch_end is not None:
            on_epoch_end(record)
    network.eval()
    return history


@torch.no_grad()
def table_outputs(
    networks: Sequence[nn.Module], x: torch.Tensor, prep: TablePreprocessing
) -> dict[str, np.ndarray]:
    """What ``networks`` (one, or the members of a uniform mixture) predict for standardised
    rows ``x``: ``probs`` and ``logits`` (one network) or ``log_probs`` and ``member_probs``
    (several) for classification, float32; ``mean``, ``variance``, ``member_means`` and
    ``member_variances`` in the target's units (float64) for regression."""
    outputs = torch.stack([n.eval()(x).float() for n in networks]).cpu()
    if prep.task == "classification":
        if len(networks) == 1:
            return {"probs": outputs[0].softmax(dim=-1).numpy(), "logits": outputs[0].numpy()}
        return {k: v.numpy() for k, v in mixture(outputs).items()}
    mean, var = gaussian_mean_variance(outputs)
    means, variances = prep.to_original(mean.double().numpy(), var.double().numpy())
    mixed_mean, mixed_var = metrics.mixture_mean_variance(means, variances)
    return {
        "mean": mixed_mean,
        "variance": mixed_var,
        "member_means": means,
        "member_variances": variances,
    }


def table_metrics(outputs: dict[str, np.ndarray], y: np.ndarray, prefix: str) -> dict[str, float]:
    """Every metric of :func:`table_outputs` against labels or targets in their units."""
    if "probs" in outputs:
        log_probs = outputs.get("logits", outputs.get("log_probs"))
        return classification_metrics(outputs["probs"], y, prefix, log_probs=log_probs)
    means, variances = outputs["member_means"], outputs["member_variances"]
    mean, var = outputs["mean"], outputs["variance"]
    return {
        f"{prefix}/rmse": metrics.rmse(mean, y),
        f"{prefix}/nll": metrics.mixture_gaussian_nll(means, variances, y),
        f"{prefix}/crps": metrics.gaussian_crps(mean, var, y),
        f"{prefix}/coverage95": metrics.interval_coverage(mean, var, y, level=0.95),
        f"{prefix}/calibration_error": metrics.regression_calibration_error(mean, var, y),
    }
