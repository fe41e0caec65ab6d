"""MC dropout: dropout rate and tau chosen on a validation carve-out, Monte-Carlo predictions.

Gal & Ghahramani (2016), "Dropout as a Bayesian Approximation", UCI protocol: one hidden layer of
50 ReLU units (100 for protein), dropout before both layers, squared error plus the weight decay
``l^2 (1 - p) / (2 N tau)`` (prior length-scale ``l = 0.01``), epochs from the data folder
(40, protein 20). For each split every (dropout rate, tau) of the data folder's grids is trained on
80% of the training part and scored by validation log-likelihood; the best pair is retrained on
the whole training part. The predictive distribution is the uniform mixture of
``N(f_t(x), 1/tau)`` over T dropout samples. All splits x grid points train as one batched network.

    uqbench run uci/dropout --dataset=boston --split=all --data_dir=DIR
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from absl import flags

from uqbench import metrics
from uqbench.baselines import run_as_script
from uqbench.models.mlp import MLP
from uqbench.training import flags as common
from uqbench.training import regression
from uqbench.training.loop import train_models
from uqbench.training.progress import Progress

DROPOUT_RATES = flags.DEFINE_list(
    "dropout_rates", None, "Dropout rates to search; default: the data folder's dropout_rates.txt."
)
TAU_VALUES = flags.DEFINE_list(
    "tau_values", None, "Model precisions tau to search; default: the data folder's tau_values.txt."
)
GRID_MC_SAMPLES = flags.DEFINE_integer(
    "grid_mc_samples", 100, "Monte-Carlo samples when scoring grid points on validation data."
)
GRID_VALIDATION_FRACTION = flags.DEFINE_float(
    "grid_validation_fraction", 0.2, "Part of each training split used to choose rate and tau."
)
FLAGS_USED = (
    *common.REGRESSION_FLAGS,
    DROPOUT_RATES,
    TAU_VALUES,
    common.MC_SAMPLES,
    GRID_MC_SAMPLES,
    GRID_VALIDATION_FRACTION,
)

# Epochs: the data folder's n_epochs.txt (the MC dropout protocol). (batch size, learning rate)
# per data set, chosen by the grid search's own validation NLL (20% carve-out of the training part)
# on splits 0-4 (0-2 for protein), never the test split: benchmarks/tune_uci.py --method=dropout
# --batch_sizes=32,100 --learning_rates=0.001,0.003,0.01. Other data sets use DEFAULT_TUNING.
DEFAULT_TUNING = (32, 1e-2)
TUNED = {
    "boston": (32, 1e-2),
    "concrete": (32, 1e-2),
    "energy": (32, 1e-2),
    "kin8nm": (100, 1e-2),
    "naval": (32, 1e-2),
    "power": (100, 3e-3),
    "protein": (32, 3e-3),
    "wine": (32, 3e-3),
    "yacht": (32, 1e-2),
}
LENGTH_SCALE = 1e-2
MC_SAMPLES = 1000  # at test time, unless --mc_samples is given


def _floats(values: list[str] | None, default: tuple[float, ...] | None, name: str) -> list[float]:
    if values is None:
        if not default:
            raise ValueError(f"the data set has no {name} grid file: pass --{name}=v1,v2,...")
        return [float(v) for v in default]
    try:
        return [float(v) for v in values]
    except ValueError:
        raise ValueError(f"--{name} must be numbers separated by commas, got {values}") from None


def fit(
    task: regression.RegressionTask, rates: np.ndarray, taus: np.ndarray, description: str
) -> tuple[MLP, list[dict], list[str]]:
    """Train one dropout network per (split, setting): ``rates``/``taus`` are ``(S * R,)``, the R
    settings of split 0, then those of split 1, ... The R networks of a split see the same
    minibatches and share their dropout draws (common random numbers), so settings are compared
    under the same noise and the grid costs little more than one network per split."""
    replicas = len(rates) // task.num_splits
    x, y = task.stacked("x_train"), task.stacked("y_train")
    model = MLP(
        task.in_features,
        (task.hidden,),
        1,
        num_models=len(rates),
        dropout_rate=rates.tolist(),
        noise_groups=task.num_splits,
    ).to(task.device)
    decay = torch.as_tensor(
        LENGTH_SCALE**2 * (1 - rates) / (2 * x.shape[1] * taus),
        dtype=torch.float32,
        device=task.device,
    )

    def loss_fn(model: MLP, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        squared_error = F.mse_loss(model(xb).squeeze(-1), yb, reduction="none").mean(dim=1)
        l2 = sum(w.pow(2).sum(dim=(1, 2)) for w in model.weight_matrices())
        return squared_error + decay * l2

    names = [
        f"split {task.splits[b // replicas].split} rate {r:g} tau {t:g}"
        for b, (r, t) in enumerate(zip(rates, taus, strict=True))
    ]
    epochs = common.value_or(common.EPOCHS, int(task.splits[0].n_epochs))
    tuned = TUNED.get(task.dataset, DEFAULT_TUNING)
    history = train_models(
        model,
        loss_fn,
        x,
        y,
        epochs=epochs,
        batch_size=common.value_or(common.BATCH_SIZE, tuned[0]),
        learning_rate=common.value_or(common.LEARNING_RATE, tuned[1]),
        generator=torch.Generator().manual_seed(task.seed),
        replicas=replicas,
        model_names=names,
        progress=Progress(epochs, description, quiet=task.quiet),
    )
    return model, history, names


def choose_hyperparameters(
    task: regression.RegressionTask, rates: list[float], taus: list[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    """Grid search on the validation carve-out: best (rate, tau) per split and the score table."""
    grid_rates = np.repeat(rates, len(taus))
    grid_taus = np.tile(taus, len(rates))
    task.log(
        f"uci/dropout: grid search over {len(grid_rates)} (rate, tau) pairs x {task.num_splits} "
        f"split(s) = {len(grid_rates) * task.num_splits} networks, trained together"
    )
    model, history, _ = fit(
        task,
        np.tile(grid_rates, task.num_splits),
        np.tile(grid_taus, task.num_splits),
        f"uci/dropout {task.dataset} grid",
    )
    x_val = task.stacked("x_val", len(grid_rates))
    samples = regression.mc_predict(model, x_val, GRID_MC_SAMPLES.value).double().cpu().numpy()
    scores = np.empty((task.num_splits, len(grid_rates)))
    for i, split in enumerate(task.splits):
        y = split.y_val.astype(np.float64) * split.y_std + split.y_mean
        for g in range(len(grid_rates)):
            means = samples[i * len(grid_rates) + g] * split.y_std + split.y_mean
            scores[i, g] = metrics.mixture_gaussian_nll(means, 1.0 / grid_taus[g], y)
    best = scores.argmin(axis=1)
    for record in history:
        record["phase"] = "grid_search"
    return grid_rates[best], grid_taus[best], scores, history


def run() -> dict:
    """Grid search, retrain with the chosen values, evaluate with MC samples; returns the summary."""
    mc_samples = common.value_or(common.MC_SAMPLES, MC_SAMPLES)
    if mc_samples < 1 or GRID_MC_SAMPLES.value < 1:
        raise ValueError("--mc_samples and --grid_mc_samples must be at least 1")
    grid_task = regression.prepare_task("uci/dropout", GRID_VALIDATION_FRACTION.value)
    first = grid_task.splits[0]
    rates = _floats(DROPOUT_RATES.value, first.dropout_rates, "dropout_rates")
    taus = _floats(TAU_VALUES.value, first.tau_values, "tau_values")
    if any(not 0 <= r < 1 for r in rates) or any(t <= 0 for t in taus):
        raise ValueError(
            f"dropout rates must be in [0, 1) and taus positive, got {rates} and {taus}"
        )
    start = time.perf_counter()
    best_rates, best_taus, scores, grid_history = choose_hyperparameters(grid_task, rates, taus)

    task = regression.prepare_task("uci/dropout")
    task.started = grid_task.started
    task.log(
        "uci/dropout: chosen (rate, tau) per split: "
        + ", ".join(
            f"{s.split}:({r:g}, {t:g})"
            for s, r, t in zip(task.splits, best_rates, best_taus, strict=True)
        )
    )
    model, history, names = fit(task, best_rates, best_taus, f"uci/dropout {task.dataset} final")
    train_seconds = time.perf_counter() - start
    samples = regression.mc_predict(model, task.stacked("x_test"), mc_samples)
    y_std = torch.tensor([s.y_std for s in task.splits], dtype=torch.float64)
    variance = (1.0 / (torch.as_tensor(best_taus) * y_std**2)).view(-1, 1, 1)
    per_split, predictions = regression.evaluate_mixture(
        task, samples, variance, store_members=False
    )
    for record in history:
        record["phase"] = "final"
    trained = regression.TrainedModels(
        model,
        names,
        grid_history + history,
        train_seconds,
        per_split,
        {**predictions, "dropout_rate": best_rates, "tau": best_taus},
    )
    return regression.finish_run(
        task,
        flag_lines=common.serialize(FLAGS_USED),
        trained=trained,
        model_metadata={
            "head": "mean",
            "tau": best_taus.tolist(),
            "dropout_rate": best_rates.tolist(),
        },
        extra={
            "grid": {
                "dropout_rate": np.repeat(rates, len(taus)).tolist(),
                "tau": np.tile(taus, len(rates)).tolist(),
                "validation_nll": scores.tolist(),
            }
        },
    )


if __name__ == "__main__":
    run_as_script(run)
