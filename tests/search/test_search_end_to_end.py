"""Searches on digits with a tiny budget: outputs, failures, constraints, SIGKILL + resume,
local worker processes, Ray, show / export / load_model, bad requests, and the exit code and
last line of `uqbench search` (finished, failed, incomplete)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from uqbench import data, metrics
from uqbench.cli import main
from uqbench.search import driver, executors, outputs
from uqbench.search.driver import SearchRequest, run_search
from uqbench.search.store import TrialStore
from uqbench.training.classifier import Runtime, predict_logits

SRC = str(Path(__file__).resolve().parents[2] / "src")

TINY_SPEC = """
blocks = ["conv3x3_16", "max_pool", "fc_64", "tests.search.user_blocks:exploding"]
min_depth = 1
max_depth = 3
depth_every = 2
beam_size = 2

[hyperparameters]
learning_rate = [0.02, 0.1]

[training]
epochs = {epochs}
batch_size = 128
"""


def write_spec(tmp_path: Path, epochs: int = 2, blocks: list[str] | None = None, extra="") -> Path:
    text = TINY_SPEC.format(epochs=epochs)
    if blocks is not None:
        text = text.replace(
            text.splitlines()[1], "blocks = [" + ", ".join(f'"{b}"' for b in blocks) + "]"
        )
    path = tmp_path / f"space{len(list(tmp_path.glob('space*.toml')))}.toml"
    path.write_text(text + extra)
    return path


@pytest.fixture(autouse=True)
def importable_tests(monkeypatch):
    """The user-block module lives in tests/: make it importable here and in workers."""
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.syspath_prepend(root)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([SRC, root]))


def small_request(tmp_path: Path, **overrides) -> SearchRequest:
    values = {
        "dataset": "digits",
        "output_dir": str(tmp_path / "search"),
        "trials": 5,
        "spec": None,
        "seed": 3,
        "quiet": True,
    }
    values.update(overrides)
    if values["spec"] is None:
        values["spec"] = str(write_spec(tmp_path, blocks=["conv3x3_16", "max_pool", "fc_64"]))
    return SearchRequest(**values)


@pytest.mark.slow
def test_a_search_writes_its_outputs_and_the_best_model_loads(tmp_path):
    summary = run_search(small_request(tmp_path))
    directory = tmp_path / "search"
    store = TrialStore(directory / "search.db")
    trials = store.trials()
    assert [t.id for t in trials] == [1, 2, 3, 4, 5]
    assert all(t.status == "done" for t in trials)
    # adaptive: the first trial is random, the later ones grow or mutate a finished parent;
    # the 5th is an ensemble of the best of them (every 5th trial, by default)
    assert trials[0].how == "random" and trials[0].parent is None
    assert all(t.parent is not None for t in trials[1:4])
    combined = trials[4]
    assert (combined.how, combined.parent, combined.architecture) == ("ensemble", None, ())
    run = json.loads((directory / "trials" / "0005" / "summary.json").read_text())
    assert run["method"] == "search/ensemble" and set(run["members"]) <= {1, 2, 3, 4}
    # its test NLL is that of the average of its members' own saved test predictions
    saved = [
        np.load(directory / "trials" / f"{m:04d}" / "predictions" / "test.npz")
        for m in run["members"]
    ]
    probs = np.mean([s["probs"].astype(np.float64) for s in saved], axis=0)
    labels = saved[0]["labels"]
    by_hand = -np.mean(np.log(probs[np.arange(len(labels)), labels]))
    assert combined.test_metrics["test/nll"] == pytest.approx(by_hand, rel=1e-4)
    assert summary["ensemble"]["directory"] == "ensemble"
    assert (directory / "ensemble" / "predictions" / "test.npz").is_file()
    assert summary["kind"] == "search" and summary["trials"]["done"] == 5
    trials = trials[:4]
    best = min(trials, key=lambda t: t.objective)
    assert summary["best_trial"]["trial"] == best.id
    assert summary["metrics"]["val/nll"] == pytest.approx(best.objective)
    history = [json.loads(line) for line in (directory / "history.jsonl").read_text().splitlines()]
    assert sorted(r["trial"] for r in history) == [1, 2, 3, 4, 5]
    assert all(r["how"] == "ensemble" for r in history if r["trial"] == 5)
    # every trial is a run directory whose validation record is the store's objective
    for trial in trials:
        run = json.loads((directory / "trials" / f"{trial.id:04d}" / "summary.json").read_text())
        assert run["validation"]["val/nll"] == pytest.approx(trial.objective)
        assert run["metrics"]["test/accuracy"] == pytest.approx(trial.test_metrics["test/accuracy"])
    # export + load_model rebuilds the best network: same test accuracy as recorded
    path = outputs.export(directory)
    model, metadata = outputs.load_model(path)
    assert metadata["search"]["trial"] == best.id
    digits = data.get_images("digits", validation_fraction=0.2)
    logits = predict_logits(
        model,
        digits.x_test,
        tuple(metadata["mean"]),
        tuple(metadata["std"]),
        Runtime.for_device(torch.device("cpu")),
    )
    accuracy = metrics.accuracy(logits.softmax(-1).numpy(), digits.y_test.numpy())
    assert accuracy == pytest.approx(best.test_metrics["test/accuracy"], abs=1e-6)
    text = outputs.show(directory)
    assert "lineage of the best: " in text
    assert " > ".join(best.architecture) in text


@pytest.mark.slow
def test_failing_and_infeasible_trials_are_recorded_and_the_search_goes_on(tmp_path):
    spec = write_spec(tmp_path, blocks=["tests.search.user_blocks:exploding", "fc_64"])
    run_search(small_request(tmp_path, spec=str(spec), trials=6, algorithm="random"))
    trials = TrialStore(tmp_path / "search" / "search.db").trials()
    assert len(trials) == 6
    failed = [t for t in trials if t.status == "failed"]
    done = [t for t in trials if t.status == "done"]
    assert failed and done
    assert all("NonFiniteLossError" in t.error for t in failed)
    assert all("tests.search.user_blocks:exploding" in t.architecture for t in failed)

    spec = write_spec(tmp_path, extra="\n[constraints]\nmax_params = 3000\n")
    other = tmp_path / "other"
    run_search(small_request(tmp_path, spec=str(spec), output_dir=str(other), trials=4))
    trials = TrialStore(other / "search.db").trials()
    infeasible = [t for t in trials if t.status == "infeasible"]
    assert all(t.params > 3000 and "max_params" in t.error for t in infeasible)
    assert all(t.params <= 3000 for t in trials if t.status == "done")


ALL_MECHANISMS = """
[transfer]
mode = "prefix"

