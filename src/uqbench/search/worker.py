"""A search worker process: ``python -m uqbench.search.worker SEARCH_DIR``.

It reads the search's settings from the trial store in ``SEARCH_DIR``, loads the data and runs
trials until the budget is used up. Started by ``uqbench search --workers N`` (and by the Ray
executor); also usable by hand, e.g. on another machine that sees the same directory.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from uqbench.search.runner import STORE_FILE, StopRequested, make_context, worker_loop
from uqbench.search.store import TrialStore


def run_worker(directory: Path, device: str | None = None, threads: int | None = None) -> int:
    """Run trials of the search in ``directory`` until none are left; returns how many ran.
    Stops between epochs if the process that started it dies (its trial is then handed back)."""
    if threads:
        torch.set_num_threads(threads)
    path = Path(directory) / STORE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no search in {directory} (no {STORE_FILE}): start it first")
    store = TrialStore(path)
    parent = os.getppid()
    context = make_context(directory, store.experiment(), device=device)
    return worker_loop(context, store, should_stop=lambda: os.getppid() != parent)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m uqbench.search.worker")
    parser.add_argument("directory", help="the search directory (holds search.db)")
    parser.add_argument("--device", default=None, help="default: the search's device setting")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    args = parser.parse_args(argv)
    try:
        ran = run_worker(Path(args.directory), args.device, args.threads)
    except StopRequested:
        print("search worker: the search stopped; unfinished trial handed back", file=sys.stderr)
        return 0
    except KeyboardInterrupt:
        return 130
    print(f"search worker: ran {ran} trials", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
