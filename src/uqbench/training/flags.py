"""Flags shared by the baseline scripts, defined once (absl flags are process-global).

A baseline script lists the flags it reads in ``FLAGS_USED``: the runner (``uqbench run``) refuses
flags outside that list, and ``flags.txt`` records exactly those, so several baselines can be
imported into one process (tests, the demo) without ``DuplicateFlagError`` or leaking flags.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from absl import app, flags

DATASET = flags.DEFINE_string(
    "dataset", None, "Data set name (see `uqbench list`) or path to a folder in a supported layout."
)
DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Data directory; default $UQBENCH_DATA_DIR, else ~/.cache/uqbench/data."
)
DOWNLOAD = flags.DEFINE_bool(
    "download", False, "Fetch missing benchmark files from their public source into --data_dir."
)
SPLIT = flags.DEFINE_string("split", "all", "Which standard split to run: an index, or 'all'.")
OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Run directory to write; default runs/<method>/<dataset>-<time>."
)
OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --output_dir.")
SEED = flags.DEFINE_integer("seed", 0, "Random seed (initialisation, minibatch order, dropout).")
EPOCHS = flags.DEFINE_integer("epochs", None, "Training epochs; default: the method's protocol.")
BATCH_SIZE = flags.DEFINE_integer("batch_size", None, "Minibatch size; default: the tuned value.")
LEARNING_RATE = flags.DEFINE_float(
    "learning_rate", None, "Adam learning rate; default: the tuned value."
)
HIDDEN = flags.DEFINE_integer(
    "hidden", None, "Hidden units of the one-layer MLP; default: the data set's (50, protein 100)."
)
DEVICE = flags.DEFINE_string("device", "cpu", "Device: cpu, cuda, cuda:N or auto.")
QUIET = flags.DEFINE_bool("quiet", False, "No progress output (the result table is still printed).")

REGRESSION_FLAGS = (
    DATASET,
    DATA_DIR,
    DOWNLOAD,
    SPLIT,
    OUTPUT_DIR,
    OVERWRITE,
    SEED,
    EPOCHS,
    BATCH_SIZE,
    LEARNING_RATE,
    HIDDEN,
    DEVICE,
    QUIET,
)


def serialize(holders: Iterable[flags.FlagHolder]) -> list[str]:
    """``--name=value`` lines for these flags (including unset ones), usable as a flagfile."""
    lines = []
    for holder in holders:
        flag = flags.FLAGS[holder.name]
        if flag.value is None:
            lines.append(f"# --{flag.name} unset (default used)")
        else:
            lines.append(flag.serialize())
    return lines


def parse_splits(value: str, num_splits: int) -> list[int]:
    """``'all'`` -> every split; ``'3'`` or ``'0,4,7'`` -> those; anything else is a clear error."""
    if value.strip().lower() == "all":
        return list(range(num_splits))
    try:
        splits = [int(part) for part in value.split(",")]
    except ValueError:
        raise ValueError(f"--split={value!r}: use 'all', an index, or indices like 0,3,5") from None
    bad = [s for s in splits if not 0 <= s < num_splits]
    if bad:
        raise ValueError(f"--split={value}: split {bad[0]} does not exist (0 to {num_splits - 1})")
    return splits


def default_output_dir(method: str, dataset: str) -> Path:
    """``runs/<method>/<dataset>-<YYYYmmdd-HHMMSS>`` under the current directory."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Path("runs") / method / f"{Path(dataset).name}-{stamp}"


def run_as_script(run: Callable[[], object]) -> None:
    """``python -m uqbench.baselines...``: parse the command line with absl, then call ``run``."""

    def main(argv: list[str]) -> None:
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        run()

    app.run(main)
