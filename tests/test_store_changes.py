"""The SQLite change counter: every ``changing()`` commit of any connection moves it, in a
forked child too; other commits (an audit event, a retention claim) leave it, so they do not
empty the consent caches."""

from __future__ import annotations

import os
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
        assert changes() == seen[-1]  # a commit that changes no cached state
        with store.changing():
            pass
        seen.append(changes())
        assert seen[-1] != seen[-2]
        if value % 5 == 4:
            writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL restarts
            seen.append(changes())
    writer.close()
    changes.close()
    store.close()


def test_a_store_without_the_counter_row_caches_nothing(tmp_path: Path) -> None:
    store, path = _store(tmp_path)
    changes = SqliteChanges(path)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("DELETE FROM piiguard_meta WHERE name = 'changes'")
    assert changes() != changes()
    writer.close()
    changes.close()
    store.close()


def test_a_forked_child_watches_with_a_connection_of_its_own(tmp_path: Path) -> None:
    """SQLite connections must not cross a fork: the child opens its own and still sees
    every commit."""
    store, path = _store(tmp_path)
    changes = SqliteChanges(path)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (x)")
    changes()
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if it sees the writes
        before = changes()
        child_writer = sqlite3.connect(path, isolation_level=None)
        child_writer.execute(
            "UPDATE piiguard_meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) "
            "WHERE name = 'changes'"
        )  # what a changing() commit does
        os._exit(0 if changes() != before else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    before = changes()
    with store.changing():
        pass
    assert changes() != before  # the parent's connection is untouched by the child
    writer.close()
    changes.close()
    store.close()
