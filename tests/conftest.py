"""Shared fixtures: where the real benchmark data is, if anywhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


# Read when the tests start, before any test's fixture clears $UQBENCH_DATA_DIR.
_CANDIDATES = (os.environ.get("UQBENCH_DATA_DIR"), REPO.parent / "shared" / "data")


def shared_data_dir() -> Path | None:
    """``$UQBENCH_DATA_DIR`` (as set when the tests started) or ``../shared/data`` beside the
    repository, if it holds UCI data."""
    for candidate in _CANDIDATES:
        if candidate and (Path(candidate) / "uci").is_dir():
            return Path(candidate)
    return None


@pytest.fixture
def real_data_dir() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("real UCI data not found (set UQBENCH_DATA_DIR or put it at ../shared/data)")
    return path


@pytest.fixture
def one_thread():
    """Tiny networks gain nothing from intra-op threads, and on a busy machine OpenMP's
    spin-waiting makes them far slower; torch's setting is restored afterwards. Use it with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
