"""Shared mechanics of the regression baselines: stacking splits into one batch of models,
the Gaussian losses, evaluation in original units, and writing the run directory.

Model ``b`` of a stacked batch is (split ``b // R``, replica ``b % R``), where a replica is an
ensemble member or a grid point; every replica of a split sees that split's training data.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from uqbench import data, metrics
from uqbench.layers.gaussian_head import gaussian_mean_variance
from uqbench.layers.mc_dropout import mc_dropout
from uqbench.models.mlp import MLP
from uqbench.protocol_ids import flag_values, uci_protocol_id
from uqbench.training import flags as common
from uqbench.training.environment import describe_device, peak_memory_mb, select_device
from uqbench.training.loop import train_models
from uqbench.training.progress import Progress, format_seconds
from uqbench.training.report import format_table
from uqbench.training.rundir import (
    RunDirectory,
    build_summary,
    check_output_dir,
    mean_and_stderr,
)

TABLE_METRICS = ("rmse", "nll", "crps", "coverage95")


@dataclass
class RegressionTask:
    """The resolved data and settings of one baseline run on a regression data set."""

    method: str
    dataset: str
    splits: list[data.RegressionSplit]
    device: torch.device
    seed: int
    output_dir: Path
    overwrite: bool
    quiet: bool
    started: float = field(default_factory=time.perf_counter)

    @property
    def num_splits(self) -> int:
        return len(self.splits)

    @property
    def in_features(self) -> int:
        return int(self.splits[0].x_train.shape[1])

    @property
    def hidden(self) -> int:
        return common.value_or(common.HIDDEN, int(self.splits[0].n_hidden))

    def stacked(self, part: str, replicas: int = 1) -> torch.Tensor:
        """``x_<part>`` or ``y_<part>`` of every split, each repeated ``replicas`` times:
        ``(S * replicas, N, ...)`` float32 on the task's device."""
        arrays = [getattr(s, part) for s in self.splits]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(
                f"{part} has different shapes across splits ({sorted(shapes)}): run the splits one "
                "at a time with --split=<i>"
            )
        tensor = torch.as_tensor(np.stack(arrays), dtype=torch.float32, device=self.device)
        return tensor.repeat_interleave(replicas, dim=0)

    def log(self, message: str) -> None:
        if not self.quiet:
            print(message, flush=True)


def prepare_task(method: str, validation_fraction: float = 0.0) -> RegressionTask:
    """Read the shared flags, load the requested splits, seed torch; clear errors on bad input."""
    if not common.DATASET.value:
        raise ValueError("--dataset is required (e.g. --dataset=boston; `uqbench list` shows all)")
    dataset = common.DATASET.value
    select_device(common.DEVICE.value or "cpu")
    common.apply_threads()
    if common.OUTPUT_DIR.value:
        check_output_dir(common.OUTPUT_DIR.value, common.OVERWRITE.value)
    first = data.get(
        dataset,
        split=0,
        data_dir=common.DATA_DIR.value,
        download=common.DOWNLOAD.value,
        validation_fraction=validation_fraction,
        seed=common.SEED.value,
    )
    if not isinstance(first, data.RegressionSplit):
        raise ValueError(
            f"{dataset} is a classification data set; the uci/ baselines need regression"
        )
    split_ids = common.parse_splits(common.SPLIT.value, first.num_splits)
    splits = [
        first
        if i == 0
        else data.get(
            dataset,
            split=i,
            data_dir=common.DATA_DIR.value,
            validation_fraction=validation_fraction,
            seed=common.SEED.value,
        )
        for i in split_ids
    ]
    torch.manual_seed(common.SEED.value)
    output = Path(common.OUTPUT_DIR.value or common.default_output_dir(method, first.name))
    return RegressionTask(
        method=method,
        dataset=first.name,
        splits=splits,
        device=select_device(common.DEVICE.value or "cpu"),
        seed=common.SEED.value,
        output_dir=output,
        overwrite=common.OVERWRITE.value,
        quiet=common.QUIET.value,
    )


