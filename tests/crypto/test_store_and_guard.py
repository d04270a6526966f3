"""The store (schema, migrations, namespaces), Guard.open defaults, leaks, concurrency."""

from __future__ import annotations

import multiprocessing
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

import piiguard as pg
from piiguard.keys import LocalKEK
from piiguard.store import Store
from piiguard.store._schema import SCHEMA_VERSION
from piiguard.testing import allow_test_reveals
from tests.backends import postgres_schema
from tests.conftest import StoreTarget
from tests.helpers import (
    CANARY_ID,
    CANARY_PHONE,
    assert_no_canary,
    exception_text,
    piiguard_frames_text,
)

CONTEXT = {"table": "customers", "field": "phone", "id": "u1"}


def test_store_records_its_schema_version(store_target: StoreTarget) -> None:
    """A new store is at the current version; opening it again migrates nothing away."""
    url, schema = store_target
    store = Store.open(url, schema=schema)
    assert store.schema_version == SCHEMA_VERSION
    store.close()
    again = Store.open(url, schema=schema)
    assert again.schema_version == SCHEMA_VERSION
    again.close()


def test_a_newer_schema_is_refused(store_target: StoreTarget) -> None:
    """A store written by a newer piiguard is not touched by an older one."""
    url, schema = store_target
    store = Store.open(url, schema=schema)
    meta = store.tables.meta
    with store.transaction() as connection:
        connection.execute(update(meta).where(meta.c.name == "schema_version").values(value="999"))
    store.close()
    with pytest.raises(pg.StoreError, match="newer"):
        Store.open(url, schema=schema)


def test_schema_names_are_checked(tmp_path: Path) -> None:
    """A schema is for PostgreSQL and must be a plain identifier."""
    with pytest.raises(ValueError, match="schema"):
        Store.open(f"sqlite:///{tmp_path / 'x.db'}", schema="piiguard")
    with pytest.raises(ValueError, match="schema"):
        Store.open("postgresql+psycopg://postgres@127.0.0.1:5432/test", schema='x"; drop')


def test_unreachable_database_is_a_store_error() -> None:
    """A database that cannot be reached gives StoreError naming no credentials."""
    with pytest.raises(pg.StoreError) as caught:
        Store.open("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/none")
    assert "hunter2" not in piiguard_frames_text(caught.value)
    assert caught.value.__context__ is None


def test_two_schemas_in_one_database_are_separate(tmp_path: Path) -> None:
    """Each schema holds its own keys: a ciphertext of one does not open in the other."""
    kek = LocalKEK.generate(tmp_path / "kek.key")
    with (
        postgres_schema() as (url, first),
        postgres_schema() as (_, second),
        pg.Guard.open(url, kek=kek, schema=first) as one,
        pg.Guard.open(url, kek=kek, schema=second) as two,
    ):
        allow_test_reveals(one)
        allow_test_reveals(two)
        text = one.encrypt(CANARY_PHONE, context=CONTEXT)
        two.encrypt(CANARY_PHONE, context=CONTEXT)  # so a key of the same id exists there
        assert one.decrypt(text, context=CONTEXT, actor="tester", purpose="testing") == CANARY_PHONE
        # the same context: only the schema differs (another context would fail anyway)
        with pytest.raises(pg.DecryptionError):
            two.decrypt(text, context=CONTEXT, actor="tester", purpose="testing")


def test_guard_open_without_arguments_uses_a_private_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """./.piiguard/ is created 0700 with a 0600 KEK and a SQLite file, and reused."""
    monkeypatch.chdir(tmp_path)
    with pg.Guard.open() as guard:
        text = guard.encrypt(CANARY_PHONE, context=CONTEXT)
    home = tmp_path / ".piiguard"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "kek.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "piiguard.db").stat().st_mode) == 0o600
    with pg.Guard.open() as again:
        allow_test_reveals(again)
        assert (
            again.decrypt(text, context=CONTEXT, actor="tester", purpose="testing") == CANARY_PHONE
        )
        assert "sqlite" in repr(again)


def test_a_url_needs_a_kek(tmp_path: Path) -> None:
    """Naming a store without saying where its keys are wrapped is an error."""
    with pytest.raises(ValueError, match="kek"):
        pg.Guard.open(f"sqlite:///{tmp_path / 'x.db'}")


