"""The trial store: one SQLite file per search that loses nothing and counts nothing twice.

Every change is one transaction in WAL mode, so a search killed at any moment (SIGKILL
included) leaves a consistent file. Workers (threads, processes, Ray tasks on one file system)
share the store: :meth:`TrialStore.claim` takes the next trial number and records its suggestion
in one ``BEGIN IMMEDIATE`` transaction, so two workers never get the same trial and the total
never exceeds the budget. A trial becomes ``done`` only after its run directory is in place;
``running`` trials whose worker died are handed out again, with the suggestion they already
had (:meth:`TrialStore.release_dead`), so a resumed search re-runs them and duplicates none.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
STATUSES = ("pending", "running", "done", "failed", "infeasible")
FINISHED = ("done", "failed", "infeasible")
# Settings a resumed search may change: the budget, where the data lies, the device.
MUTABLE_SETTINGS = ("trials", "data_dir", "device")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiment (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    parent INTEGER,
    architecture TEXT NOT NULL,
    hparams TEXT NOT NULL,
    how TEXT NOT NULL,
    status TEXT NOT NULL,
    objective REAL,
    val_metrics TEXT,
    test_metrics TEXT,
    params INTEGER,
    claimed REAL,
    started REAL,
    finished REAL,
    seconds REAL,
    worker TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    checkpoint TEXT,
    error TEXT
);
"""


class StoreError(ValueError):
    """The store cannot be opened or does not belong to this search."""


@dataclass
class TrialRow:
    """One trial as stored."""

    id: int
    parent: int | None
    architecture: tuple[str, ...]
    hparams: dict[str, Any]
    how: str
    status: str
    objective: float | None = None
    val_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    params: int | None = None
    seconds: float | None = None
    worker: str | None = None
    attempts: int = 0
    checkpoint: str | None = None
    error: str | None = None


_TOKEN: dict[int, str] = {}
_LEASES: dict[tuple[str, str], int] = {}


def worker_id() -> str:
    """``host:pid:token`` of this process (the token guards against a reused pid)."""
    pid = os.getpid()
    if pid not in _TOKEN:
        _TOKEN[pid] = secrets.token_hex(3)
    return f"{socket.gethostname()}:{pid}:{_TOKEN[pid]}"


def _lock_path(lock_dir: Path, worker: str) -> Path:
    return lock_dir / ("".join(c if c.isalnum() or c in "-_." else "_" for c in worker) + ".lock")


