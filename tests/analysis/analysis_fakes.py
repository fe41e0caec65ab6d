"""Run directories written by hand (exact numbers), and untrained classifiers for the harness."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch


def write_run(
    path: Path,
    *,
    method: str = "image/deterministic",
    dataset: str = "digits",
    seed: int = 0,
    metrics: dict | None = None,
    flags: dict | None = None,
    split="test",
    data_hash: str = "h",
    schema: int = 2,
    kind: str = "baseline",
    **extra,
) -> Path:
    """A minimal run directory: ``summary.json`` and ``flags.txt``."""
    path.mkdir(parents=True)
    lines = [f"--dataset={dataset}", f"--seed={seed}", f"# --output_dir={path}"]
    lines += [f"--{k}={v}" for k, v in (flags or {}).items()]
    (path / "flags.txt").write_text("\n".join(lines) + "\n")
    summary = {
        "schema": schema,
        "kind": kind,
        "method": method,
        "dataset": {"name": dataset},
        "data_hash": data_hash,
        "seed": seed,
        "split": split,
        "metrics": metrics or {},
        **extra,
    }
    (path / "summary.json").write_text(json.dumps(summary))
    return path


def linear_predictor(seed: int, members: int = 0):
    """An untrained linear classifier of 8x8 digits (``members`` > 0: an ensemble of them)."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.randn(max(members, 1), 64, 10, generator=generator) * 0.02

    def predict(images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = images.float().flatten(1) / 16.0
        logits = torch.einsum("nd,mdk->mnk", x, weights)
        if not members:
            return {"probs": logits[0].softmax(-1), "logits": logits[0]}
        log_probs = torch.logsumexp(logits.log_softmax(-1), dim=0) - np.log(members)
        return {
            "probs": log_probs.exp(),
            "log_probs": log_probs,
            "member_probs": logits.softmax(-1),
        }

    return predict