[distillation]
weight = 0.5
temperature = 2.0

[ensemble]
every = 3
"""


def _search_command(
    tmp_path: Path, trials: int, *extra: str, epochs: int = 15, mechanisms: bool = True
) -> list[str]:
    spec = write_spec(
        tmp_path,
        epochs=epochs,
        blocks=["conv3x3_16", "max_pool", "fc_64"],
        extra=ALL_MECHANISMS if mechanisms else "",
    )
    return [
        sys.executable,
        "-m",
        "uqbench",
        "search",
        "--dataset=digits",
        f"--trials={trials}",
        f"--spec={spec}",
        f"--output_dir={tmp_path / 'search'}",
        "--quiet",
        *extra,
    ]


@pytest.mark.slow
def test_sigkill_mid_trial_then_resume_keeps_every_finished_trial_once(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(_search_command(tmp_path, 6), env=env)
    db = tmp_path / "search" / "search.db"
    deadline = time.time() + 120
    before = None
    while time.time() < deadline and process.poll() is None:
        if db.exists():
            trials = TrialStore(db).trials()
            # a running ensemble trial (trial 3) ends within milliseconds, before the kill
            # lands; a training one runs for seconds
            if sum(t.status == "done" for t in trials) >= 2 and any(
                t.status == "running" and t.how != "ensemble" for t in trials
            ):
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                before = {t.id: t for t in TrialStore(db).trials()}
                break
        time.sleep(0.05)
    assert before is not None, "the search finished or stalled before it could be killed"
    running = [i for i, t in before.items() if t.status == "running"]
    assert running
    result = subprocess.run([*_search_command(tmp_path, 6), "--resume"], env=env, timeout=300)
    assert result.returncode == 0
    after = {t.id: t for t in TrialStore(db).trials()}
    assert sorted(after) == [1, 2, 3, 4, 5, 6]
    for trial_id, trial in before.items():
        if trial.status == "done":  # untouched by the resume
            assert after[trial_id].objective == trial.objective
            assert after[trial_id].attempts == 1
        else:  # re-run with the suggestion it had
            assert after[trial_id].architecture == trial.architecture
            assert after[trial_id].hparams == trial.hparams
            assert after[trial_id].attempts == 2
    assert all(t.status == "done" for t in after.values())
    # weight sharing, distillation and ensembling all ran: trials 3 and 6 are ensembles, every
    # trained child recorded its warm-started fraction, and distilled from an earlier trial
    assert [after[i].how for i in (3, 6)] == ["ensemble", "ensemble"]
    children = [t for t in after.values() if t.how != "ensemble" and t.parent is not None]
    assert any(t.val_metrics["transfer/warm_fraction"] > 0 for t in children)
    for trial in children:
        assert 0 <= trial.val_metrics["transfer/warm_fraction"] <= 1
        run = json.loads(
            (tmp_path / "search" / "trials" / f"{trial.id:04d}" / "summary.json").read_text()
        )
        assert run["distillation"]["teacher"] < trial.id
        assert run["distillation"]["teacher_outputs"] == "per augmented batch"  # crop_padding
    assert (tmp_path / "search" / "ensemble" / "summary.json").is_file()
    history = (tmp_path / "search" / "history.jsonl").read_text().splitlines()
    assert len(history) == 6
    assert not list((tmp_path / "search" / "trials").glob(".*partial*"))


def _no_staging_left(directory: Path) -> bool:
    staging = directory / "staging"
    partial = list((directory / "trials").glob(".*partial*"))
    return not partial and (not staging.exists() or not any(staging.iterdir()))


@pytest.mark.slow
def test_a_sigkilled_local_worker_s_trial_is_run_by_the_other_and_the_search_finishes(tmp_path):
    """Two worker processes; one is SIGKILLed mid-trial. The other hands its trial back (the
    lock is free), runs it with the same suggestion and the search exits 0, budget done."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(_search_command(tmp_path, 4, "--workers=2"), env=env)
    db = tmp_path / "search" / "search.db"
    deadline, victim = time.time() + 120, None
    while time.time() < deadline and process.poll() is None and victim is None:
        time.sleep(0.1)
        if not db.exists():
            continue
        store = TrialStore(db)
        leases = store.leases()
        running = [t for t in store.trials() if t.status == "running" and t.worker in leases]
        if len(leases) == 2 and running:
            victim = running[0]
            os.kill(leases[victim.worker].pid, signal.SIGKILL)
    assert victim is not None, "the search finished or stalled before a worker could be killed"
    assert process.wait(timeout=240) == 0
    trials = TrialStore(db).trials()
    assert [t.id for t in trials] == [1, 2, 3, 4]
    assert all(t.status == "done" for t in trials)
    again = trials[victim.id - 1]
    assert again.attempts == 2 and again.worker != victim.worker
    assert (again.architecture, again.hparams) == (victim.architecture, victim.hparams)
    assert _no_staging_left(tmp_path / "search")
    history = (tmp_path / "search" / "history.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["trial"] for line in history) == [1, 2, 3, 4]


@pytest.mark.slow
def test_a_worker_started_by_hand_outlives_its_shell_and_the_search_waits_for_it(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # every trial trains (no quick ensemble trials), so the hand-started worker has time to join
    command = _search_command(tmp_path, 4, epochs=60, mechanisms=False)
    search = subprocess.Popen(command, env=env)
    directory = tmp_path / "search"
    deadline = time.time() + 60
    while not (directory / "host.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    log = tmp_path / "hand.log"
    shell = f"{sys.executable} -m uqbench.search.worker {directory} --threads=1 > {log} 2>&1 &"
    subprocess.run(["bash", "-c", shell], env=env, check=True)  # the shell exits at once
    assert search.wait(timeout=240) == 0
    trials = TrialStore(directory / "search.db").trials()
    assert [t.status for t in trials] == ["done"] * 4
    workers = {t.worker for t in trials}
    assert len(workers) == 2  # the hand-started worker ran trials after its shell was gone
    deadline = time.time() + 30
    while "ran " not in log.read_text() and time.time() < deadline:
        time.sleep(0.1)
    assert re.search(r"search worker: ran [1-3] trials", log.read_text())
    assert _no_staging_left(directory)


# Loaded by every Ray worker process of the test cluster: any file access under
# $UQBENCH_FORBIDDEN (the search directory) is logged and refused.
GUARD = """
import os, sys

_FORBIDDEN = os.environ.get("UQBENCH_FORBIDDEN")
_EVENTS = {"open", "os.listdir", "os.scandir", "os.mkdir", "os.rename", "os.replace",
           "os.remove", "os.rmdir", "shutil.rmtree", "shutil.copytree", "sqlite3.connect"}


def _guard(event, args):
    if _FORBIDDEN and event in _EVENTS and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(args[0]))
        if path.startswith(_FORBIDDEN):
            with open(os.environ["UQBENCH_TOUCHED"], "a") as log:
                log.write(f"{event} {path}\\n")
            raise PermissionError(f"a Ray task touched the search directory: {event} {path}")


sys.addaudithook(_guard)
"""


@pytest.mark.slow
def test_on_a_ray_cluster_only_the_driver_opens_the_store(tmp_path):
    """A head node with no CPUs and two worker nodes; every Ray worker process is refused any
    access to the search directory. Trials run on the worker nodes, and the driver alone opens
    the store and writes the run directories the tasks send back."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'uqbench[ray]'")
    from ray.cluster_utils import Cluster

    def touch(path: str) -> str:  # nested, so Ray ships it by value
        try:
            Path(path).read_text()
        except PermissionError as err:
            return str(err)
        return "read"

    directory = tmp_path / "search"
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD)
    touched = tmp_path / "touched.log"
    env = {
        "PYTHONPATH": os.pathsep.join([str(guard), os.environ["PYTHONPATH"]]),
        "UQBENCH_FORBIDDEN": str(directory),
        "UQBENCH_TOUCHED": str(touched),
        "OMP_NUM_THREADS": "1",
    }
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, runtime_env={"env_vars": env}, log_to_driver=False)
        directory.mkdir()
        (directory / "probe").write_text("x")
        probe = ray.get(ray.remote(num_cpus=1)(touch).remote(str(directory / "probe")))
        assert probe.startswith("a Ray task touched the search directory")  # the guard works
        touched.unlink()
        (directory / "probe").unlink()
        # the 5th trial is an ensemble (every 5th by default): the driver builds it
        run_search(
            small_request(
                tmp_path, trials=5, workers=2, executor="ray", ray_address=cluster.address
            )
        )
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert not touched.exists(), touched.read_text()
    store = TrialStore(directory / "search.db")
    trials = store.trials()
    assert [t.status for t in trials] == ["done"] * 5, [t.error for t in trials]
    assert [t.how for t in trials].count("ensemble") == 1
    assert len({t.worker for t in trials}) == 1  # the driver's lease: it claimed every trial
    for trial in trials:
        run = json.loads((directory / "trials" / f"{trial.id:04d}" / "summary.json").read_text())
        assert run["validation"]["val/nll"] == pytest.approx(trial.objective)
        assert trial.checkpoint == f"trials/{trial.id:04d}/checkpoint.safetensors"
        assert (directory / trial.checkpoint).is_file()
    assert _no_staging_left(directory)


def test_resume_with_other_settings_or_without_a_search_is_refused(tmp_path):
    request = small_request(tmp_path, resume=True)
    with pytest.raises(ValueError, match="holds no search"):
        run_search(request)
    assert not (tmp_path / "search").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--dataset=nosuchset"], "nosuchset"),
        (["--dataset=digits", "--algorithm=annealing"], "--algorithm must be one of"),
        (["--dataset=digits", "--trials=0"], "--trials must be at least 1"),
        (["--dataset=digits", "--validation_fraction=0"], "--validation_fraction"),
        (["--dataset=digits", "--ray_address=auto"], "--ray_address needs --executor=ray"),
        (["--dataset=digits", "--ray_storage=/tmp"], "--ray_storage needs --executor=ray"),
        (
            ["--dataset=digits", "--executor=ray", "--ray_address=127.0.0.1:9"],
            "--ray_address=127.0.0.1:9 does not answer",
        ),
        (
            [
                "--dataset=digits",
                "--executor=ray",
                f"--gpus_per_trial={torch.cuda.device_count() + 1}",
            ],
            "GPUs (use --ray_address to join a cluster)",
        ),
    ],
)
def test_bad_requests_fail_before_anything_is_written(tmp_path, capsys, flags, message):
    out = tmp_path / "search"
    assert main(["search", *flags, f"--output_dir={out}"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_the_ray_executor_without_ray_is_refused_before_anything_is_written(
    tmp_path, capsys, monkeypatch
):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    out = tmp_path / "search"
    assert main(["search", "--dataset=digits", "--executor=ray", f"--output_dir={out}"]) == 2
    assert "--executor=ray needs Ray, which is not installed" in capsys.readouterr().err
    assert not out.exists()


def test_more_local_workers_than_cores_are_warned_about():
    assert driver.oversubscribed(2, 1.0, cores=2) is None
    warning = driver.oversubscribed(3, 1.0, cores=2)
    assert warning.startswith("--workers=3 with --cpus_per_trial=1 asks for 3 cores")
    assert "gives 2" in warning and "slower" in warning
    assert driver.oversubscribed(2, 2.0, cores=3) is not None


def test_a_bad_spec_names_the_field_and_writes_nothing(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text("[training]\nepochs = 0\n")
    out = tmp_path / "search"
    assert main(["search", "--dataset=digits", f"--spec={spec}", f"--output_dir={out}"]) == 2
    assert "epochs" in capsys.readouterr().err
    assert not out.exists()


def test_show_and_export_need_a_search_directory(tmp_path, capsys):
    assert main(["search", "show", str(tmp_path)]) == 2
    assert "holds no search" in capsys.readouterr().err
    assert main(["search", "export", str(tmp_path)]) == 2


def test_search_decisions_never_depend_on_test_labels(tmp_path, monkeypatch):
    """Scrambling the test labels changes the recorded test metrics, not one decision."""
    from uqbench.search import driver

    def run(output: str, scramble: bool) -> list:
        real_load = runner_load

        def load(settings):
            dataset = real_load(settings)
            if scramble:
                labels = dataset.y_test[torch.randperm(len(dataset.y_test))]
                dataset = dataclasses.replace(dataset, y_test=labels)
            return dataset

        monkeypatch.setattr(driver, "load_data", load)
        run_search(small_request(tmp_path, output_dir=str(tmp_path / output), trials=4))
        return TrialStore(tmp_path / output / "search.db").trials()

    from uqbench.search.runner import load_data as runner_load

    clean, scrambled = run("clean", False), run("scrambled", True)
    assert [t.architecture for t in clean] == [t.architecture for t in scrambled]
    assert [t.hparams for t in clean] == [t.hparams for t in scrambled]
    assert [t.objective for t in clean] == pytest.approx([t.objective for t in scrambled])
    # the test record did change: chance level on scrambled labels
    scrambled_accuracy = [t.test_metrics["test/accuracy"] for t in scrambled]
    assert max(scrambled_accuracy) < 0.3
    assert scrambled_accuracy != [t.test_metrics["test/accuracy"] for t in clean]


def test_progress_has_a_line_per_trial_with_the_best_so_far_and_an_eta(tmp_path, capsys):
    run_search(small_request(tmp_path, trials=2, quiet=False))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("[")]
    assert len(lines) == 2
    assert re.match(
        r"\[1/2\] trial 1 \(random, depth 1\): val/nll \d\.\d{4} in [\d.]+s \| best \d\.\d{4} "
        r"\(#1\) \| [\d.]+s elapsed, ETA [\d.]+s",
        lines[0],
    )
    assert lines[1].startswith("[2/2] trial 2 (") and "from 1, depth" in lines[1]
    assert "search: adaptive on digits" in err


def test_the_spaces_head_is_the_trials_head(tmp_path):
    spec = write_spec(tmp_path, blocks=["conv3x3_16", "fc_64"])
    spec.write_text('head = "mlp"\n' + spec.read_text())
    run_search(small_request(tmp_path, spec=str(spec), trials=1))
    model, metadata = outputs.load_model(tmp_path / "search" / "trials" / "0001")
    assert metadata["kwargs"]["head"] == "mlp" and len(model.head) == 3


def _cli_search(tmp_path: Path, spec: Path, trials: int, *extra: str) -> list[str]:
    out = tmp_path / "search"
    flags = [f"--trials={trials}", f"--spec={spec}", f"--output_dir={out}", "--quiet"]
    return ["search", "--dataset=digits", *flags, *extra]


def _last_line(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def _status(tmp_path: Path) -> str:
    return json.loads((tmp_path / "search" / "summary.json").read_text())["status"]


def test_a_search_whose_every_trial_fails_exits_1_with_the_first_error(tmp_path, capsys):
    spec = write_spec(tmp_path, epochs=1, blocks=["tests.search.user_blocks:exploding"])
    assert main(_cli_search(tmp_path, spec, 2)) == 1
    assert _last_line(capsys).startswith(
        "search failed: all 2 trials failed; first error (trial 1): NonFiniteLossError: "
    )
    assert _status(tmp_path) == "failed"


def _claim_and_wait(path, ready):
    """A worker that claims trial 1 and hangs until it is SIGKILLed."""
    suggestion = {"architecture": ["conv3x3_16"], "hparams": {}, "how": "random"}
    assert TrialStore(path).claim(2, lambda *_: suggestion).id == 1
    ready.set()
    time.sleep(60)


def test_a_trial_a_dead_worker_held_is_handed_back_during_the_search_and_finished(
    tmp_path, capsys, monkeypatch
):
    """A worker SIGKILLed while it holds trial 1: the search sees it at its next poll (the
    worker's lock is free), runs trial 1 again with its suggestion and finishes its budget."""
    real = executors.run_in_process

    def a_worker_dies_holding_trial_1(context, store, poll):
        forked = multiprocessing.get_context("fork")
        ready = forked.Event()
        worker = forked.Process(target=_claim_and_wait, args=(store.path, ready))
        worker.start()
        assert ready.wait(30)
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(10)
        real(context, store, poll)

    monkeypatch.setattr(executors, "run_in_process", a_worker_dies_holding_trial_1)
    spec = write_spec(tmp_path, epochs=1, blocks=["conv3x3_16", "max_pool", "fc_64"])
    assert main(_cli_search(tmp_path, spec, 2)) == 0
    assert re.fullmatch(
        r"search finished: 2 of 2 trials \(2 done, 0 failed, 0 infeasible\); best trial [12] "
        r"val/nll \d\.\d{4}",
        _last_line(capsys),
    )
    assert _status(tmp_path) == "complete"
    trials = TrialStore(tmp_path / "search" / "search.db").trials()
    assert trials[0].architecture == ("conv3x3_16",) and trials[0].attempts == 2
    assert not (tmp_path / "search" / "staging").exists() or not list(
        (tmp_path / "search" / "staging").iterdir()
    )


def test_when_every_worker_crashes_the_summary_says_incomplete(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(
        executors, "worker_command", lambda *_: [sys.executable, "-c", "raise SystemExit(3)"]
    )
    spec = write_spec(tmp_path, epochs=1, blocks=["conv3x3_16"])
    assert main(_cli_search(tmp_path, spec, 2, "--workers=2")) == 1
    last = _last_line(capsys)
    assert last.startswith("uqbench: search failed: every search worker failed (exit codes 3, 3)")
    assert last.endswith("run the same command with --resume")
    assert _status(tmp_path) == "incomplete"
