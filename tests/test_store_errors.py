"""Store failures come out as StoreError naming their cause (never credentials or SQL
parameters), StoreBusy after the busy timeout, or InvalidArgument when the value was wrong."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

import piiguard as pg
import piiguard.store.store as store_module
from piiguard.keys import LocalKEK
from tests.backends import postgres_schema
from tests.helpers import CANARY_PHONE, assert_no_canary, piiguard_frames_text

PASSWORD = "s3cret-pw"  # noqa: S105 - made up: it must not show in any error


def _open_error(url: str, kek: LocalKEK) -> pg.StoreError:
    with pytest.raises(pg.StoreError) as caught:
        pg.Guard.open(url, kek=kek)
    return caught.value


def _postgres(**changes: object) -> str:
    with postgres_schema() as (url, _):
        return make_url(url).set(**changes).render_as_string(hide_password=False)  # type: ignore[arg-type]


def test_a_refused_connection_is_named(kek: LocalKEK) -> None:
    url = _postgres(port=1, password=PASSWORD)
    error = _open_error(url, kek)
    assert error.reason == "refused"
    assert "refused" in str(error)
    assert PASSWORD not in piiguard_frames_text(error)


def test_failed_authentication_is_named_without_the_password(kek: LocalKEK) -> None:
    url = _postgres(username="piiguard_no_such_role", password=PASSWORD)
    error = _open_error(url, kek)
    assert error.reason == "authentication"
    text = piiguard_frames_text(error)
    assert PASSWORD not in text
    assert "piiguard_no_such_role" not in text


def test_a_missing_database_is_named(kek: LocalKEK) -> None:
    error = _open_error(_postgres(database="piiguard_no_such_database"), kek)
    assert error.reason == "missing_database"
    assert "does not exist" in str(error)


def test_a_file_that_is_not_a_store_is_corrupted(tmp_path: Path, kek: LocalKEK) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"not a database, " * 512)
    path.chmod(0o600)
    error = _open_error(f"sqlite:///{path}", kek)
    assert error.reason == "corrupted"


def test_a_corrupted_row_is_a_store_error(tmp_path: Path, kek: LocalKEK) -> None:
    """Text that is not UTF-8 in a row (a damaged file) raised UnicodeDecodeError."""
    path = tmp_path / "store.db"
    with pg.Guard.open(f"sqlite:///{path}", kek=kek) as guard:
        guard.consent.register(pg.Purpose("newsletter", basis="consent", kinds={"email"}))
    raw = sqlite3.connect(path)
    raw.execute("UPDATE piiguard_purposes SET definition = CAST(x'7bff22' AS TEXT)")
    raw.commit()
    raw.close()
    with (
        pg.Guard.open(f"sqlite:///{path}", kek=kek) as guard,
        pytest.raises(pg.StoreError) as caught,
    ):
        guard.consent.purpose("newsletter")
    assert caught.value.reason == "corrupted"


def test_a_lock_held_past_the_busy_timeout_is_store_busy(
    tmp_path: Path, kek: LocalKEK, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the write lock longer than the timeout: StoreBusy, not the
    driver's OperationalError (the timeout is shortened so that the test is quick)."""
    path = tmp_path / "store.db"
    monkeypatch.setattr(store_module, "_BUSY_TIMEOUT_MS", 200)
    with pg.Guard.open(f"sqlite:///{path}", kek=kek) as guard:
        guard.retention.policy(pg.RetentionPolicy("orders", keep=timedelta(days=30)))
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(pg.StoreBusy) as caught:
                guard.retention.track("orders", "o-1")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert caught.value.reason == "busy"
        assert isinstance(caught.value, pg.StoreError)
        guard.retention.track("orders", "o-1")  # and the store works again


def test_a_nul_on_postgresql_is_an_invalid_argument(guard: pg.Guard) -> None:
    """PostgreSQL refuses NUL in text, and its DataError carried the SQL parameters; SQLite
    stores it as it is."""
    guard.retention.policy(pg.RetentionPolicy("orders", keep=timedelta(days=30)))
    record = CANARY_PHONE + "\x00"
    if guard.store.engine.dialect.name == "sqlite":
        guard.retention.track("orders", record)
        return
    with pytest.raises(pg.InvalidArgument, match="NUL") as caught:
        guard.retention.track("orders", record)
    assert_no_canary(piiguard_frames_text(caught.value))
    guard.retention.track("orders", CANARY_PHONE)  # nothing was left half-done


def test_a_lost_unique_race_is_a_conflict_naming_no_parameter(tmp_path: Path) -> None:
    """A driver's IntegrityError quotes the SQL and its parameters; it becomes a StoreError
    ('conflict') that names neither."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import IntegrityError

    from piiguard.store._failures import describe, translate_errors

    engine = create_engine(f"sqlite:///{tmp_path / 'raw.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (k TEXT PRIMARY KEY)"))
        connection.execute(text("INSERT INTO t VALUES (:k)"), {"k": CANARY_PHONE})
    with pytest.raises(IntegrityError) as raw, engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (:k)"), {"k": CANARY_PHONE})
    translated = describe(raw.value)
    assert isinstance(translated, pg.StoreError)
    assert translated.reason == "conflict"
    assert CANARY_PHONE not in str(translated)
    translate_errors(engine)
    with pytest.raises(pg.StoreError, match="conflict") as caught, engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (:k)"), {"k": CANARY_PHONE})
    assert caught.value.reason == "conflict"
    engine.dispose()
