"""A search worker process: ``python -m uqbench.search.worker SEARCH_DIR``.

It reads the search's settings from the trial store in ``SEARCH_DIR``, loads the data and runs
trials until the budget is used up, then waits while other workers still hold trials (one that
dies has its trial handed back, and this worker runs it). Started by ``uqbench search
--workers N``; also by hand, on the machine that runs the search: such a worker ignores hang-up
and keeps running after its shell exits. A worker on another machine is refused (the SQLite
store works on one machine only): use ``--executor=ray`` there.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from uqbench.search.runner import (
    STORE_FILE,
    SearchContext,
    StopRequested,
    TrialOutcome,
    make_context,
    worker_loop,
)
from uqbench.search.store import StoreError, TrialRow, TrialStore, check_machine, worker_id

WAIT_SECONDS = 1.0


def work_until_done(
    context: SearchContext,
    store: TrialStore,
    *,
    on_finish: Callable[[TrialRow, TrialOutcome], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    poll: Callable[[], None] | None = None,
) -> int:
    """Run trials until the budget is used up, then wait while other workers hold trials,
    running any that a dead worker hands back; returns how many ran here. The lease ends on
    return: a trial still held (Ctrl-C, an error) is handed back."""
    me = worker_id()
    context.staging = store.staging_dir(me)
    ran = 0
    try:
        while not should_stop():
            ran += worker_loop(context, store, on_finish=on_finish, should_stop=should_stop)
            store.release_dead()
            counts = store.counts()
            if counts["pending"]:
                continue
            if not counts["running"]:
                break
            if poll is not None:
                poll()
            time.sleep(WAIT_SECONDS)
    finally:
        store.retire(me)
    return ran


def run_worker(
    directory: Path,
    device: str | None = None,
    threads: int | None = None,
    stop_with_parent: bool = False,
) -> int:
    """Run trials of the search in ``directory`` until none are left; returns how many ran.
    With ``stop_with_parent`` (workers the search starts) it stops between epochs once the
    process that started it is gone, handing its trial back."""
    if threads:
        torch.set_num_threads(threads)
    path = Path(directory) / STORE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no search in {directory} (no {STORE_FILE}): start it first")
    check_machine(directory)
    store = TrialStore(path)
    parent = os.getppid()
    context = make_context(directory, store.experiment(), device=device)
    if stop_with_parent:
        return work_until_done(context, store, should_stop=lambda: os.getppid() != parent)
    return work_until_done(context, store)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m uqbench.search.worker")
    parser.add_argument("directory", help="the search directory (holds search.db)")
    parser.add_argument("--device", default=None, help="default: the search's device setting")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument(
        "--stop_with_parent",
        action="store_true",
        help="stop when the process that started this one exits (default: keep running)",
    )
    args = parser.parse_args(argv)
    try:
        ran = run_worker(Path(args.directory), args.device, args.threads, args.stop_with_parent)
    except StopRequested:
        _say("search worker: the search stopped; unfinished trial handed back")
        return 0
    except (StoreError, FileNotFoundError, ValueError) as err:
        _say(f"search worker: error: {err}")
        return 2
    except KeyboardInterrupt:
        return 130
    _say(f"search worker: ran {ran} trials")
    return 0


def _say(message: str) -> None:
    """Print to stderr, which may be a terminal that is gone (a worker outlives its shell)."""
    try:
        print(message, file=sys.stderr, flush=True)
    except OSError:
        pass


if __name__ == "__main__":
    if "--stop_with_parent" not in sys.argv:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # outlive the shell that started it
    sys.exit(main())
