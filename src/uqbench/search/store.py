"""The trial store: one SQLite file per search that loses nothing and counts nothing twice.

Every change is one transaction in WAL mode, so a search killed at any moment (SIGKILL
included) leaves a consistent file. SQLite's WAL works for processes of **one machine** only, so
only processes of the machine recorded in ``host.json`` open the store (hand-started workers
elsewhere are refused; on Ray the driver alone opens it).

:meth:`TrialStore.claim` computes a suggestion from every trial (any status) *outside* the write
transaction, then records it in a short ``BEGIN IMMEDIATE`` transaction only if the history is
unchanged (else it tries again), so two workers never get the same trial or the same suggestion,
a slow algorithm never blocks another worker's :meth:`~TrialStore.finish`, and the total never
exceeds the budget. Each worker holds a **lease**: a row renewed every third of
:data:`LEASE_SECONDS` by a background thread, plus an ``flock`` on ``workers/<id>.lock`` that the
kernel drops the moment the process dies. Whoever polls (:meth:`~TrialStore.release_dead`, also
run by every claim) hands a dead worker's ``running`` trial back as ``pending`` with the
suggestion it had. A trial becomes ``done`` only when its staged run directory is moved into
``trials/<id>`` inside the transaction that checks the trial is still the worker's, so a late
run of a handed-back trial can neither overwrite the other run's files nor count twice.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import secrets
import shutil
import socket
import sqlite3
import tempfile
import threading
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
LEASE_SECONDS = 30.0  # a worker whose lease is not renewed for this long counts as dead
HOST_FILE = "host.json"  # the machine whose processes may open the store
TRIALS_DIR = "trials"
STAGING_DIR = "staging"  # staging/<worker>/trials/<id>: run directories before they are installed
STRICT_RETRIES = 5  # claims retried on any change of the history before a finish may be missed

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
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    machine TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started REAL NOT NULL,
    expires REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
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
_HELD: dict[tuple[str, str], tuple[int, _Heartbeat]] = {}


def worker_id() -> str:
    """``host:pid:token`` of this process (the token guards against a reused pid)."""
    pid = os.getpid()
    if pid not in _TOKEN:
        _TOKEN[pid] = secrets.token_hex(3)
    return f"{socket.gethostname()}:{pid}:{_TOKEN[pid]}"


def machine_id() -> str:
    """The kernel's boot id on Linux (the same in every container of one host, unlike the host
    name); elsewhere the host name."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return socket.gethostname()


def _safe(worker: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in worker)


def _lock_path(lock_dir: Path, worker: str) -> Path:
    return lock_dir / (_safe(worker) + ".lock")


def _lock_released(lock_dir: Path, worker: str) -> bool:
    """Whether ``worker``'s lock file exists and nobody holds it (its process died). A missing
    file says nothing (the lease decides)."""
    path = _lock_path(lock_dir, worker)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        return True
    finally:
        os.close(fd)


def check_machine(directory: str | Path) -> None:
    """Refuse (:class:`StoreError`) a process of another machine than the one recorded in
    ``<directory>/host.json``; reads no SQLite, so it is safe to call from anywhere."""
    try:
        recorded = json.loads((Path(directory) / HOST_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return
    if recorded.get("machine") != machine_id():
        raise StoreError(
            f"the search in {directory} runs on host {recorded.get('host')!r}, and this is "
            f"another machine ({socket.gethostname()!r}): its SQLite store must not be opened "
            "from two machines (write-ahead logging works on one host only, not across a "
            "network file system). Start the worker on that host, or run the search with "
            "--executor=ray --ray_address=... so that trials run on other machines while the "
            "driver alone opens the store"
        )


class _Heartbeat(threading.Thread):
    """Renews one worker's lease every third of the store's lease length until stopped."""

    def __init__(self, store: TrialStore, worker: str) -> None:
        super().__init__(daemon=True, name=f"uqbench-lease-{worker}")
        self.store, self.worker = store, worker
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.store.lease_seconds / 3):
            try:
                self.store.renew(self.worker)
            except sqlite3.Error:  # busy for a long while: the next beat tries again
                continue


@dataclass(frozen=True)
class Lease:
    """A worker's lease as stored: ``expires`` is a time on the store's machine."""

    worker: str
    machine: str
    host: str
    pid: int
    expires: float
    revoked: bool


def _retry_protocol(step: Callable[[], object], attempts: int = 8) -> None:
    """Run ``step``, retrying SQLite's transient ``locking protocol`` error (SQLITE_PROTOCOL:
    the WAL index changed under a reader, e.g. while another worker was paused mid-update),
    which the busy timeout does not cover."""
    for attempt in range(attempts):
        try:
            step()
            return
        except sqlite3.OperationalError as err:
            if "locking protocol" not in str(err) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * 2**attempt)


