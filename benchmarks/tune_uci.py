"""Choose the UCI baselines' (batch size, learning rate) defaults on validation data only.

For each data set, every (batch size, learning rate) pair trains 5 mean-variance networks on 80%
of the training part of splits 0-4 (3 for protein) and is scored by validation NLL: of the
5-member mixture for uci/ensemble, of single networks for uci/deterministic. The test split is
never read. (uci/dropout is tuned the same way with its own grid search's validation NLL: pass
--method=dropout.) The chosen pairs are the TUNED tables at the top of each baseline script.

    python benchmarks/tune_uci.py --data_dir=../shared/data --datasets=boston,yacht
"""

from __future__ import annotations

import argparse
import itertools
import sys

import numpy as np
import torch

from uqbench import baselines, data, metrics
from uqbench.layers.gaussian_head import gaussian_mean_variance
from uqbench.models.mlp import MLP
from uqbench.training.loop import train_models
from uqbench.training.regression import mean_variance_loss

MEMBERS = 5


def score_mean_variance(
    name: str, data_dir: str, batch_size: int, lr: float
) -> tuple[float, float]:
    """Validation NLL (ensemble of 5, single network) averaged over the tuning splits."""
    splits = [
        data.get(name, split=i, data_dir=data_dir, validation_fraction=0.2)
        for i in range(3 if name == "protein" else 5)
    ]
    x = torch.tensor(np.stack([s.x_train for s in splits])).repeat_interleave(MEMBERS, 0)
    y = torch.tensor(np.stack([s.y_train for s in splits])).repeat_interleave(MEMBERS, 0)
    torch.manual_seed(0)
    model = MLP(x.shape[-1], (splits[0].n_hidden,), 2, num_models=x.shape[0])
    train_models(
        model,
        mean_variance_loss(),
        x,
        y,
        epochs=40,
        batch_size=batch_size,
        learning_rate=lr,
        generator=torch.Generator().manual_seed(0),
    )
    x_val = torch.tensor(np.stack([s.x_val for s in splits])).repeat_interleave(MEMBERS, 0)
    with torch.no_grad():
        mean, var = gaussian_mean_variance(model(x_val))
    mean = mean.reshape(len(splits), MEMBERS, -1).double().numpy()
    var = var.reshape(len(splits), MEMBERS, -1).double().numpy()
    ensemble, single = [], []
    for i, s in enumerate(splits):
        m, v = s.to_original(mean[i], var[i])
        y_val = s.to_original(s.y_val.astype(np.float64))
        ensemble.append(metrics.mixture_gaussian_nll(m, v, y_val))
        single.append(np.mean([metrics.gaussian_nll(m[k], v[k], y_val) for k in range(MEMBERS)]))
    return float(np.mean(ensemble)), float(np.mean(single))


def score_dropout(name: str, data_dir: str, batch_size: int, lr: float, out: str) -> float:
    """Best validation NLL of uci/dropout's own (rate, tau) grid search, mean over splits."""
    splits = "0,1,2" if name == "protein" else "0,1,2,3,4"
    summary = baselines.run(
        "uci/dropout",
        [
            f"--dataset={name}",
            f"--data_dir={data_dir}",
            f"--split={splits}",
            f"--batch_size={batch_size}",
            f"--learning_rate={lr}",
            f"--output_dir={out}",
            "--overwrite",
            "--quiet",
            "--mc_samples=10",
        ],
    )
    return float(np.array(summary["grid"]["validation_nll"]).min(axis=1).mean())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data_dir", default=None)
    parser.add_argument(
        "--datasets", default="boston,concrete,energy,kin8nm,naval,power,protein,wine,yacht"
    )
    parser.add_argument("--method", choices=["mean_variance", "dropout"], default="mean_variance")
    parser.add_argument("--batch_sizes", default="16,32,100")
    parser.add_argument("--learning_rates", default="0.001,0.003,0.01,0.03")
    args = parser.parse_args()
    data_dir = str(data.resolve_data_dir(args.data_dir))
    grid = list(
        itertools.product(
            [int(b) for b in args.batch_sizes.split(",")],
            [float(v) for v in args.learning_rates.split(",")],
        )
    )
    for name in args.datasets.split(","):
        results = {}
        for batch_size, lr in grid:
            if args.method == "dropout":
                results[batch_size, lr] = (
                    score_dropout(name, data_dir, batch_size, lr, "runs/tune/dropout"),
                )
            else:
                results[batch_size, lr] = score_mean_variance(name, data_dir, batch_size, lr)
            print(
                f"{name} batch {batch_size} lr {lr:g}: validation NLL "
                + " / ".join(f"{v:.3f}" for v in results[batch_size, lr]),
                flush=True,
            )
        for column, label in enumerate(
            ["ensemble" if args.method != "dropout" else "dropout", "deterministic"]
        ):
            if column < len(next(iter(results.values()))):
                best = min(results, key=lambda key, c=column: results[key][c])
                print(f"{name}: best for {label}: batch {best[0]}, lr {best[1]:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
