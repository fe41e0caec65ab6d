"""The trial store: claims are unique across processes, dead workers' trials come back, a
late result is never counted twice, resumed settings must match."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time

import pytest

from uqbench.search.store import StoreError, TrialStore, worker_id


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


def test_suggest_sees_only_finished_trials(tmp_path):
    store = TrialStore(tmp_path / "search.db")
    seen = []

    def suggest(history, number):
        seen.append([t.id for t in history])
        return suggest_fixed(history, number)

    first = store.claim(5, suggest)
    store.claim(5, suggest)
    store.finish(first.id, status="done", objective=1.0)
    store.claim(5, suggest)
    assert seen == [[], [], [1]]


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
    again = store.claim(5, suggest_fixed)
    assert again.id == 1 and again.attempts == 2
    assert again.architecture == ("conv3x3_32",) * 2  # the stored suggestion, not a new one
    assert store.claim(5, suggest_fixed).id == 2


def test_a_released_trial_cannot_be_finished_by_its_old_worker(tmp_path):
    store = TrialStore(tmp_path / "search.db")
    trial = store.claim(5, suggest_fixed, worker="otherhost:1:abc")
    assert store.release_dead(other_hosts=True) == [trial.id]
    mine = store.claim(5, suggest_fixed)
    assert mine.id == trial.id
    assert not store.finish(trial.id, status="done", objective=9.0, worker="otherhost:1:abc")
    assert store.finish(trial.id, status="done", objective=1.0)
    assert not store.finish(trial.id, status="done", objective=2.0)
    (row,) = store.trials()
    assert row.status == "done" and row.objective == 1.0


def test_other_hosts_count_as_alive_unless_resuming(tmp_path):
    store = TrialStore(tmp_path / "search.db")
    store.claim(5, suggest_fixed, worker="otherhost:1:abc")
    assert store.release_dead() == []
    assert store.release_dead(other_hosts=True) == [1]


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