class TrialStore:
    """The SQLite store of one search directory (``<dir>/search.db``); ``lease_seconds`` is how
    long the leases this process takes last without renewal."""

    def __init__(
        self, path: str | Path, timeout: float = 60.0, lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self.path = Path(path)
        self.directory = self.path.parent
        self.timeout = timeout
        self.lease_seconds = float(lease_seconds)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.lock_dir = self.directory / "workers"
        try:
            with self._connect() as db:
                db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path} is not a readable trial store ({err})") from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            _retry_protocol(lambda: db.execute("PRAGMA journal_mode=WAL"))
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locked) transaction, committed on success, rolled back on error."""
        with self._connect() as db:
            _retry_protocol(lambda: db.execute("BEGIN IMMEDIATE"))
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # the machine that owns the store ------------------------------------------------------

    def record_machine(self) -> None:
        """Make this machine the one whose processes may open the store (``host.json``)."""
        text = json.dumps({"machine": machine_id(), "host": socket.gethostname()}) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{HOST_FILE}.", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, self.directory / HOST_FILE)

    def check_machine(self) -> None:
        """Refuse a process of another machine than the one in ``host.json``."""
        check_machine(self.directory)

    # leases -------------------------------------------------------------------------------

    def register(self, worker: str | None = None) -> str:
        """Take (or renew) ``worker``'s lease; for this process's own id also its lock file and
        a heartbeat thread that renews the lease until :meth:`retire`. Returns the id."""
        worker = worker or worker_id()
        self.check_machine()
        key = (str(self.path), worker)
        if worker == worker_id() and key not in _HELD:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(_lock_path(self.lock_dir, worker), os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            beat = _Heartbeat(self, worker)
            _HELD[key] = (fd, beat)
            beat.start()
        pid = os.getpid() if worker == worker_id() else 0
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO workers (id, machine, host, pid, started, expires, revoked) "
                "VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT (id) DO UPDATE SET "
                "expires = excluded.expires, revoked = 0",
                (worker, machine_id(), socket.gethostname(), pid, now, now + self.lease_seconds),
            )
        return worker

    def renew(self, worker: str | None = None) -> bool:
        """Extend ``worker``'s lease; False if it was revoked (its trials were handed back)."""
        worker = worker or worker_id()
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE workers SET expires = ? WHERE id = ? AND revoked = 0",
                (time.time() + self.lease_seconds, worker),
            )
            return cursor.rowcount == 1

    def retire(self, worker: str | None = None) -> list[int]:
        """End ``worker``'s lease: hand back any trial it still holds (returns their ids), drop
        its heartbeat, lock file and staging folder."""
        worker = worker or worker_id()
        held = _HELD.pop((str(self.path), worker), None)
        if held is not None:
            held[1].stopped.set()
        with self.transaction() as db:
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM trials WHERE status = 'running' AND worker = ?", (worker,)
                )
            ]
            db.execute(
                "UPDATE trials SET status = 'pending', worker = NULL "
                "WHERE status = 'running' AND worker = ?",
                (worker,),
            )
            db.execute("DELETE FROM workers WHERE id = ?", (worker,))
        if held is not None:
            _lock_path(self.lock_dir, worker).unlink(missing_ok=True)
            os.close(held[0])
        shutil.rmtree(self.staging_dir(worker), ignore_errors=True)
        return ids

    def leases(self) -> dict[str, Lease]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, machine, host, pid, expires, revoked FROM workers"
            ).fetchall()
        return {r[0]: Lease(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows}

    def _alive(self, worker: str | None, lease: Lease | None, now: float) -> bool:
        """A worker is alive while its lease is unexpired and not revoked and, on this machine,
        while its lock file is held (a SIGKILLed process is seen at once)."""
        if not worker:
            return False
        if worker == worker_id() and (str(self.path), worker) in _HELD:
            return True
        if lease is None or lease.revoked:
            return False
        if lease.machine == machine_id() and _lock_released(self.lock_dir, worker):
            return False
        return lease.expires > now

    def worker_alive(self, worker: str | None) -> bool:
        """Whether ``worker`` still holds a live lease."""
        return self._alive(worker, self.leases().get(worker or ""), time.time())

    def staging_dir(self, worker: str | None = None) -> Path:
        """Where ``worker`` writes run directories before :meth:`finish` installs them."""
        return self.directory / STAGING_DIR / _safe(worker or worker_id())

    def release_dead(self) -> list[int]:
        """Hand ``running`` trials whose worker is dead (lease expired or revoked, or its lock
        file free) back as ``pending``, revoke those leases and delete the dead workers'
        staging folders; returns the released ids. Cheap when every worker is alive."""
        now = time.time()
        with self._connect() as db:
            running = db.execute(
                "SELECT id, worker FROM trials WHERE status = 'running'"
            ).fetchall()
        leases = self.leases()
        if all(self._alive(w, leases.get(w or ""), now) for _, w in running):
            return []
        with self.transaction() as db:
            running = db.execute(
                "SELECT id, worker FROM trials WHERE status = 'running'"
            ).fetchall()
            rows = db.execute("SELECT id, machine, host, pid, expires, revoked FROM workers")
            leases = {r[0]: Lease(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows}
            dead = {w for _, w in running if not self._alive(w, leases.get(w or ""), now)}
            released = [i for i, w in running if w in dead]
            for trial_id in released:
                db.execute(
                    "UPDATE trials SET status = 'pending', worker = NULL WHERE id = ?", (trial_id,)
                )
            for worker in dead:
                db.execute("UPDATE workers SET revoked = 1 WHERE id = ?", (worker,))
        for worker in dead:
            if worker:
                shutil.rmtree(self.staging_dir(worker), ignore_errors=True)
                _lock_path(self.lock_dir, worker).unlink(missing_ok=True)
        return released

    def remove_dead_staging(self) -> list[Path]:
        """Delete the lease rows, staging folders and lock files of workers that hold no live
        lease (run on resume); returns the staging folders removed."""
        now, leases = time.time(), self.leases()
        alive = {w for w, lease in leases.items() if self._alive(w, lease, now)}
        with self.transaction() as db:
            for worker in set(leases) - alive:
                db.execute("DELETE FROM workers WHERE id = ?", (worker,))
        live = {_safe(w) for w in alive}
        for path in self.lock_dir.glob("*.lock"):
            if path.stem not in live:
                path.unlink(missing_ok=True)
        removed = []
        for path in sorted((self.directory / STAGING_DIR).glob("*")):
            if path.name not in live:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

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
        """The next trial for ``worker``: a pending (handed-back) one first, else a new one
        numbered ``count + 1`` whose suggestion is ``suggest(every trial, number)``; ``None``
        when the budget of ``budget`` trials is used up. Dead workers' trials are released
        first. ``suggest`` runs outside any transaction; its suggestion is recorded only if no
        trial was added meanwhile (and, for the first tries, none changed), else it is asked
        again with the new history."""
        worker = self.register(worker)
        self.release_dead()
        for attempt in itertools.count():
            history = self.trials()
            suggestion = None
            if not any(t.status == "pending" for t in history) and len(history) < budget:
                suggestion = suggest(history, len(history) + 1)
            with self.transaction() as db:
                now = time.time()
                rows = db.execute("SELECT id, status, objective FROM trials ORDER BY id").fetchall()
                pending = next((r[0] for r in rows if r[1] == "pending"), None)
                if pending is not None:
                    db.execute(
                        "UPDATE trials SET status = 'running', worker = ?, claimed = ?, "
                        "attempts = attempts + 1 WHERE id = ?",
                        (worker, now, pending),
                    )
                    return self._row(db, pending)
                if len(rows) >= budget:
                    return None
                seen = [(t.id, t.status, t.objective) for t in history]
                if suggestion is None or len(rows) != len(history):
                    continue
                if rows != seen and attempt < STRICT_RETRIES:
                    continue
                number = len(rows) + 1
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
        raise AssertionError("unreachable")

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
        run_dir: str | Path | None = None,
    ) -> bool:
        """Record the end of a trial (``done``, ``failed`` or ``infeasible``) and move its staged
        ``run_dir`` to ``trials/<run_dir's name>``, both in one transaction. Returns False (and
        changes nothing but deleting ``run_dir``) if the trial is no longer this worker's, e.g.
        it was handed back as dead and re-claimed: its result is recorded once, by the other."""
        if status not in FINISHED:
            raise ValueError(f"status must be one of {', '.join(FINISHED)}, got {status!r}")
        worker = worker or worker_id()
        staged = Path(run_dir) if run_dir is not None else None
        with self.transaction() as db:
            current = db.execute(
                "SELECT status, worker FROM trials WHERE id = ?", (trial_id,)
            ).fetchone()
            if current is None:
                raise StoreError(f"trial {trial_id} does not exist in {self.path}")
            mine = current[0] == "running" and current[1] == worker
            if mine and staged is not None:
                target = self.directory / TRIALS_DIR / staged.name
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():  # a run killed between this move and the commit
                    shutil.rmtree(target)
                os.replace(staged, target)
            if mine:
                db.execute(
                    "UPDATE trials SET status = ?, objective = ?, val_metrics = ?, "
                    "test_metrics = ?, params = ?, seconds = ?, finished = ?, checkpoint = ?, "
                    "error = ? WHERE id = ?",
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
        if not mine and staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
        return mine

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
