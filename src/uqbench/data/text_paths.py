"""Which names and files are text sets, without importing torch (the registry asks this)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

REGISTERED = {
    "clinc150": (
        Path("clinc150") / "data_full.json",
        "CLINC150 intent detection (Larson et al. 2019): 150 intents in 10 domains, 15,000 train, "
        "3,000 validation, 4,500 test queries; out-of-scope queries as OOD sets oos_val (100) "
        "and oos_test (1,000) (needs <data_dir>/clinc150/data_full.json from "
        "github.com/clinc/oos-eval)",
    )
}


def is_text_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file in a text layout: ``.json``, or ``.csv`` whose header names
    ``text`` and ``label``."""
    path = Path(path).expanduser()
    if not path.is_file():
        return False
    if path.suffix.lower() == ".json":
        return True
    if path.suffix.lower() != ".csv":
        return False
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        header = next(csv.reader(handle), [])
    return {"text", "label"} <= {h.strip().lower() for h in header}