def gaussian_nll_per_model(mean: torch.Tensor, var: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood per model: ``(B, N)`` inputs -> ``(B,)``."""
    return F.gaussian_nll_loss(mean, y, var, full=True, reduction="none").mean(dim=1)


def mean_variance_loss(adversarial_epsilon: float = 0.0) -> Callable[..., torch.Tensor]:
    """Gaussian NLL of a mean-variance network, optionally plus the NLL at an adversarial input.

    The adversarial input is Goodfellow et al.'s fast gradient sign step
    ``x + eps * sign(grad_x NLL)`` used by Deep Ensembles; inputs are standardised, so ``eps``
    is in units of each feature's training standard deviation.
    """

    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if adversarial_epsilon <= 0:
            return gaussian_nll_per_model(*gaussian_mean_variance(model(x)), y)
        x = x.detach().requires_grad_(True)
        loss = gaussian_nll_per_model(*gaussian_mean_variance(model(x)), y)
        (grad,) = torch.autograd.grad(loss.sum(), x, retain_graph=True)
        x_adv = (x + adversarial_epsilon * grad.sign()).detach()
        return loss + gaussian_nll_per_model(*gaussian_mean_variance(model(x_adv)), y)

    return loss_fn


@dataclass
class TrainedModels:
    """A trained batch of networks with its history, timing and test evaluation."""

    model: nn.Module
    names: list[str]
    history: list[dict]
    train_seconds: float
    per_split: list[dict[str, float]]
    predictions: dict[str, np.ndarray]


def train_mean_variance_networks(
    task: RegressionTask,
    *,
    members: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    adversarial_epsilon: float = 0.0,
) -> TrainedModels:
    """Train ``members`` mean-variance MLPs per split, all splits at once, and evaluate them
    on the test split as a uniform mixture (one member: a single Gaussian)."""
    if members < 1:
        raise ValueError(f"--num_members must be at least 1, got {members}")
    x, y = task.stacked("x_train", members), task.stacked("y_train", members)
    model = MLP(task.in_features, (task.hidden,), 2, num_models=x.shape[0]).to(task.device)
    names = [f"split {s.split} member {m}" for s in task.splits for m in range(members)]
    task.log(
        f"{task.method}: {task.dataset}, {task.num_splits} split(s) x {members} member(s) = "
        f"{x.shape[0]} networks of {task.in_features}-{task.hidden}-2, trained together"
    )
    start = time.perf_counter()
    history = train_models(
        model,
        mean_variance_loss(adversarial_epsilon),
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        generator=torch.Generator().manual_seed(task.seed),
        model_names=names,
        progress=Progress(epochs, f"{task.method} {task.dataset}", quiet=task.quiet),
    )
    train_seconds = time.perf_counter() - start
    with torch.no_grad():
        mean, var = gaussian_mean_variance(model(task.stacked("x_test", members)))
    shape = (task.num_splits, members, -1)
    per_split, predictions = evaluate_mixture(task, mean.reshape(shape), var.reshape(shape))
    return TrainedModels(model, names, history, train_seconds, per_split, predictions)


def mc_predict(
    model: nn.Module, x: torch.Tensor, samples: int, max_elements: int = 2**25
) -> torch.Tensor:
    """Monte-Carlo dropout predictions ``(B, samples, N)`` of a one-output batched MLP.

    Samples are drawn in chunks so the hidden activations stay under ``max_elements`` floats.
    """
    num_models, num_examples = x.shape[:2]
    width = max([*getattr(model, "config", {}).get("hidden_sizes", [64]), x.shape[-1]])
    chunk = max(1, min(samples, max_elements // max(1, num_models * num_examples * width)))
    model.eval()
    outputs = []
    with torch.no_grad(), mc_dropout(model):
        for start in range(0, samples, chunk):
            n = min(chunk, samples - start)
            xs = x.unsqueeze(1).expand(-1, n, -1, -1).reshape(num_models, n * num_examples, -1)
            outputs.append(model(xs).reshape(num_models, n, num_examples))
    return torch.cat(outputs, dim=1)


def regression_metrics(
    member_means: np.ndarray,
    member_vars: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    y: np.ndarray,
    prefix: str = "test",
) -> dict[str, float]:
    """All regression metrics of a uniform mixture of Gaussians (members on axis 0) whose
    moment-matched mean and variance are ``mean`` and ``var``. NLL is the exact mixture NLL;
    RMSE, CRPS, coverage and quantile calibration use the moment-matched Gaussian."""
    return {
        f"{prefix}/rmse": metrics.rmse(mean, y),
        f"{prefix}/nll": metrics.mixture_gaussian_nll(member_means, member_vars, y),
        f"{prefix}/crps": metrics.gaussian_crps(mean, var, y),
        f"{prefix}/coverage95": metrics.interval_coverage(mean, var, y, level=0.95),
        f"{prefix}/calibration_error": metrics.regression_calibration_error(mean, var, y),
    }


def evaluate_mixture(
    task: RegressionTask,
    member_means: torch.Tensor | np.ndarray,
    member_vars: torch.Tensor | np.ndarray,
    store_members: bool = True,
) -> tuple[list[dict[str, float]], dict[str, np.ndarray]]:
    """Metrics per split, and the arrays for ``predictions/test.npz``, from standardised outputs.

    ``member_means`` is ``(S, R, N_test)`` (R members or Monte-Carlo samples per split);
    ``member_vars`` broadcasts to it. Everything is mapped back to the target's original units.
    """
    member_means = torch.as_tensor(member_means).detach().cpu().double().numpy()
    member_vars = np.broadcast_to(
        torch.as_tensor(member_vars).detach().cpu().double().numpy(), member_means.shape
    )
    per_split, arrays = [], {"mean": [], "variance": [], "member_means": [], "member_variances": []}
    for i, split in enumerate(task.splits):
        means, variances = split.to_original(member_means[i], member_vars[i])
        mean, var = metrics.mixture_mean_variance(means, variances)
        y = split.to_original(split.y_test.astype(np.float64))
        per_split.append(regression_metrics(means, variances, mean, var, y))
        arrays["mean"].append(mean)
        arrays["variance"].append(var)
        arrays["member_means"].append(means)
        arrays["member_variances"].append(variances)
    predictions = {key: np.stack(value) for key, value in arrays.items()}
    if not store_members:
        del predictions["member_means"], predictions["member_variances"]
    predictions["y"] = np.stack([s.to_original(s.y_test) for s in task.splits])
    predictions["index"] = np.stack([s.test_index for s in task.splits])
    return per_split, predictions


def count_parameters(model: nn.Module, num_models: int) -> int:
    """Parameters of one of the ``num_models`` networks in a batched model."""
    return sum(p.numel() for p in model.parameters()) // num_models


def finish_run(
    task: RegressionTask,
    *,
    flag_lines: Sequence[str],
    trained: TrainedModels,
    model_metadata: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the run directory (atomically) and print the per-split and mean table."""
    model, per_split, history = trained.model, trained.per_split, trained.history
    train_seconds = trained.train_seconds
    params = count_parameters(model, len(trained.names))
    split_ids = [s.split for s in task.splits]
    metrics_mean = mean_and_stderr(per_split)
    metrics_mean["cost/train_seconds"] = train_seconds
    metrics_mean["cost/params"] = float(params)
    metrics_mean["cost/peak_memory_mb"] = peak_memory_mb(task.device)
    data_hash = combined_hash([s.data_hash for s in task.splits])
    split_label = _split_label(split_ids)
    summary = build_summary(
        kind="baseline",
        method=task.method,
        dataset={"name": task.dataset, "root": Path(common.DATASET.value).name},
        data_hash=data_hash,
        seed=task.seed,
        split=split_label,
        device=describe_device(task.device),
        metrics=metrics_mean,
        timings={
            "train_seconds": train_seconds,
            "total_seconds": time.perf_counter() - task.started,
        },
        params=params,
        peak_memory_mb=metrics_mean["cost/peak_memory_mb"],
        extra={
            "splits": {str(i): dict(m) for i, m in zip(split_ids, per_split, strict=True)},
            "runtime": {"threads": torch.get_num_threads()},
            "protocol_id": uci_protocol_id(
                task.method, task.dataset, {"split": str(split_label), **flag_values(flag_lines)}
            ),
            **(extra or {}),
        },
    )
    with RunDirectory(task.output_dir, overwrite=task.overwrite) as run:
        run.write_flags(flag_lines)
        for record in history:
            run.append_history(record)
        run.save_predictions("test", split=np.array(split_ids), **trained.predictions)
        run.save_checkpoint(
            model.state_dict(),
            {
                "class": f"{type(model).__module__}.{type(model).__qualname__}",
                "kwargs": getattr(model, "config", {}),
                "models": trained.names,
                "preprocessing": {"splits": [split_preprocessing(s) for s in task.splits]},
                **model_metadata,
            },
        )
        run.write_summary(summary)
        path = run.commit()
    print(result_table(task, per_split, metrics_mean))
    print(
        f"{task.method} on {task.dataset}: trained in {format_seconds(train_seconds)}; run directory {path}"
    )
    return summary


def split_preprocessing(split: data.RegressionSplit) -> dict[str, Any]:
    """How raw rows of ``split`` become the networks' input, for ``uqbench.load_run``."""
    return {
        "split": split.split,
        "x_mean": [float(v) for v in split.x_mean],
        "x_std": [float(v) for v in split.x_std],
        "y_mean": float(split.y_mean),
        "y_std": float(split.y_std),
    }


def _split_label(split_ids: list[int]) -> int | str | list[int]:
    """``summary.json``'s ``split``: the index of a single split, ``all``, or the list run."""
    if len(split_ids) == 1:
        return split_ids[0]
    return "all" if common.SPLIT.value.strip().lower() == "all" else split_ids


def combined_hash(hashes: Sequence[str]) -> str:
    """One hash for the files of several splits (the hash of their hashes, in order)."""
    return hashlib.sha256("".join(hashes).encode()).hexdigest() if len(hashes) > 1 else hashes[0]


def result_table(
    task: RegressionTask, per_split: Sequence[Mapping[str, float]], mean: Mapping[str, float]
) -> str:
    """Per-split rows (when there are few) and a mean +- standard error row."""
    columns = [m for m in TABLE_METRICS if f"test/{m}" in mean]
    rows = []
    if len(per_split) <= 5:
        for split, values in zip(task.splits, per_split, strict=True):
            rows.append([f"split {split.split}", *(f"{values[f'test/{m}']:.4g}" for m in columns)])
    label = f"mean of {len(per_split)}" if len(per_split) > 1 else "result"
    rows.append([label, *(_mean_se(mean, f"test/{m}") for m in columns)])
    return format_table(
        ["", *(f"test {m}" for m in columns)], rows, title=f"{task.method} / {task.dataset}"
    )


def _mean_se(values: Mapping[str, float], key: str) -> str:
    se = values.get(f"{key}_se")
    return f"{values[key]:.4g}" + (f" ± {se:.2g}" if se is not None else "")
