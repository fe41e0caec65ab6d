"""Where trials run: in this process (default), in local worker processes, or on Ray.

In-process and local workers run :func:`~uqbench.search.worker.work_until_done` against the
one trial store, which hands out trials (so workers never take the same one), hands a dead
worker's trial back, and refuses a second result for a trial (so nothing is counted twice). On
Ray the driver alone opens the store: it claims trials, sends each suggestion to a task, and
records the outcome and installs the run directory the task returns (bytes through Ray, or a
copy under a storage path every node and the driver see), so nodes need no shared folder.
``poll`` is called about once a second so the caller can print progress, hand dead workers'
trials back and write the search's outputs.
"""

from __future__ import annotations

import dataclasses
import io
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from uqbench.search.ensemble import HOW as ENSEMBLE
from uqbench.search.ensemble import store_budget
from uqbench.search.runner import (
    SearchContext,
    StopRequested,
    make_context,
    run_trial,
    suggester,
    trial_dir,
)
from uqbench.search.store import TrialRow, TrialStore, worker_id
from uqbench.search.worker import work_until_done

EXECUTORS = ("local", "ray")
MAX_TASK_ATTEMPTS = 3  # a trial whose Ray task dies this often is recorded as failed
Poll = Callable[[], None]


class WorkersFailed(RuntimeError):
    """Every worker of a search exited with an error; their logs say why."""


def run_in_process(context: SearchContext, store: TrialStore, poll: Poll) -> None:
    """Trials one after another in this process (``poll`` after each), then wait for trials
    that hand-started workers still hold."""
    work_until_done(context, store, on_finish=lambda *_: poll(), poll=poll)


def with_source_on_path(env: dict[str, str]) -> dict[str, str]:
    """``env`` with uqbench's source folder first on ``PYTHONPATH``, so worker processes import
    this uqbench even when it runs from a source tree rather than an installed package."""
    source = str(Path(__file__).resolve().parents[2])
    paths = [source, *env.get("PYTHONPATH", "").split(os.pathsep)]
    return {**env, "PYTHONPATH": os.pathsep.join(dict.fromkeys(p for p in paths if p))}


def worker_command(directory: Path, threads: int, device: str | None) -> list[str]:
    command = [sys.executable, "-m", "uqbench.search.worker", str(directory)]
    command += [f"--threads={threads}", "--stop_with_parent"]
    if device:
        command.append(f"--device={device}")
    return command


def run_local_workers(
    directory: Path, workers: int, poll: Poll, *, threads: int, device: str | None = None
) -> None:
    """``workers`` processes (``python -m uqbench.search.worker DIR``), each with ``threads``
    CPU threads; waits for all of them. A worker that fails is reported; the others go on and
    run its trial again."""
    env = with_source_on_path(dict(os.environ))
    logs = directory / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    try:
        for index in range(workers):
            log = (logs / f"worker{index}.log").open("a")
            processes.append(
                (
                    subprocess.Popen(
                        worker_command(directory, threads, device),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                    ),
                    log,
                )
            )
        while any(p.poll() is None for p, _ in processes):
            time.sleep(0.5)
            poll()
    finally:
        for process, log in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            log.close()
    failed = [i for i, (p, _) in enumerate(processes) if p.returncode not in (0, None)]
    poll()
    if failed and len(failed) == len(processes):
        raise WorkersFailed(
            f"every search worker failed (exit codes "
            f"{', '.join(str(processes[i][0].returncode) for i in failed)}); see "
            f"{logs}/worker*.log"
        )
    for index in failed:
        print(
            f"search: worker {index} exited with code {processes[index][0].returncode}; see "
            f"{logs}/worker{index}.log",
            file=sys.stderr,
        )


def check_ray_resources(
    resources: dict[str, float], cpus_per_trial: float, gpus_per_trial: float
) -> None:
    """Refuse per-trial requests no node of the cluster can meet (Ray would wait for ever)."""
    for name, wanted, flag in (
        ("CPU", cpus_per_trial, "--cpus_per_trial"),
        ("GPU", gpus_per_trial, "--gpus_per_trial"),
    ):
        have = float(resources.get(name, 0.0))
        if wanted > have:
            raise ValueError(
                f"{flag}={wanted:g} but the Ray cluster has {have:g} {name}s in all: lower it"
                + (" (or 0 to run on CPUs)" if name == "GPU" else "")
            )


def connect_ray(
    address: str | None, workers: int, cpus_per_trial: float, gpus_per_trial: float
) -> bool:
    """Join the Ray cluster at ``address`` (``auto``, ``host:port``), or start a local Ray when
    none is given and none is running; refuses an address that does not answer and requests no
    node can meet. Returns whether Ray was started here (the caller shuts it down)."""
    try:
        import ray
    except ImportError:
        raise ValueError(
            "--executor=ray needs Ray: pip install 'uqbench[ray]' (or pip install ray)"
        ) from None
    started_here = not ray.is_initialized()
    if started_here:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            _check_address(address)
            options["address"] = address
        else:
            options["num_cpus"] = max(os.cpu_count() or 1, int(cpus_per_trial * workers))
            options["num_gpus"] = torch.cuda.device_count()
            # Local Ray workers inherit this process's environment.
            os.environ["PYTHONPATH"] = with_source_on_path(dict(os.environ))["PYTHONPATH"]
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, TimeoutError) as err:
            raise ValueError(
                f"--ray_address={address}: could not join a Ray cluster ({err}); start one with "
                "`ray start --head` or fix the address"
            ) from None
    try:
        check_ray_resources(ray.cluster_resources(), cpus_per_trial, gpus_per_trial)
    except ValueError:
        if started_here:
            ray.shutdown()
        raise
    return started_here


