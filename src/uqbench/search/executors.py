"""Where trials run: in this process (default), in local worker processes, or on Ray.

Every executor runs the same :func:`~uqbench.search.runner.worker_loop` against the one trial
store, which hands out trials (so workers never take the same one) and refuses a second result
for a trial (so nothing is counted twice). Executors only start workers and wait; ``poll`` is
called about once a second so the caller can print progress and write the search's outputs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from uqbench.search.runner import SearchContext, StopRequested, worker_loop
from uqbench.search.store import TrialStore

EXECUTORS = ("local", "ray")
Poll = Callable[[], None]


class WorkersFailed(RuntimeError):
    """Every worker of a search exited with an error; their logs say why."""


def run_in_process(context: SearchContext, store: TrialStore, poll: Poll) -> None:
    """Trials one after another in this process (``poll`` after each)."""
    worker_loop(context, store, on_finish=lambda *_: poll())


def with_source_on_path(env: dict[str, str]) -> dict[str, str]:
    """``env`` with uqbench's source folder first on ``PYTHONPATH``, so worker processes import
    this uqbench even when it runs from a source tree rather than an installed package."""
    source = str(Path(__file__).resolve().parents[2])
    paths = [source, *env.get("PYTHONPATH", "").split(os.pathsep)]
    return {**env, "PYTHONPATH": os.pathsep.join(dict.fromkeys(p for p in paths if p))}


def worker_command(directory: Path, threads: int, device: str | None) -> list[str]:
    command = [sys.executable, "-m", "uqbench.search.worker", str(directory)]
    command += [f"--threads={threads}"]
    if device:
        command.append(f"--device={device}")
    return command


def run_local_workers(
    directory: Path, workers: int, poll: Poll, *, threads: int, device: str | None = None
) -> None:
    """``workers`` processes (``python -m uqbench.search.worker DIR``), each with ``threads``
    CPU threads; waits for all of them. A worker that fails is reported; the others go on."""
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


def _ray_worker(directory: str, device: str | None, threads: int) -> int:
    """What one Ray task runs: a worker loop on the shared search directory."""
    from uqbench.search.worker import run_worker

    return run_worker(Path(directory), device=device, threads=threads)


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


def run_ray(
    directory: Path,
    workers: int,
    poll: Poll,
    *,
    address: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    device: str | None = None,
) -> None:
    """``workers`` Ray tasks, each a worker loop with ``cpus_per_trial`` CPUs and
    ``gpus_per_trial`` GPUs. ``address`` joins a running cluster (``auto`` or ``host:port``;
    the search directory must be on a file system every node sees); none starts a local Ray."""
    try:
        import ray
    except ImportError:
        raise ValueError(
            "--executor=ray needs Ray: pip install 'uqbench[ray]' (or pip install ray)"
        ) from None
    if gpus_per_trial > 0 and device is None:
        device = "cuda"
    started_here = not ray.is_initialized()
    if started_here:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            options["address"] = address
        else:
            options["num_cpus"] = max(os.cpu_count() or 1, int(cpus_per_trial * workers))
            options["num_gpus"] = torch.cuda.device_count()
            # Local Ray workers inherit this process's environment.
            os.environ["PYTHONPATH"] = with_source_on_path(dict(os.environ))["PYTHONPATH"]
        ray.init(**options)
    try:
        check_ray_resources(ray.cluster_resources(), cpus_per_trial, gpus_per_trial)
        task = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0)(
            _ray_worker
        )
        threads = max(1, int(cpus_per_trial))
        pending = [task.remote(str(directory), device, threads) for _ in range(workers)]
        errors = []
        while pending:
            done, pending = ray.wait(pending, timeout=1.0)
            for ref in done:
                try:
                    ray.get(ref)
                except Exception as err:  # a lost worker: its trial is released on resume
                    errors.append(str(err).splitlines()[0])
            poll()
        if errors and len(errors) == workers:
            raise WorkersFailed(f"every Ray search worker failed: {errors[0]}")
        for error in errors:
            print(f"search: a Ray worker failed: {error}", file=sys.stderr)
    finally:
        if started_here:
            ray.shutdown()


__all__ = [
    "EXECUTORS",
    "StopRequested",
    "WorkersFailed",
    "run_in_process",
    "run_local_workers",
    "run_ray",
]
