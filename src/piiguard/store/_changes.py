"""Change counters: a cheap number that changes whenever the store's shared state may have.

Caches of derived state (the consent ledger's) compare it on every read: equal means nothing
they cached can be stale. Every write that cached state derives from goes through
``Store.changing()``. On SQLite that transaction bumps a counter row; readers look at it only
when ``PRAGMA data_version`` says some connection committed something (the audit log commits
on every reveal, and must not empty the consent caches). On PostgreSQL a listener thread holds a
``LISTEN`` connection, and writers ``NOTIFY`` in the transaction that changes the state, so
the counter moves within milliseconds of the commit in every process. While the listener is
not connected (starting, reconnecting, after a fork) every read returns a new number, so
nothing is served from a cache that no one keeps correct.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import threading
from collections import Counter
from typing import Any

from sqlalchemy import Connection, Engine, text

__all__ = [
    "CHANNEL",
    "COUNTER_ROW",
    "PostgresChanges",
    "SqliteChanges",
    "local_changes",
    "notify",
]

#: The PostgreSQL channel writers notify; the payload names the schema.
CHANNEL = "piiguard_changes"
#: The ``piiguard_meta`` row a SQLite ``changing()`` transaction bumps.
COUNTER_ROW = "changes"
_WAIT_SECONDS = 0.25  # how often the listener looks up from its socket to see if it must stop
_RETRY_SECONDS = 0.5

# Commits this process made, per (database, schema): they count at once, without waiting for
# the notification to come back, so a Guard sees its own and its neighbours' writes.
_LOCAL: Counter[str] = Counter()
_LOCAL_LOCK = threading.Lock()


def local_changes(key: str) -> None:
    """Record that this process committed a change under ``key``."""
    with _LOCAL_LOCK:
        _LOCAL[key] += 1


class SqliteChanges:
    """The counter row of ``piiguard_meta``, read only when ``PRAGMA data_version`` moved,
    on a connection kept for it (one per process: after a fork the child opens its own, as
    SQLite connections must not cross a fork).

    Cheaper signals exist (the WAL index's header moves on every commit), but reading the
    ``-shm`` file means opening it, and closing any descriptor on it drops the POSIX locks
    SQLite holds there for every connection of the process: SQLite's documented way to
    corrupt a database. The pragma costs about 5 us and is always right; the row read after
    it tells a consent change from any other commit (an audit event, a retention claim).
    """

    def __init__(self, database: str) -> None:
        self._database = database
        self._lock = threading.Lock()
        self._forks = -1  # the _FORKS it opened its connection at
        self._watch: sqlite3.Connection | None = None
        self._version = -1  # the data_version the counter was last read at
        self._generation = 0
        self._unknown = itertools.count(-1, -1)  # no counter row: never the same twice

    def __call__(self) -> int:
        with self._lock:
            if self._forks != _FORKS[0]:  # first use, or a forked child: a connection of its own
                self._watch = sqlite3.connect(
                    self._database, check_same_thread=False, isolation_level=None
                )
                self._cursor = self._watch.cursor()
                self._forks = _FORKS[0]
                self._version = -1
            for (version,) in self._cursor.execute("PRAGMA data_version"):
                if version == self._version:
                    return self._generation
                # read after the pragma: a commit landing in between moves the pragma again
                row = self._cursor.execute(
                    "SELECT value FROM piiguard_meta WHERE name = ?", (COUNTER_ROW,)
                ).fetchone()
                if row is None:  # a store without the row: nothing may be cached
                    self._version = -1
                    return next(self._unknown)
                self._version, self._generation = version, int(row[0])
                return self._generation
        return 0  # pragma: no cover - the pragma always returns a row

    def close(self) -> None:
        with self._lock:
            if self._watch is not None and self._forks == _FORKS[0]:
                self._watch.close()  # a parent's connection in a child is left alone
            self._watch = None
            self._forks = -1


# How many forks this process descends from: compared on every read instead of os.getpid(),
# a system call.
_FORKS = [0]


def _count_fork() -> None:
    _FORKS[0] += 1


os.register_at_fork(after_in_child=_count_fork)


class PostgresChanges:
    """A listener thread on ``CHANNEL``; the counter is its generation plus local commits."""

    def __init__(self, engine: Engine, key: str, schema: str) -> None:
        self._engine = engine
        self._key = key
        self._schema = schema
        self._generation = 0
        self._connected = False
        self._unknown = itertools.count(-1, -1)  # while disconnected: never the same twice
        self._stop = threading.Event()
        self._pid = -1
        self._lock = threading.Lock()

    def __call__(self) -> int:
        if self._pid != os.getpid():  # first use, or a forked child: its thread did not follow
            self._start()
        if not self._connected:
            return next(self._unknown)
        return self._generation + _LOCAL[self._key]

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._connected = False
            self._stop = threading.Event()
            self._pid = os.getpid()
            threading.Thread(
                target=self._listen, args=(self._stop,), name="piiguard-changes", daemon=True
            ).start()

    def _listen(self, stop: threading.Event) -> None:
        dialect = self._engine.dialect
        cargs, cparams = dialect.create_connect_args(self._engine.url)
        while not stop.is_set():
            connection: Any = None
            try:
                connection = dialect.connect(*cargs, **cparams)
                connection.autocommit = True
                connection.execute(f"LISTEN {CHANNEL}")
                self._generation += 1  # anything cached before this moment is suspect
                self._connected = True
                while not stop.is_set():
                    for notice in connection.notifies(timeout=_WAIT_SECONDS):
                        if notice.payload == self._schema:
                            self._generation += 1
            except Exception:  # any failure: serve nothing cached, reconnect
                self._connected = False
                stop.wait(_RETRY_SECONDS)
            finally:
                self._connected = False
                if connection is not None:
                    with contextlib.suppress(Exception):  # already broken
                        connection.close()

    def close(self) -> None:
        self._stop.set()
        self._connected = False


def notify(connection: Connection, schema: str) -> None:
    """Inside a PostgreSQL transaction: tell every listener, when it commits."""
    connection.execute(
        text("SELECT pg_notify(:channel, :schema)"), {"channel": CHANNEL, "schema": schema}
    )