def test_close_is_idempotent(tmp_path: Path, kek: LocalKEK) -> None:
    """Closing twice is harmless, and what was written survives the close."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    guard = pg.Guard.open(url, kek=kek)
    text = guard.encrypt(CANARY_PHONE, context=CONTEXT)
    guard.close()
    guard.close()
    assert guard.store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    with pg.Guard.open(url, kek=kek) as again:
        allow_test_reveals(again)
        assert (
            again.decrypt(text, context=CONTEXT, actor="tester", purpose="testing") == CANARY_PHONE
        )


# long enough that random ciphertext bytes never spell them by chance (two-byte ids did)
SUBJECT_CANARIES = ("subject-canary-7f3a9c21", "subject-canary-5e0b44d8")


def test_database_file_holds_no_plaintext(tmp_path: Path, kek: LocalKEK) -> None:
    """After encrypting canaries, blind-indexing and shredding, the SQLite file (and its
    WAL) contains neither canary nor any key in clear."""
    path = tmp_path / "app.db"
    with pg.Guard.open(f"sqlite:///{path}", kek=kek) as guard:
        for subject in SUBJECT_CANARIES:
            guard.encrypt(CANARY_PHONE, context=CONTEXT, subject=subject)
            guard.encrypt(CANARY_ID, context=CONTEXT, subject=subject)
        guard.blind_index(CANARY_PHONE, field="customers.phone")
        guard.encrypt_deterministically(CANARY_ID, context={"t": "c"})
        guard.shred(SUBJECT_CANARIES[0])
        secrets = [cached.secret for cached in guard._keyring._data._cache.values()]
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("app.db*"))
    for canary in (CANARY_PHONE, CANARY_ID, *SUBJECT_CANARIES):
        assert canary.encode() not in raw
    assert secrets
    assert not any(bytes(secret) in raw for secret in secrets)


def test_decryption_errors_leak_nothing(guard: pg.Guard) -> None:
    """The error of a failed decrypt, with every local of every frame rendered, holds no
    plaintext, no ciphertext bytes in clear and no key."""
    text = guard.encrypt(CANARY_PHONE, context=CONTEXT, subject="u1")
    with pytest.raises(pg.DecryptionError) as caught:
        guard.decrypt(text, context={**CONTEXT, "id": "u2"}, actor="tester", purpose="testing")
    rendered = exception_text(caught.value)
    assert_no_canary(rendered)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    guard.shred("u1")
    with pytest.raises(pg.KeyDestroyed) as destroyed:
        guard.decrypt(text, context=CONTEXT, actor="tester", purpose="testing")
    assert_no_canary(exception_text(destroyed.value))
    # no bytes in any frame: a key, a plaintext or a ciphertext would show as a bytes literal
    for text_of_error in (rendered, exception_text(destroyed.value)):
        assert not re.search(r"""b(['"]).{8,}?\1""", text_of_error)


def _worker(url: str, schema: str | None, kek_path: str, worker: int, count: int) -> list[str]:
    kek = LocalKEK.from_file(kek_path)
    with pg.Guard.open(url, kek=kek, schema=schema, dek_max_uses=7) as guard:
        return [
            guard.encrypt(
                f"{worker}-{i}", context={"w": str(worker), "i": str(i)}, subject=f"s{i % 5}"
            )
            for i in range(count)
        ]


@pytest.mark.parametrize("processes", [2, 4])
def test_concurrent_processes_lose_no_key(
    store_target: StoreTarget, tmp_path: Path, processes: int
) -> None:
    """Several processes on one store encrypt at once (keys retiring every 7 uses); every
    value decrypts afterwards in another process."""
    url, schema = store_target
    kek_path = tmp_path / "kek.key"
    LocalKEK.generate(kek_path)
    count = 60
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.starmap(
            _worker, [(url, schema, str(kek_path), worker, count) for worker in range(processes)]
        )
    with pg.Guard.open(url, kek=LocalKEK.from_file(kek_path), schema=schema) as guard:
        allow_test_reveals(guard)
        for worker, texts in enumerate(results):
            for i, text in enumerate(texts):
                assert (
                    guard.decrypt(
                        text,
                        context={"w": str(worker), "i": str(i)},
                        actor="tester",
                        purpose="testing",
                    )
                    == f"{worker}-{i}"
                )


def _derived_values(
    url: str, schema: str | None, kek_path: str, barrier: Any
) -> tuple[str, str, str]:
    with pg.Guard.open(url, kek=LocalKEK.from_file(kek_path), schema=schema) as guard:
        barrier.wait()  # everyone reaches the first use of the root keys at once
        return (
            guard._keyring.subject_scope("u1"),
            guard.blind_index(CANARY_PHONE, field="customers.phone"),
            guard.tokens.token(CANARY_PHONE, kind="phone"),
        )


def test_processes_opening_a_fresh_store_agree_on_root_keys(
    store_target: StoreTarget, tmp_path: Path
) -> None:
    """Four processes racing to create the root keys of a new store end up with one set:
    the same pseudonyms, blind indexes and tokens everywhere."""
    url, schema = store_target
    kek_path = tmp_path / "kek.key"
    LocalKEK.generate(kek_path)
    if schema is not None:  # create the empty schema first, so the race is on the keys
        Store.open(url, schema=schema).close()
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(4) as pool:
        barrier = manager.Barrier(4)
        results = pool.starmap(_derived_values, [(url, schema, str(kek_path), barrier)] * 4)
    assert len(set(results)) == 1


def test_opening_a_fresh_store_waits_for_another_process_lock(
    tmp_path: Path, kek: LocalKEK
) -> None:
    """Another process holds the new SQLite file's lock for longer than the driver's default
    5 s while this one opens it (switching it to WAL needs that lock): open waits instead of
    failing with "database is locked" (issue 10)."""
    import sqlite3
    import threading

    path = tmp_path / "fresh.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    releaser = threading.Timer(6.0, holder.rollback)
    releaser.start()
    try:
        with pg.Guard.open(f"sqlite:///{path}", kek=kek) as guard:
            allow_test_reveals(guard)
            text = guard.encrypt("x", context={"t": "t"})
            assert guard.decrypt(text, context={"t": "t"}, actor="tester", purpose="testing") == "x"
    finally:
        releaser.join()
        holder.close()