def hold_lease(lock_dir: Path, worker: str) -> None:
    """Take an exclusive ``flock`` on ``<lock_dir>/<worker>.lock`` for the rest of this
    process's life: the kernel drops it when the process dies, SIGKILL included, which is how
    other processes tell that the worker is gone."""
    key = (str(lock_dir), worker)
    if key in _LEASES:
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(_lock_path(lock_dir, worker), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _LEASES[key] = fd


def _alive(worker: str | None, lock_dir: Path) -> bool:
    """Whether ``worker`` still holds its lease. Workers on other hosts cannot be checked and
    count as alive unless ``release_dead(other_hosts=True)``."""
    if not worker or worker.count(":") < 2:
        return False
    if worker.split(":", 1)[0] != socket.gethostname():
        return True
    if (str(lock_dir), worker) in _LEASES:
        return True
    path = _lock_path(lock_dir, worker)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    path.unlink(missing_ok=True)
    return False


class TrialStore:
    """The SQLite store of one search directory (``<dir>/search.db``)."""

    def __init__(self, path: str | Path, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock_dir = self.path.parent / "workers"
        try:
            with self._connect() as db:
                db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path} is not a readable trial store ({err})") from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locked) transaction, committed on success, rolled back on error."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # experiment settings ---------------------------------------------------------------

    def experiment(self) -> dict[str, Any]:
        with self._connect() as db:
            rows = db.execute("SELECT key, value FROM experiment").fetchall()
        return {key: json.loads(value) for key, value in rows}

    def start_experiment(self, settings: Mapping[str, Any], resume: bool) -> dict[str, Any]:
        """Record the search's settings; on resume they must match what was recorded, except
        :data:`MUTABLE_SETTINGS` (e.g. a larger budget)."""
        with self.transaction() as db:
            rows = dict(db.execute("SELECT key, value FROM experiment").fetchall())
            stored = {k: json.loads(v) for k, v in rows.items()}
            if stored and not resume:
                raise StoreError(
                    f"{self.path.parent} already holds a search: pass --resume to continue it, or "
                    "choose another --output_dir"
                )
            if not stored and resume:
                raise StoreError(
                    f"--resume: {self.path.parent} holds no search yet; run without --resume"
                )
            changed = sorted(
                k
                for k in stored
                if k not in MUTABLE_SETTINGS and k in settings and stored[k] != settings[k]
            )
            if changed:
                raise StoreError(
                    f"--resume: this search was started with other settings ({', '.join(changed)}: "
                    f"{', '.join(f'{stored[k]!r} now {settings[k]!r}' for k in changed)}); resume "
                    "with the same flags and spec"
                )
            stored.update(settings)
            stored.setdefault("schema", SCHEMA_VERSION)
            for key, value in stored.items():
                db.execute(
                    "INSERT OR REPLACE INTO experiment (key, value) VALUES (?, ?)",
                    (key, json.dumps(value, sort_keys=True)),
                )
        return stored

    # trials ------------------------------------------------------------------------------

    def claim(
        self,
        budget: int,
        suggest: Callable[[list[TrialRow], int], Mapping[str, Any]],
        worker: str | None = None,
    ) -> TrialRow | None:
        """The next trial for ``worker``: a released (pending) one first, else a new one numbered
        ``count + 1`` whose suggestion is ``suggest(finished trials, number)``; ``None`` when
        the budget of ``budget`` trials is used up. All in one write transaction."""
        worker = worker or worker_id()
        if worker == worker_id():
            hold_lease(self.lock_dir, worker)
        with self.transaction() as db:
            row = db.execute(
                "SELECT id FROM trials WHERE status = 'pending' ORDER BY id LIMIT 1"
            ).fetchone()
            now = time.time()
            if row is not None:
                db.execute(
                    "UPDATE trials SET status = 'running', worker = ?, claimed = ?, "
                    "attempts = attempts + 1 WHERE id = ?",
                    (worker, now, row[0]),
                )
                return self._row(db, row[0])
            count = db.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
            if count >= budget:
                return None
            number = count + 1
            history = [self._from_sql(r) for r in db.execute(_SELECT + " ORDER BY id")]
            suggestion = suggest([t for t in history if t.status in FINISHED], number)
            db.execute(
                "INSERT INTO trials (id, parent, architecture, hparams, how, status, claimed, "
                "worker, attempts) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, 1)",
                (
                    number,
                    suggestion.get("parent"),
                    json.dumps(list(suggestion["architecture"])),
                    json.dumps(suggestion["hparams"], sort_keys=True),
                    suggestion.get("how", ""),
                    now,
                    worker,
                ),
            )
            return self._row(db, number)

    def finish(
        self,
        trial_id: int,
        *,
        status: str,
        objective: float | None = None,
        val_metrics: Mapping[str, float] | None = None,
        test_metrics: Mapping[str, float] | None = None,
        params: int | None = None,
        seconds: float | None = None,
        checkpoint: str | None = None,
        error: str | None = None,
        worker: str | None = None,
    ) -> bool:
        """Record the end of a trial (``done``, ``failed`` or ``infeasible``). Returns False
        (and changes nothing) if the trial is no longer this worker's, e.g. it was released
        as dead and re-claimed: its result is then recorded once, by the other worker."""
        if status not in FINISHED:
            raise ValueError(f"status must be one of {', '.join(FINISHED)}, got {status!r}")
        worker = worker or worker_id()
        with self.transaction() as db:
            current = db.execute(
                "SELECT status, worker FROM trials WHERE id = ?", (trial_id,)
            ).fetchone()
            if current is None:
                raise StoreError(f"trial {trial_id} does not exist in {self.path}")
            if current[0] != "running" or current[1] != worker:
                return False
            db.execute(
                "UPDATE trials SET status = ?, objective = ?, val_metrics = ?, test_metrics = ?, "
                "params = ?, seconds = ?, finished = ?, checkpoint = ?, error = ? WHERE id = ?",
                (
                    status,
                    objective,
                    json.dumps(dict(val_metrics or {}), sort_keys=True),
                    json.dumps(dict(test_metrics or {}), sort_keys=True),
                    params,
                    seconds,
                    time.time(),
                    checkpoint,
                    error,
                    trial_id,
                ),
            )
        return True

    def release_dead(self, other_hosts: bool = False) -> list[int]:
        """Hand ``running`` trials whose worker is gone back as ``pending``; returns their ids.
        ``other_hosts=True`` (a resumed search) also releases trials of workers on other hosts,
        which cannot be checked: if one is in fact alive, its late result is refused by
        :meth:`finish`, so nothing is counted twice."""
        with self.transaction() as db:
            rows = db.execute("SELECT id, worker FROM trials WHERE status = 'running'").fetchall()
            here = socket.gethostname()
            released = [
                i
                for i, w in rows
                if not _alive(w, self.lock_dir)
                or (other_hosts and (w or "").split(":", 1)[0] != here)
            ]
            for trial_id in released:
                db.execute(
                    "UPDATE trials SET status = 'pending', worker = NULL WHERE id = ?", (trial_id,)
                )
        return released

    def worker_alive(self, worker: str | None) -> bool:
        """Whether ``worker`` still holds its lease; a worker on another host cannot be checked
        and counts as alive."""
        return _alive(worker, self.lock_dir)

    def release(self, trial_id: int, worker: str | None = None) -> bool:
        """Give a trial this worker holds back as ``pending`` (e.g. on Ctrl-C)."""
        worker = worker or worker_id()
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE trials SET status = 'pending', worker = NULL "
                "WHERE id = ? AND status = 'running' AND worker = ?",
                (trial_id, worker),
            )
            return cursor.rowcount == 1

    def trials(self) -> list[TrialRow]:
        with self._connect() as db:
            return [self._from_sql(r) for r in db.execute(_SELECT + " ORDER BY id")]

    def counts(self) -> dict[str, int]:
        with self._connect() as db:
            rows = db.execute("SELECT status, COUNT(*) FROM trials GROUP BY status").fetchall()
        return {status: 0 for status in STATUSES} | dict(rows)

    def _row(self, db: sqlite3.Connection, trial_id: int) -> TrialRow:
        return self._from_sql(db.execute(_SELECT + " WHERE id = ?", (trial_id,)).fetchone())

    @staticmethod
    def _from_sql(row: tuple) -> TrialRow:
        (tid, parent, arch, hparams, how, status, objective, val, test, params, seconds) = row[:11]
        worker, attempts, checkpoint, error = row[11:]
        return TrialRow(
            id=tid,
            parent=parent,
            architecture=tuple(json.loads(arch)),
            hparams=json.loads(hparams),
            how=how,
            status=status,
            objective=objective,
            val_metrics=json.loads(val) if val else {},
            test_metrics=json.loads(test) if test else {},
            params=params,
            seconds=seconds,
            worker=worker,
            attempts=attempts,
            checkpoint=checkpoint,
            error=error,
        )


_SELECT = (
    "SELECT id, parent, architecture, hparams, how, status, objective, val_metrics, "
    "test_metrics, params, seconds, worker, attempts, checkpoint, error FROM trials"
)
