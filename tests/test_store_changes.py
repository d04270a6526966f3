"""The SQLite change counter: every commit of any connection moves it, read from the WAL
index header, with PRAGMA data_version as the safety net."""

from __future__ import annotations

import mmap
import sqlite3
from pathlib import Path

from piiguard.store._changes import SqliteChanges
from piiguard.store.store import Store


def _store(tmp_path: Path) -> tuple[Store, str]:
    path = str(tmp_path / "store.db")
    return Store.open(f"sqlite:///{path}"), path


def test_every_commit_of_another_connection_moves_the_counter(tmp_path: Path) -> None:
    store, path = _store(tmp_path)
    changes = SqliteChanges(path)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (x)")
    seen = [changes()]
    for value in range(20):
        assert changes() == seen[-1]  # nothing committed: the counter stands still
        writer.execute("INSERT INTO t VALUES (?)", (value,))
        seen.append(changes())
        assert seen[-1] != seen[-2]
        if value % 5 == 4:
            writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL restarts
            seen.append(changes())
    writer.close()
    changes.close()
    store.close()


def test_a_header_that_stands_still_is_given_up_for_the_pragma(tmp_path: Path) -> None:
    """Were the WAL index replaced under a running process, the header it maps would stand
    still: the pragma, checked every second, notices and takes over."""
    store, path = _store(tmp_path)
    changes = SqliteChanges(path)
    stale = tmp_path / "stale-shm"
    stale.write_bytes(bytes(4096))
    with stale.open("rb") as handle:
        changes._index = mmap.mmap(handle.fileno(), 48, access=mmap.ACCESS_READ)
    before = changes()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (x)")
    changes._next_verification = 0.0  # the second has passed
    changes()  # the verification sees the pragma move while the header stood still
    assert changes._index is None
    writer.execute("INSERT INTO t VALUES (1)")
    assert changes() != before
    writer.close()
    changes.close()
    store.close()
