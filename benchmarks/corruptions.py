"""Time corrupting N CIFAR-10 test images at all 75 settings (15 corruptions x 5 severities) with
``uqbench.data.shift.corrupt``, printing each corruption's seconds next to the target (the
10,000-image test set at all 75 settings in under 10 minutes, i.e. 60 s per 1,000 images).

    OMP_NUM_THREADS=2 python benchmarks/corruptions.py --images=1000
    python benchmarks/corruptions.py --images=10000 --device=cuda
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from uqbench import data
from uqbench.data import shift

TARGET_SECONDS_PER_IMAGE = 600 / 10_000  # all 75 settings
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/cifar10/cifar10-jpeg75.tar.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="an image set name or path")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    images = data.get_images(args.data).x_test[: args.images].to(args.device)
    n = len(images)
    print(
        f"{n} images {tuple(images.shape[1:])} on {args.device}, {torch.get_num_threads()} threads"
    )
    total = 0.0
    for name in shift.CORRUPTIONS:
        start = time.perf_counter()
        for severity in shift.SEVERITIES:
            shift.corrupt(images, name, severity)
        if images.is_cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        total += seconds
        print(f"{name:18s} {seconds:7.2f} s for 5 severities")
    target = TARGET_SECONDS_PER_IMAGE * n
    print(
        f"{'all 75 settings':18s} {total:7.2f} s   target < {target:.0f} s  ({total / target:.2f}x)"
    )


if __name__ == "__main__":
    main()
