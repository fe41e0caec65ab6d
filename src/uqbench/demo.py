"""The demo: the three UCI-protocol baselines compared on built-in data, then a short model
search on scikit-learn's digits; about 30 seconds on 2 CPU cores."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from uqbench import baselines
from uqbench.training.progress import format_seconds
from uqbench.training.report import format_table

DEMO_DATASETS = ("diabetes", "gap1d")
DEMO_METHODS = ("uci/deterministic", "uci/dropout", "uci/ensemble")
COLUMNS = ("rmse", "nll", "crps", "coverage95")
DEMO_SEARCH_TRIALS = 8


def run_demo(
    output_dir: str | Path | None = None,
    splits: str = "all",
    search_trials: int = DEMO_SEARCH_TRIALS,
) -> list[dict]:
    """Run every method on every demo data set (all 20 splits) and print one comparison table;
    then search ``search_trials`` trials for a digits classifier (0 skips it). Returns the
    baselines' summaries, then the search's."""
    root = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="uqbench-demo-"))
    start = time.perf_counter()
    rows, summaries = [], []
    for dataset in DEMO_DATASETS:
        for method in DEMO_METHODS:
            out = root / dataset / method.replace("/", "_")
            summary = baselines.run(
                method,
                [
                    f"--dataset={dataset}",
                    f"--split={splits}",
                    f"--output_dir={out}",
                    "--overwrite",
                    "--quiet",
                ],
            )
            summaries.append(summary)
            values = summary["metrics"]
            rows.append(
                [
                    dataset,
                    method,
                    *(
                        f"{values[f'test/{c}']:.3f} ± {values.get(f'test/{c}_se', 0.0):.3f}"
                        for c in COLUMNS
                    ),
                    format_seconds(values["cost/train_seconds"]),
                ]
            )
    print()
    print(
        format_table(
            ["data set", "method", *(f"test {c}" for c in COLUMNS), "train time"],
            rows,
            title="uqbench demo: mean ± standard error over 20 random 90/10 splits "
            "(NLL in nats per example; lower is better except coverage95, ideally 0.95)",
        )
    )
    if search_trials:
        summaries.append(demo_search(root / "search-digits", search_trials))
    print(
        f"\ndemo finished in {format_seconds(time.perf_counter() - start)}; run directories in {root}"
    )
    return summaries


def demo_search(directory: Path, trials: int) -> dict:
    """A short adaptive search on digits (validation NLL), and its top trials."""
    from uqbench.search.driver import SearchRequest, run_search
    from uqbench.search.outputs import SearchNotComplete, conclusion, show

    print(f"\nmodel search: {trials} trials on digits (uqbench search --dataset=digits ...)")
    if directory.exists():  # the demo's own directory from an earlier run
        shutil.rmtree(directory)
    summary = run_search(SearchRequest(dataset="digits", output_dir=str(directory), trials=trials))
    status, line = conclusion(directory)
    if status != "complete":
        raise SearchNotComplete(f"the demo's {line}")
    print(show(directory, top=3))
    print(line)
    return summary