def _check_address(address: str, timeout: float = 5.0) -> None:
    """Refuse a ``host:port`` where nothing answers, in seconds rather than Ray's minute."""
    if address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as err:
        raise ValueError(
            f"--ray_address={address} does not answer ({err}): start the cluster with "
            "`ray start --head` on that machine, or fix the address"
        ) from None


def run_remote_trial(
    settings: dict[str, Any],
    data: Any,
    trial: TrialRow,
    device: str | None,
    threads: int,
    directory: str,
    storage: str | None = None,
) -> dict[str, Any]:
    """What one Ray task runs: ``trial`` in a temporary folder of its node (``directory``, the
    search's, only names it in the run's files); returns the outcome and the run directory as
    a tar archive, or the path of its copy under ``storage``."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="uqbench-trial-") as scratch:
        context = make_context(directory, settings, data=data, device=device)
        context.staging = Path(scratch)
        outcome = run_trial(context, trial)
        result: dict[str, Any] = {
            "outcome": outcome.as_record(),
            "archive": None,
            "path": None,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        if outcome.status == "done":
            run = trial_dir(Path(scratch), trial.id)
            if storage:
                copy = Path(storage) / f"{run.name}-{secrets.token_hex(4)}"
                shutil.copytree(run, copy)
                result["path"] = str(copy)
            else:
                buffer = io.BytesIO()
                with tarfile.open(fileobj=buffer, mode="w") as archive:
                    archive.add(run, arcname=run.name)
                result["archive"] = buffer.getvalue()
    return result


def _receive(result: dict[str, Any], staging: Path, trial_id: int) -> Path | None:
    """Put a task's run directory at ``staging/trials/<id>``, for the store to install."""
    if result["archive"] is None and result["path"] is None:
        return None
    target = trial_dir(staging, trial_id)
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    if result["path"] is not None:
        shutil.copytree(result["path"], target)
        shutil.rmtree(result["path"], ignore_errors=True)
        return target
    with tarfile.open(fileobj=io.BytesIO(result["archive"])) as archive:
        names = archive.getnames()
        if any(n != target.name and not n.startswith(target.name + "/") for n in names):
            raise ValueError(f"trial {trial_id}: the task returned unexpected files {names[:3]}")
        if hasattr(tarfile, "data_filter"):
            archive.extractall(target.parent, filter="data")
        else:  # Python without extraction filters; the names were checked above
            archive.extractall(target.parent)
    return target


def run_ray(
    context: SearchContext,
    store: TrialStore,
    poll: Poll,
    *,
    workers: int,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    device: str | None = None,
    storage: str | None = None,
) -> None:
    """Up to ``workers`` Ray tasks at a time, one per trial, each with ``cpus_per_trial`` CPUs
    and ``gpus_per_trial`` GPUs, on the Ray instance :func:`connect_ray` joined. This process
    alone opens the store; a task that dies has its trial run again (recorded as failed after
    :data:`MAX_TASK_ATTEMPTS` tries)."""
    import ray

    if gpus_per_trial > 0 and device is None:
        device = "cuda"
    task = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0)(
        run_remote_trial
    )
    data = ray.put(context.data)
    threads = max(1, int(cpus_per_trial))
    me = store.register(worker_id())
    staging = store.staging_dir(me)
    suggest = suggester(context)
    running: dict[Any, TrialRow] = {}
    successes, errors = 0, []
    try:
        while True:
            trials = int(store.experiment().get("trials", 0))
            budget = store_budget(trials, context.space, store.trials())
            while len(running) < workers:
                trial = store.claim(budget, suggest, worker=me)
                if trial is None:
                    break
                if trial.how == ENSEMBLE:  # reads finished trials' files: built here
                    local = dataclasses.replace(context, staging=staging)
                    outcome = run_trial(local, trial)
                    staged = trial_dir(staging, trial.id) if outcome.status == "done" else None
                    if store.finish(trial.id, worker=me, run_dir=staged, **outcome.as_record()):
                        successes += 1
                    continue
                ref = task.remote(
                    context.settings, data, trial, device, threads, str(context.directory), storage
                )
                running[ref] = trial
            if not running:
                store.release_dead()
                counts = store.counts()
                if not counts["pending"] and not counts["running"]:
                    break
                poll()
                time.sleep(1.0)
                continue
            done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in done:
                trial = running.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as err:  # the task raised, or its process or node died
                    message = f"trial {trial.id}: {str(err).strip().splitlines()[-1][:300]}"
                    errors.append(message)
                    if trial.attempts >= MAX_TASK_ATTEMPTS:
                        store.finish(
                            trial.id,
                            status="failed",
                            worker=me,
                            error=f"its Ray task failed {trial.attempts} times: {message}",
                        )
                    else:
                        store.release(trial.id, worker=me)
                    continue
                staged = _receive(result, staging, trial.id)
                if store.finish(trial.id, worker=me, run_dir=staged, **result["outcome"]):
                    successes += 1
            poll()
            if not successes and len(errors) >= max(workers, 2):
                raise WorkersFailed(
                    f"every Ray task failed ({len(errors)} tried; first: {errors[0]})"
                )
    finally:
        for ref in running:
            ray.cancel(ref, force=True)
        store.retire(me)


def shutdown_ray() -> None:
    """Stop the Ray instance :func:`connect_ray` started."""
    import ray

    ray.shutdown()


__all__ = [
    "EXECUTORS",
    "StopRequested",
    "WorkersFailed",
    "connect_ray",
    "run_in_process",
    "run_local_workers",
    "run_ray",
]
