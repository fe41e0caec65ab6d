"""The trial store: claims are unique across processes, dead workers' trials come back, a
late result is never counted twice, resumed settings must match."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from uqbench.search import worker as search_worker
from uqbench.search.algorithms import make_algorithm
from uqbench.search.runner import as_trial
from uqbench.search.space import space_from_dict
from uqbench.search.store import StoreError, TrialStore, check_machine, worker_id


def suggest_fixed(history, number):
    return {"architecture": ["conv3x3_32"] * (1 + number % 3), "hparams": {"lr": 0.1 * number}}


def _claim_all(path, budget, results):
    """Worker process: claim and finish trials until the budget is used up."""
    store = TrialStore(path)
    mine = []
    while (trial := store.claim(budget, suggest_fixed)) is not None:
        time.sleep(0.002)
        assert store.finish(trial.id, status="done", objective=float(trial.id))
        mine.append(trial.id)
    results.put(mine)


def test_claims_are_numbered_and_stop_at_the_budget(tmp_path):
    store = TrialStore(tmp_path / "search.db")
    claimed = [store.claim(3, suggest_fixed) for _ in range(4)]
    assert [t.id for t in claimed[:3]] == [1, 2, 3]
    assert claimed[3] is None
    assert claimed[1].architecture == ("conv3x3_32",) * 3
    assert claimed[1].hparams == {"lr": 0.2}
    assert claimed[0].status == "running" and claimed[0].worker == worker_id()


def test_suggest_sees_every_trial_of_any_status(tmp_path):
    store = TrialStore(tmp_path / "search.db")
    seen = []

    def suggest(history, number):
        seen.append([(t.id, t.status) for t in history])
        return suggest_fixed(history, number)

    first = store.claim(5, suggest)
    store.claim(5, suggest)
    store.finish(first.id, status="done", objective=1.0)
    store.claim(5, suggest)
    assert seen == [[], [(1, "running")], [(1, "done"), (2, "running")]]


TINY_SPACE = {
    "blocks": ["fc_64", "fc_128", "fc_256", "fc_512"],
    "min_depth": 1,
    "max_depth": 1,
    "population": 4,
    "sample": 2,
    "hyperparameters": {},
    "training": {"epochs": 1},
}


def _algorithm_suggest(name):
    """The real algorithm ``name`` on a space of 4 architectures and no hyperparameters, made a
    little slow so that claims overlap."""
    space = space_from_dict(TINY_SPACE)
    algorithm = make_algorithm(name, space, seed=0, check=lambda arch: True)

    def suggest(history, number):
        time.sleep(0.05)
        made = algorithm.suggest([as_trial(t, space) for t in history], number)
        return {"architecture": list(made.architecture), "hparams": made.hparams}

    return suggest


def _claim_one(path, name, start, results, done):
    start.wait(30)
    trial = TrialStore(path).claim(4, _algorithm_suggest(name))
    results.put((trial.id, trial.architecture))
    done.wait(30)  # alive (holding its trial) until every claim is made


@pytest.mark.parametrize("name", ["adaptive", "random", "evolution"])
def test_four_claims_before_any_finishes_get_four_different_suggestions(tmp_path, name):
    """Four processes claim at once, nothing finishes: the repeat check sees the running trials,
    so the four suggestions differ (4 blocks at depth 1 and no hyperparameters: drawn blindly,
    some would repeat with probability 0.9)."""
    path = tmp_path / "search.db"
    TrialStore(path)
    _algorithm_suggest(name)  # a broken space fails here, not in four children
    context = multiprocessing.get_context("fork")
    start, results, done = context.Event(), context.Queue(), context.Event()
    workers = [
        context.Process(target=_claim_one, args=(path, name, start, results, done))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    start.set()
    claimed = dict(results.get(timeout=60) for _ in workers)
    done.set()
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(claimed) == [1, 2, 3, 4]
    assert len(set(claimed.values())) == 4, claimed
    rows = TrialStore(path).trials()
    assert {t.architecture for t in rows} == {("fc_64",), ("fc_128",), ("fc_256",), ("fc_512",)}


def test_suggest_runs_outside_the_write_transaction_and_sees_what_finished_meanwhile(tmp_path):
    store = TrialStore(tmp_path / "search.db")
    first = store.claim(5, suggest_fixed, worker="w1")
    other = TrialStore(tmp_path / "search.db", timeout=0.5)
    calls = []

    def slow_suggest(history, number):
        calls.append((number, [(t.id, t.status) for t in history]))
        if len(calls) == 1:  # another worker finishes while this one is suggesting
            assert other.finish(first.id, status="done", objective=1.0, worker="w1")
        return suggest_fixed(history, number)

    trial = store.claim(5, slow_suggest, worker="w2")
    assert trial.id == 2
    assert calls == [(2, [(1, "running")]), (2, [(1, "done")])]  # asked again, with the news


def test_a_claim_made_meanwhile_makes_the_suggestion_retry_with_the_next_number(tmp_path):
    store = TrialStore(tmp_path / "search.db")
    store.claim(5, suggest_fixed, worker="w1")
    numbers = []

    def suggest(history, number):
        numbers.append(number)
        if len(numbers) == 1:
            assert store.claim(5, suggest_fixed, worker="w3").id == 2
        return suggest_fixed(history, number)

    trial = store.claim(5, suggest, worker="w2")
    assert (trial.id, numbers) == (3, [2, 3])
    assert trial.hparams == {"lr": pytest.approx(0.3)}


def test_several_processes_never_share_or_lose_a_trial(tmp_path):
    path = tmp_path / "search.db"
    TrialStore(path)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_claim_all, args=(path, 40, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    ids = [i for _ in workers for i in results.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(ids) == list(range(1, 41))
    store = TrialStore(path)
    assert store.counts()["done"] == 40
    assert all(t.objective == t.id for t in store.trials())


def _claim_and_hang(path, ready):
    store = TrialStore(path)
    store.claim(5, suggest_fixed)
    ready.set()
    time.sleep(60)


def test_a_killed_workers_trial_is_released_with_its_suggestion(tmp_path):
    path = tmp_path / "search.db"
    TrialStore(path)
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    process = context.Process(target=_claim_and_hang, args=(path, ready))
    process.start()
    assert ready.wait(30)
    store = TrialStore(path)
    assert store.release_dead() == []  # alive: its lease is held
    os.kill(process.pid, signal.SIGKILL)
    process.join(10)
    assert store.release_dead() == [1]
    assert not list((tmp_path / "workers").glob("*.lock"))  # the dead worker's lock file went
    store.remove_dead_staging()  # what a resume runs: the dead worker's lease row goes too
    assert store.leases() == {}
    again = store.claim(5, suggest_fixed)
    assert again.id == 1 and again.attempts == 2
    assert again.architecture == ("conv3x3_32",) * 2  # the stored suggestion, not a new one
    assert store.claim(5, suggest_fixed).id == 2


def _claim_and_report(path, lease_seconds, ready, results):
    """Claim a trial, then (after the parent's checks) try to finish it with a run directory."""
    store = TrialStore(path, lease_seconds=lease_seconds)
    trial = store.claim(5, suggest_fixed)
    staged = store.staging_dir() / "trials" / f"{trial.id:04d}"
    staged.mkdir(parents=True)
    (staged / "summary.json").write_text('{"run": "late"}')
    ready.set()
    time.sleep(2.5)
    results.put(store.finish(trial.id, status="done", objective=5.0, run_dir=staged))


def _wait_until_stopped(pid: int, timeout: float = 10.0) -> None:
    """Return once every thread of ``pid`` is in the stopped state (``T`` in /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [
            (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
            for task in Path(f"/proc/{pid}/task").iterdir()
        ]
        if all(state in "Tt" for state in states):
            return
        time.sleep(0.005)
    raise AssertionError(f"process {pid} did not stop within {timeout} s")


def _stop_outside_a_transaction(pid: int, path: Path) -> None:
    """SIGSTOP ``pid`` at a moment it holds no SQLite write lock (its heartbeat writes several
    times a second; a process frozen inside a transaction blocks every writer until it runs
    again, which is SQLite's locking, not the leases under test)."""
    for _ in range(50):
        os.kill(pid, signal.SIGSTOP)
        _wait_until_stopped(pid)  # the signal is asynchronous: check the lock only once frozen
        db = sqlite3.connect(path, timeout=0.2, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.05)
        finally:
            db.close()
    raise AssertionError("the worker held the write lock at every try")


def test_a_live_worker_renews_its_lease_and_a_stopped_one_loses_its_trial(tmp_path):
    """The heartbeat keeps a busy worker's lease; a worker that stops renewing (SIGSTOP: its
    lock is still held) loses its trial once the lease expires, and its late result and run
    directory are refused when it wakes up."""
    path = tmp_path / "search.db"
    store = TrialStore(path)
    context = multiprocessing.get_context("fork")
    ready, results = context.Event(), context.Queue()
    process = context.Process(target=_claim_and_report, args=(path, 0.6, ready, results))
    process.start()
    try:
        assert ready.wait(30)
        time.sleep(1.0)  # longer than the lease: only renewals keep it
        assert store.release_dead() == []
        _stop_outside_a_transaction(process.pid, path)
        time.sleep(1.2)
        assert store.release_dead() == [1]
        assert not (tmp_path / "staging").exists() or not any((tmp_path / "staging").iterdir())
        mine = store.claim(5, suggest_fixed)
        assert (mine.id, mine.attempts) == (1, 2)
        os.kill(process.pid, signal.SIGCONT)
        assert results.get(timeout=30) is False
    finally:
        os.kill(process.pid, signal.SIGCONT)
        process.join(30)
    assert not (tmp_path / "trials").exists()
    staged = store.staging_dir() / "trials" / "0001"
    staged.mkdir(parents=True)
    (staged / "summary.json").write_text('{"run": "mine"}')
    assert store.finish(1, status="done", objective=1.0, run_dir=staged)
    assert (tmp_path / "trials" / "0001" / "summary.json").read_text() == '{"run": "mine"}'
    assert not staged.exists()
    (row,) = store.trials()
    assert (row.status, row.objective) == ("done", 1.0)


def test_leases_not_host_names_decide_liveness(tmp_path):
    store = TrialStore(tmp_path / "search.db", lease_seconds=0.3)
    trial = store.claim(5, suggest_fixed, worker="otherhost:1:abc")
    assert store.release_dead() == []  # another host name, but a live lease
    time.sleep(0.4)
    assert store.release_dead() == [trial.id]  # its lease ran out
    mine = store.claim(5, suggest_fixed)
    assert mine.id == trial.id
    assert not store.finish(trial.id, status="done", objective=9.0, worker="otherhost:1:abc")
    assert store.finish(trial.id, status="done", objective=1.0)
    assert not store.finish(trial.id, status="done", objective=2.0)
    (row,) = store.trials()
    assert row.status == "done" and row.objective == 1.0


def test_a_worker_on_another_machine_is_refused_with_a_pointer_to_ray(tmp_path, capsys):
    store = TrialStore(tmp_path / "search.db")
    store.record_machine()
    assert store.claim(5, suggest_fixed).id == 1
    (tmp_path / "host.json").write_text('{"machine": "another-boot-id", "host": "node7"}')
    with pytest.raises(StoreError, match="runs on host 'node7'.*--executor=ray"):
        check_machine(tmp_path)
    with pytest.raises(StoreError, match="--executor=ray"):
        store.claim(5, suggest_fixed, worker="newcomer")
    assert len(store.trials()) == 1
    assert search_worker.main([str(tmp_path)]) == 2  # a hand-started worker says so and exits
    assert "another machine" in capsys.readouterr().err


def test_retire_hands_back_what_the_worker_holds_and_cleans_up(tmp_path):
    store = TrialStore(tmp_path / "search.db")
    trial = store.claim(5, suggest_fixed)
    (store.staging_dir() / "trials" / ".0001.partial-x").mkdir(parents=True)
    assert list((tmp_path / "workers").glob("*.lock"))
    assert store.retire() == [trial.id]
    assert store.trials()[0].status == "pending"
    assert not list((tmp_path / "workers").glob("*.lock"))
    assert not store.staging_dir().exists()
    assert store.leases() == {}


def test_finish_records_everything(tmp_path):
    store = TrialStore(tmp_path / "search.db")
    trial = store.claim(5, suggest_fixed)
    store.finish(
        trial.id,
        status="failed",
        val_metrics={"val/nll": 0.5},
        test_metrics={"test/accuracy": 0.9},
        params=123,
        seconds=1.5,
        error="NonFiniteLossError: nan",
    )
    (row,) = store.trials()
    assert (row.status, row.params, row.seconds, row.error) == (
        "failed",
        123,
        1.5,
        "NonFiniteLossError: nan",
    )
    assert row.val_metrics == {"val/nll": 0.5} and row.test_metrics == {"test/accuracy": 0.9}
    with pytest.raises(ValueError, match="status must be one of"):
        store.finish(trial.id, status="exploded")


def test_experiment_settings_must_match_on_resume(tmp_path):
    store = TrialStore(tmp_path / "search.db")
    with pytest.raises(StoreError, match="holds no search yet"):
        store.start_experiment({"seed": 0}, resume=True)
    store.start_experiment({"seed": 0, "trials": 10, "algorithm": "adaptive"}, resume=False)
    with pytest.raises(StoreError, match="already holds a search"):
        store.start_experiment({"seed": 0}, resume=False)
    with pytest.raises(StoreError, match="seed: 0 now 1"):
        store.start_experiment({"seed": 1, "algorithm": "adaptive"}, resume=True)
    settings = store.start_experiment({"seed": 0, "trials": 20}, resume=True)
    assert settings["trials"] == 20 and settings["algorithm"] == "adaptive"


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    path = tmp_path / "search.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a readable trial store"):
        TrialStore(path)


def test_the_store_uses_write_ahead_logging(tmp_path):
    TrialStore(tmp_path / "search.db")
    with sqlite3.connect(tmp_path / "search.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
