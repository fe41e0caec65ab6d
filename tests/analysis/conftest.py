"""Real run directories for the analysis tests: written by the evaluation harness on digits with
untrained linear classifiers (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from analysis_fakes import linear_predictor

import uqbench
from uqbench import data
from uqbench.data.corrupted import CorruptionSuite
from uqbench.data.ood import resolve_ood


@pytest.fixture(scope="session")
def harness_runs(tmp_path_factory) -> Path:
    """Four real run directories from ``uqbench.evaluate`` on digits: a linear classifier and a
    3-member ensemble of them, seeds 0 and 1, with an OOD set and two corrupted sets each."""
    root = tmp_path_factory.mktemp("harness")
    cache = root / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UQBENCH_IMAGE_CACHE", str(cache))
        digits = data.get_images("digits")
        ood, _ = resolve_ood(["uniform_noise"], digits)
        corrupted = CorruptionSuite(digits, ("contrast", "gaussian_noise"), (1, 3), count=120)
        for seed in (0, 1):
            for method, members in (("linear", 0), ("linear-ensemble", 3)):
                uqbench.evaluate(
                    linear_predictor(seed, members),
                    digits,
                    ood=ood,
                    corrupted=corrupted,
                    output_dir=root / "runs" / f"{method}-{seed}",
                    method=method,
                    seed=seed,
                    params=640 * max(members, 1),
                    flag_lines=[f"--members={members}", f"--seed={seed}"],
                    measure_latency=False,
                    quiet=True,
                )
    return root / "runs"


TINY_SPACE = """
blocks = ["fc_32", "fc_64"]
max_depth = 2
[training]
epochs = 1
warmup_epochs = 0
[ensemble]
every = 2
"""


@pytest.fixture(scope="session")
def search_dir(tmp_path_factory) -> Path:
    """A finished 3-trial search on digits (one ensemble trial, a final ensemble)."""
    from uqbench.cli import main

    root = tmp_path_factory.mktemp("search")
    spec = root / "space.toml"
    spec.write_text(TINY_SPACE)
    out = root / "search-digits"
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        flags = ["--dataset=digits", "--trials=3", f"--spec={spec}", f"--output_dir={out}"]
        code = main(["search", *flags, "--quiet"])
    finally:
        torch.set_num_threads(previous)
    assert code == 0
    return out
