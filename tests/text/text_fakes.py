"""Tiny synthetic intent sets in CLINC150's JSON layout and as CSV, for the text tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

INTENTS = {
    "weather": ["weather", "rain", "sunny", "forecast"],
    "music": ["song", "music", "playlist", "album"],
    "travel": ["flight", "hotel", "trip", "ticket"],
}
FILLERS = ["please", "tell", "me", "about", "the", "now", "today", "my"]
OOS_WORDS = ["zebra", "quantum", "volcano", "origami", "jazz", "pyramid"]


def sentence(rng: np.random.Generator, words: list[str]) -> str:
    """A query of 3-7 words mixing ``words`` with fillers."""
    length = int(rng.integers(3, 8))
    picks = [
        words[int(rng.integers(len(words)))]
        if rng.random() < 0.5
        else FILLERS[int(rng.integers(len(FILLERS)))]
        for _ in range(length)
    ]
    picks[int(rng.integers(length))] = words[int(rng.integers(len(words)))]
    return " ".join(picks)


def intent_parts(per_class: int = 20, seed: int = 0) -> dict[str, list[list[str]]]:
    """train / val / test of the three intents (``per_class`` training queries each) and
    out-of-scope oos_val / oos_test queries."""
    rng = np.random.default_rng(seed)

    def part(count: int) -> list[list[str]]:
        return [[sentence(rng, w), i] for i, w in INTENTS.items() for _ in range(count)]

    return {
        "train": part(per_class),
        "val": part(max(2, per_class // 4)),
        "test": part(max(3, per_class // 2)),
        "oos_val": [[sentence(rng, OOS_WORDS), "oos"] for _ in range(6)],
        "oos_test": [[sentence(rng, OOS_WORDS), "oos"] for _ in range(12)],
    }


def write_json(path: Path, parts: dict | None = None, **kwargs) -> Path:
    """``parts`` (default :func:`intent_parts`) as a JSON file; returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(parts if parts is not None else intent_parts(**kwargs)))
    return path


def write_csv(
    path: Path, rows: list[list[str]], header: tuple[str, ...] = ("text", "label")
) -> Path:
    """``rows`` under ``header`` as a CSV file; returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
