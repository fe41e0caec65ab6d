"""Tiny searches on iris shared by the plug-in and Optuna tests (2-epoch trials, no ensembles)."""

from __future__ import annotations

from pathlib import Path

from uqbench.search.driver import SearchRequest, run_search
from uqbench.search.store import TrialStore

TABLE_SPEC = """
blocks = ["fc_32", "fc_64", "dropout_10", "layer_norm"]
max_depth = 3
[training]
epochs = 2
[ensemble]
enabled = false
"""


def table_request(tmp_path: Path, algorithm: str, trials: int, **extra) -> SearchRequest:
    tmp_path.mkdir(parents=True, exist_ok=True)
    spec = tmp_path / "table.toml"
    spec.write_text(TABLE_SPEC)
    values = {
        "dataset": "iris",
        "output_dir": str(tmp_path / "search"),
        "trials": trials,
        "spec": str(spec),
        "algorithm": algorithm,
        "seed": 4,
        "quiet": True,
    }
    return SearchRequest(**{**values, **extra})


def _suggestions(directory: Path) -> list[tuple]:
    rows = TrialStore(directory / "search.db").trials()
    return [(t.id, t.architecture, t.hparams, t.parent, t.status) for t in rows]


def resume_suggests_the_same(tmp_path: Path, algorithm: str, total: int) -> list[tuple]:
    """A search of ``total`` trials in one go, and one stopped after 2 and resumed to
    ``total``: the same trials, suggestion by suggestion; returns them."""
    straight = table_request(tmp_path / "straight", algorithm, total)
    assert run_search(straight)["status"] == "complete"
    stopped = table_request(tmp_path / "stopped", algorithm, 2)
    run_search(stopped)
    resumed = table_request(tmp_path / "stopped", algorithm, total, resume=True)
    assert run_search(resumed)["status"] == "complete"
    made = _suggestions(Path(straight.output_dir))
    assert made == _suggestions(Path(resumed.output_dir))
    assert len(made) == total
    return made
