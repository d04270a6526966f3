"""Change counters: a cheap number that changes whenever the store's shared state may have.

Caches of derived state (the consent ledger's) compare it on every read: equal means nothing
they cached can be stale. SQLite answers from the header of its WAL index, which every commit
rewrites (checked against ``PRAGMA data_version``, which changes when any other connection
commits). PostgreSQL has no such pragma: a listener thread holds a
``LISTEN`` connection, and writers ``NOTIFY`` in the transaction that changes the state, so
the counter moves within milliseconds of the commit in every process. While the listener is
not connected (starting, reconnecting, after a fork) every read returns a new number, so
nothing is served from a cache that no one keeps correct.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import sqlite3
import threading
import time
from collections import Counter
from typing import Any

from sqlalchemy import Connection, Engine, text

__all__ = ["CHANNEL", "PostgresChanges", "SqliteChanges", "local_changes", "notify"]

#: The PostgreSQL channel writers notify; the payload names the schema.
CHANNEL = "piiguard_changes"
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
    """Whether any connection committed, read from the WAL index's header (about 0.3 us),
    checked against ``PRAGMA data_version`` (about 5 us) at least once a second.

    Every commit in WAL mode rewrites the header of the shared WAL index (the ``-shm`` file,
    https://www.sqlite.org/walformat.html: its change counter, last frame and salts). The
    connection kept here holds the database open, so that file stays the one every
    connection maps. Should the header ever stand still while the pragma moves (the file
    replaced by hand, another journal mode), the header is given up for the pragma.
    """

    def __init__(self, database: str) -> None:
        self._watch = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._version = self._pragma()  # also makes sure the WAL index exists
        self._index = _map_wal_index(database)
        self._header = b""
        self._count = 0
        self._header_at_version = b""
        self._next_verification = 0.0

    def __call__(self) -> int:
        index = self._index
        if index is None:  # negative: never equal to a count the header gave before
            return -1 - self._pragma()
        header = index[:_HEADER_COPY]
        if header != self._header:
            with self._lock:
                self._header = header
                self._count += 1
        if time.monotonic() >= self._next_verification:
            self._verify(header)
        return self._count

    def _verify(self, header: bytes) -> None:
        """The safety net: the pragma moved, the header did not: trust the pragma alone."""
        version = self._pragma()
        with self._lock:
            if version != self._version and header == self._header_at_version:
                self._index = None
            self._version, self._header_at_version = version, header
            self._next_verification = time.monotonic() + _VERIFY_SECONDS

    def _pragma(self) -> int:
        with self._lock:
            for (version,) in self._watch.execute("PRAGMA data_version"):
                return int(version)
        return 0  # pragma: no cover - the pragma always returns a row

    def close(self) -> None:
        with self._lock:
            self._index = None
            self._watch.close()


_HEADER_COPY = 48  # the first of the two copies of the WAL-index header
_VERIFY_SECONDS = 1.0


def _map_wal_index(database: str) -> mmap.mmap | None:
    """The WAL index mapped read-only, or None (no such file: not in WAL mode, or :memory:)."""
    try:
        with open(database + "-shm", "rb") as handle:
            return mmap.mmap(handle.fileno(), _HEADER_COPY, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None


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
