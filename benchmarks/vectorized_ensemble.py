"""Speed of a vectorised 5-member ensemble against training the members one after another.

Both train the same 5 mean-variance MLPs (same data, epochs, batch size) with
``uqbench.training.loop.train_models``: once as one batched model of 5 networks, once as 5
models of one network. Prints both wall times and the speed-up (target: at least 4x).

    python benchmarks/vectorized_ensemble.py                       # built-in friedman1 data
    python benchmarks/vectorized_ensemble.py --dataset=boston --data_dir=../shared/data
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from uqbench import data
from uqbench.models.mlp import MLP
from uqbench.training.loop import train_models
from uqbench.training.regression import mean_variance_loss


def train_seconds(
    x: torch.Tensor, y: torch.Tensor, hidden: int, epochs: int, batch_size: int
) -> float:
    torch.manual_seed(0)
    model = MLP(x.shape[-1], (hidden,), 2, num_models=x.shape[0])
    start = time.perf_counter()
    train_models(
        model,
        mean_variance_loss(),
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=3e-3,
        generator=torch.Generator().manual_seed(0),
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="friedman1")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    split = data.get(args.dataset, split=0, data_dir=args.data_dir)
    x1, y1 = torch.tensor(split.x_train)[None], torch.tensor(split.y_train)[None]
    x, y = x1.expand(args.members, -1, -1).contiguous(), y1.expand(args.members, -1).contiguous()
    batched, sequential = [], []
    for _ in range(args.repeats):
        batched.append(train_seconds(x, y, split.n_hidden, args.epochs, args.batch_size))
        sequential.append(
            sum(
                train_seconds(x1, y1, split.n_hidden, args.epochs, args.batch_size)
                for _ in range(args.members)
            )
        )
    b, s = float(np.median(batched)), float(np.median(sequential))
    print(
        f"{args.dataset}: {args.members} members, {len(split.y_train)} examples, {args.epochs} epochs, "
        f"batch {args.batch_size}, {torch.get_num_threads()} threads (median of {args.repeats})"
    )
    print(f"  vectorised (one batched model): {b:.2f} s")
    print(f"  member by member:               {s:.2f} s")
    print(f"  speed-up: {s / b:.1f}x (target >= 4x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
