"""Where the real CLINC150 files are, if anywhere; text tests run on one thread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Read when the tests start, before any test's fixture clears $UQBENCH_DATA_DIR.
_CANDIDATES = (
    os.environ.get("UQBENCH_DATA_DIR"),
    Path(__file__).resolve().parents[2].parent / "shared" / "data",
)


def clinc_data_dir() -> Path | None:
    """``$UQBENCH_DATA_DIR`` (as set when the tests started) or ``../shared/data``, if it holds
    ``clinc150/data_full.json``."""
    for candidate in _CANDIDATES:
        if candidate and (Path(candidate) / "clinc150" / "data_full.json").is_file():
            return Path(candidate)
    return None


@pytest.fixture
def clinc_dir() -> Path:
    path = clinc_data_dir()
    if path is None:
        pytest.skip("CLINC150 not found (set UQBENCH_DATA_DIR or put it at ../shared/data)")
    return path
