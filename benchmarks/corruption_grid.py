"""A picture of one test image under every corruption (rows) and severity (columns), to compare
by eye with CIFAR-10-C: the first CIFAR-10 test image if the data is there, else a digit.

    python benchmarks/corruption_grid.py --data=../shared/data/cifar10/cifar10-jpeg75.tar.gz
    python benchmarks/corruption_grid.py --data=digits --out=/tmp/grid.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from uqbench import data
from uqbench.data import shift

REPO = Path(__file__).resolve().parents[1]
CELL = 96  # pixels per image in the picture
LABEL = 130  # width of the name column


def first_test_image(source: str) -> torch.Tensor:
    """The first test image of ``source`` (a name or path), as uint8 (1, C, H, W)."""
    return data.get_images(source).x_test[:1]


def grid(image: torch.Tensor, seed: int) -> Image.Image:
    """The clean image, then one row per corruption with severities 1-5 as columns."""
    rows = [("clean", [image])] + [
        (name, [shift.corrupt(image, name, s, seed=seed) for s in shift.SEVERITIES])
        for name in shift.CORRUPTIONS
    ]
    picture = Image.new("RGB", (LABEL + 5 * CELL, len(rows) * CELL), "white")
    draw = ImageDraw.Draw(picture)
    for r, (name, images) in enumerate(rows):
        draw.text((4, r * CELL + CELL // 2 - 6), name, fill="black")
        for c, one in enumerate(images):
            pixels = one[0].permute(1, 2, 0).numpy()
            if pixels.shape[2] == 1:
                pixels = np.repeat(pixels, 3, axis=2)
            tile = Image.fromarray(pixels).resize((CELL - 4, CELL - 4), Image.NEAREST)
            picture.paste(tile, (LABEL + c * CELL + 2, r * CELL + 2))
    return picture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = REPO.parent / "shared/data/cifar10/cifar10-jpeg75.tar.gz"
    parser.add_argument("--data", default=str(default) if default.exists() else "digits")
    parser.add_argument("--out", default=str(REPO / "docs/corruption_grid.png"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    grid(first_test_image(args.data), args.seed).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
