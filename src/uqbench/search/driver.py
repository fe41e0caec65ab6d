"""The main process of a search: check everything, open (or resume) the store, run the
executor, report progress, and keep ``summary.json`` / ``history.jsonl`` up to date.

Everything that can be wrong with the request (the spec, the data set, the flags, an output
directory that holds another search) is refused before the first trial trains.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from uqbench.search import executors, tables
from uqbench.search.algorithms import CHOICES, check_algorithm_space, make_algorithm
from uqbench.search.ensemble import store_budget, write_final_ensemble
from uqbench.search.outputs import ranked, search_status, write_outputs
from uqbench.search.plugins import check_first_suggestion, is_plugin_path
from uqbench.search.runner import (
    STORE_FILE,
    load_data,
    make_context,
    remove_stale_staging,
    trial_recipe,
)
from uqbench.search.space import SearchSpace, load_space, space_from_dict
from uqbench.search.store import FINISHED, TrialStore, machine_id
from uqbench.training.environment import select_device
from uqbench.training.progress import format_seconds
from uqbench.training.protocols import choose_protocol
from uqbench.training.rundir import dumps
from uqbench.training.tables import TABLE_RECIPE


@dataclass
class SearchRequest:
    """What ``uqbench search`` was asked to do."""

    dataset: str
    output_dir: str
    trials: int = 30
    split: int = 0
    target: str | None = None
    task: str | None = None
    spec: str | None = None
    algorithm: str = "adaptive"
    seed: int = 0
    validation_fraction: float = 0.2
    data_dir: str | None = None
    resume: bool = False
    workers: int = 1
    executor: str = "local"
    ray_address: str | None = None
    ray_storage: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    device: str | None = None
    quiet: bool = False

    def check(self) -> None:
        problems = []
        if self.trials < 1:
            problems.append(f"--trials must be at least 1, got {self.trials}")
        if self.algorithm not in CHOICES and not is_plugin_path(self.algorithm):
            problems.append(
                f"--algorithm must be one of {', '.join(CHOICES)} or package.module:factory, "
                f"got {self.algorithm!r}"
            )
        if self.executor not in executors.EXECUTORS:
            problems.append(
                f"--executor must be one of {', '.join(executors.EXECUTORS)}, got {self.executor!r}"
            )
        if self.workers < 1:
            problems.append(f"--workers must be at least 1, got {self.workers}")
        if self.seed < 0:
            problems.append(f"--seed must be >= 0, got {self.seed}")
        if not 0 < self.validation_fraction < 1:
            problems.append(
                "--validation_fraction must be in (0, 1): the objective is measured on the "
                f"validation split, got {self.validation_fraction}"
            )
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            problems.append("--cpus_per_trial must be > 0 and --gpus_per_trial >= 0")
        if self.gpus_per_trial > 0 and not self.ray_address:
            if torch.cuda.device_count() < self.gpus_per_trial:
                problems.append(
                    f"--gpus_per_trial={self.gpus_per_trial:g} but this machine has "
                    f"{torch.cuda.device_count()} GPUs (use --ray_address to join a cluster)"
                )
        if self.ray_address and self.executor != "ray":
            problems.append("--ray_address needs --executor=ray")
        if self.ray_storage and self.executor != "ray":
            problems.append("--ray_storage needs --executor=ray")
        if self.executor == "ray" and importlib.util.find_spec("ray") is None:
            problems.append(
                "--executor=ray needs Ray, which is not installed: pip install 'uqbench[ray]'"
            )
        if problems:
            raise ValueError("; ".join(problems))


def available_cores() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def oversubscribed(workers: int, cpus_per_trial: float, cores: int) -> str | None:
    """Why ``workers`` local workers of ``cpus_per_trial`` threads each are more than ``cores``
    can run at once, or None when they fit."""
    wanted = workers * max(1, int(cpus_per_trial))
    if wanted <= cores:
        return None
    return (
        f"--workers={workers} with --cpus_per_trial={cpus_per_trial:g} asks for {wanted} cores "
        f"and this machine gives {cores}: the workers share them, so each trial runs slower "
        "(the results do not change)"
    )


class Monitor:
    """Prints one line per finished trial (best so far, ETA) and rewrites the outputs."""

    def __init__(self, directory: Path, store: TrialStore, sign: float, key: str, quiet: bool):
        self.directory, self.store, self.sign, self.key = directory, store, sign, key
        self.quiet = quiet
        self.stream: TextIO = sys.stderr
        self.start = time.perf_counter()
        self.seen = {t.id for t in store.trials() if t.status in FINISHED}
        self.finished_before = len(self.seen)

    def __call__(self) -> None:
        self.store.release_dead()
        trials = self.store.trials()
        new = [t for t in trials if t.status in FINISHED and t.id not in self.seen]
        if not new:
            return
        settings = self.store.experiment()
        space = space_from_dict(settings["space"])
        budget = store_budget(int(settings.get("trials", 0)), space, trials)
        finished = sum(t.status in FINISHED for t in trials)
        best = ranked(trials, self.sign)
        elapsed = time.perf_counter() - self.start
        done_now = finished - self.finished_before
        eta = elapsed / done_now * max(0, budget - finished) if done_now else math.nan
        for trial in sorted(new, key=lambda t: t.id):
            self.seen.add(trial.id)
            if self.quiet:
                continue
            result = (
                f"{self.key} {trial.objective:.4f}"
                if trial.status == "done"
                else f"{trial.status}: {(trial.error or '')[:80]}"
            )
            origin = trial.how + (f" from {trial.parent}" if trial.parent is not None else "")
            best_text = f"best {best[0].objective:.4f} (#{best[0].id})" if best else "best -"
            print(
                f"[{finished}/{budget}] trial {trial.id} ({origin}, depth "
                f"{len(trial.architecture)}): {result} in {format_seconds(trial.seconds or 0)} "
                f"| {best_text} | {format_seconds(elapsed)} elapsed, ETA "
                f"{format_seconds(eta) if done_now else '?'}",
                file=self.stream,
                flush=True,
            )
        write_outputs(self.directory, elapsed)


def run_search(request: SearchRequest) -> dict[str, Any]:
    """Run (or resume) a search; returns its summary (also in ``summary.json``), whose
    ``status`` says whether the budget is done (:func:`~uqbench.search.outputs.search_status`)."""
    request.check()
    space = load_space(request.spec, table=tables.is_table(request.dataset))
    check_algorithm_space(request.algorithm, space)
    # A plug-in that does not import, or whose object cannot suggest, fails here.
    algorithm = make_algorithm(request.algorithm, space, request.seed, lambda _: True)
    check_first_suggestion(request.algorithm, algorithm)
    directory = Path(request.output_dir).expanduser().resolve()
    store_path = directory / STORE_FILE
    # A store with no settings recorded is a search killed before it began: start it afresh.
    begun = store_path.is_file() and bool(TrialStore(store_path).experiment())
    if not request.resume and directory.exists() and any(directory.iterdir()):
        if begun or not store_path.is_file():
            raise ValueError(
                f"{directory} is not empty"
                + (" and holds a search: pass --resume to continue it" if begun else "")
                + "; or choose another --output_dir"
            )
    if request.resume and not store_path.is_file():
        raise ValueError(f"--resume: {directory} holds no search ({STORE_FILE} missing)")
    resume = request.resume and begun
    settings = {
        "dataset": request.dataset,
        "algorithm": request.algorithm,
        "seed": request.seed,
        "validation_fraction": request.validation_fraction,
        "split": request.split,
        "target": request.target,
        "task": request.task,
        "space": space.to_dict(),
    }
    if request.executor == "ray" and (space.transfer != "none" or space.distill_weight > 0):
        raise ValueError(
            "[transfer] and [distillation] read earlier trials' checkpoints from the search "
            "directory, which Ray tasks on other machines cannot see: turn them off in the space "
            "for --executor=ray, or use --workers (ensemble trials do run on Ray: the main "
            "process builds them)"
        )
    dataset = load_data({**settings, "data_dir": request.data_dir})
    tables.check_space(space, dataset, {**settings, "data_dir": request.data_dir})
    device = select_device(request.device or "auto")
    try:
        # The space's [training] settings and a sample of its hyperparameters must make a
        # recipe that can train (e.g. warm-up no longer than training).
        base = choose_protocol("auto", None, device.type).recipe
        if isinstance(dataset, tables.TableData):
            base = TABLE_RECIPE
        trial_recipe(base, space, space.sample_hparams(np.random.default_rng(0)))
    except ValueError as err:
        raise ValueError(f"the search space's training settings cannot work: {err}") from None
    settings.update(dataset_name=dataset.name, data_hash=dataset.data_hash)
    if request.ray_storage and not Path(request.ray_storage).is_dir():
        raise ValueError(f"--ray_storage={request.ray_storage} is not a folder")
    log = (lambda *_: None) if request.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    if request.executor == "local" and request.workers > 1:
        warning = oversubscribed(request.workers, request.cpus_per_trial, available_cores())
        if warning:
            print(f"search: warning: {warning}", file=sys.stderr, flush=True)
    ray_started = request.executor == "ray" and executors.connect_ray(
        request.ray_address, request.workers, request.cpus_per_trial, request.gpus_per_trial
    )
    try:
        return _run(request, directory, space, settings, dataset, resume, log)
    finally:
        if ray_started:
            executors.shutdown_ray()


def _run(
    request: SearchRequest,
    directory: Path,
    space: SearchSpace,
    settings: dict[str, Any],
    dataset: Any,
    resume: bool,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The search once everything is checked: the store, the executor, the outputs."""
    store_path = directory / STORE_FILE
    store = TrialStore(store_path)
    recorded = store.start_experiment(
        {
            **settings,
            "trials": request.trials,
            "data_dir": request.data_dir,
            "device": request.device,
        },
        resume=resume,
    )
    if resume:
        now = time.time()
        elsewhere = [
            lease
            for lease in store.leases().values()
            if lease.machine != machine_id() and not lease.revoked and lease.expires > now
        ]
        if elsewhere:
            raise ValueError(
                f"--resume: workers on host {elsewhere[0].host!r} (another machine) still hold "
                f"leases for up to {max(x.expires for x in elsewhere) - now:.0f} s: stop them, "
                "or wait, then resume"
            )
    store.record_machine()
    if resume:
        released = store.release_dead()
        running = {t.id for t in store.trials() if t.status == "running"}
        remove_stale_staging(directory, running)
        store.remove_dead_staging()
        counts = store.counts()
        log(
            f"resuming {directory}: {sum(counts[s] for s in FINISHED)} finished trials kept, "
            f"{len(released)} unfinished handed back to be run again"
        )
    else:
        (directory / "flags.txt").write_text(_flag_lines(request))
        (directory / "space.json").write_text(dumps(space.to_dict(), indent=2) + "\n")
    log(
        f"search: {request.algorithm} on {dataset.name} ({dataset.x_train.shape[0]} train, "
        f"{dataset.x_val.shape[0]} validation), objective {space.objective_key} "
        f"({space.direction}), {recorded['trials']} trials, "
        + (f"{request.workers} worker(s), " if request.workers > 1 else "")
        + f"executor {request.executor}; results in {directory}"
    )
    monitor = Monitor(directory, store, space.sign, space.objective_key, request.quiet)
    start = time.perf_counter()
    try:
        if request.executor == "ray":
            executors.run_ray(
                make_context(directory, recorded, data=dataset, device="cpu"),
                store,
                monitor,
                workers=request.workers,
                cpus_per_trial=request.cpus_per_trial,
                gpus_per_trial=request.gpus_per_trial,
                device=request.device,
                storage=request.ray_storage,
            )
        elif request.workers > 1:
            executors.run_local_workers(
                directory,
                request.workers,
                monitor,
                threads=max(1, int(request.cpus_per_trial)),
                device=request.device,
            )
        else:
            context = make_context(directory, recorded, data=dataset, device=request.device)
            executors.run_in_process(context, store, monitor)
    except (KeyboardInterrupt, executors.WorkersFailed):
        write_outputs(directory, time.perf_counter() - start)  # its status: how far it got
        raise
    monitor()
    budget = store_budget(int(recorded["trials"]), space, store.trials())
    if search_status(store.counts(), budget) == "complete":
        context = make_context(directory, recorded, data=dataset, device=request.device)
        try:
            write_final_ensemble(context, store.trials())
        except Exception as err:  # the trials stand; the ensemble is reported missing
            print(f"search: the final ensemble could not be built: {err}", file=sys.stderr)
    summary = write_outputs(directory, time.perf_counter() - start)
    return summary


def _flag_lines(request: SearchRequest) -> str:
    lines = [f"--{k}={v}" for k, v in request.__dict__.items() if v is not None and k != "resume"]
    return "".join(line + "\n" for line in lines)
