"""The token vault: reversible tokens, audited reveals, expiry, erasure, and an opaque table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

import piiguard as pg
from piiguard.events import ListSink
from piiguard.keys import LocalKEK
from piiguard.store import Store
from piiguard.store._schema import SCHEMA_VERSION
from piiguard.testing import allow_test_reveals
from tests.conftest import StoreTarget
from tests.helpers import (
    CANARY_ID,
    CANARY_PHONE,
    FailingSink,
    assert_no_canary,
    exception_text,
    luhn_complete,
    piiguard_frames_text,
)

CARD = "6222021234567890128"


class Clock:
    """A settable clock (timezone-aware, as the Guard requires)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_tokenize_and_detokenize(guard: pg.Guard) -> None:
    """DESIGN §3: tokenize with a subject, detokenize with actor and purpose."""
    token = guard.vault.tokenize(CARD, subject="u1", kind="bank_card")
    assert token.startswith("vt_")
    assert CARD not in token
    assert guard.vault.detokenize(token, actor="tester", purpose="testing") == CARD


def test_repeats_get_one_token_per_subject_and_kind(guard: pg.Guard) -> None:
    """The same value, subject and kind give the same live token; another subject or kind
    gives another; values are normalised first."""
    first = guard.vault.tokenize(CANARY_PHONE, subject="u1", kind="phone")
    assert guard.vault.tokenize("+86 138 1234 5678", subject="u1", kind="phone") == first
    assert guard.vault.tokenize(CANARY_PHONE, subject="u2", kind="phone") != first
    assert guard.vault.tokenize(CANARY_PHONE, subject="u1", kind="personal_info") != first


def test_the_table_does_not_link_subjects_sharing_a_value(guard: pg.Guard) -> None:
    """Two subjects with one phone get unrelated lookup digests."""
    guard.vault.tokenize(CANARY_PHONE, subject="u1", kind="phone")
    guard.vault.tokenize(CANARY_PHONE, subject="u2", kind="phone")
    vault = guard.store.tables.vault
    with guard.store.engine.connect() as connection:
        lookups = connection.execute(select(vault.c.lookup)).scalars().all()
    assert len(set(lookups)) == 2


def test_batches_tokenize_in_one_go(guard: pg.Guard) -> None:
    """tokenize_many gives one token per value, repeats collapsed, each reversible."""
    values = [CARD, "4242424242424242", CARD]
    tokens = guard.vault.tokenize_many(values, subject="u1", kind="bank_card")
    assert tokens[0] == tokens[2] != tokens[1]
    assert [guard.vault.detokenize(t, actor="tester", purpose="testing") for t in tokens] == values
    assert guard.vault.tokenize_many([], subject="u1", kind="phone") == []


def test_a_kind_is_required(guard: pg.Guard) -> None:
    """Without a kind a card was stored unchecked (issue 10): the kind is now required."""
    with pytest.raises(pg.InvalidArgument, match="kind"):
        guard.vault.tokenize("6222021234567890129", subject="u1")  # type: ignore[call-arg]
    with pytest.raises(pg.InvalidPII):
        guard.vault.tokenize("6222021234567890129", subject="u1", kind="bank_card")
    with pytest.raises(pg.InvalidArgument, match="kind"):
        guard.vault.tokenize_many(["x"], subject="u1")  # type: ignore[call-arg]


def test_reveals_are_audited_and_need_actor_and_purpose(
    store_target: StoreTarget, kek: LocalKEK
) -> None:
    """Each detokenize emits one event to the application's sink (besides the audit log)
    naming actor, purpose, kind and the subject's pseudonym, never the value; one without an
    actor is refused."""
    sink = ListSink()
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, events=sink) as guard:
        guard.consent.register(
            pg.Purpose("refund", basis="contract", kinds={"bank_card"}, separate=True)
        )
        token = guard.vault.tokenize(CARD, subject="u1", kind="bank_card")
        guard.vault.detokenize(token, actor="finance-1", purpose="refund")
        with pytest.raises(pg.AccessDenied) as refused:
            guard.vault.detokenize(token, actor="", purpose="refund")
        assert refused.value.reason == "no_actor"
        pseudonym = guard._keyring.subject_scope("u1")
    reveals = [event for event in sink.events if event.action == "detokenize"]
    assert [(e.action, e.actor, e.purpose, e.context, e.kind, e.result) for e in reveals] == [
        ("detokenize", "finance-1", "refund", {"kind": "bank_card"}, "bank_card", "ok")
    ]
    assert reveals[0].subjects == (pseudonym,)
    assert "u1" not in reveals[0].subjects[0]
    assert CARD not in repr(sink.events)


def test_unknown_expired_and_shredded_tokens_fail_cleanly(
    store_target: StoreTarget, kek: LocalKEK
) -> None:
    """TokenNotFound, TokenExpired, KeyDestroyed; purge removes expired entries."""
    clock = Clock()
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, clock=clock) as guard:
        allow_test_reveals(guard)
        with pytest.raises(pg.TokenNotFound):
            guard.vault.detokenize("vt_unknown", actor="tester", purpose="testing")
        short = guard.vault.tokenize(CARD, subject="u1", kind="bank_card", ttl=timedelta(hours=1))
        clock.now += timedelta(minutes=59)
        assert guard.vault.detokenize(short, actor="tester", purpose="testing") == CARD
        clock.now += timedelta(minutes=2)
        with pytest.raises(pg.TokenExpired):
            guard.vault.detokenize(short, actor="tester", purpose="testing")
        renewed = guard.vault.tokenize(CARD, subject="u1", kind="bank_card")
        assert renewed != short  # an expired token is not handed out again
        assert guard.vault.purge_expired() == 1
        kept = guard.vault.tokenize(CANARY_ID, subject="u2", kind="cn_resident_id")
        guard.shred("u2")
        with pytest.raises(pg.KeyDestroyed) as caught:
            guard.vault.detokenize(kept, actor="tester", purpose="testing")
        assert_no_canary(exception_text(caught.value))


def test_deleting_a_subject_removes_its_entries_only(guard: pg.Guard) -> None:
    """One call erases a subject's vault entries; other subjects keep theirs."""
    gone = guard.vault.tokenize(CARD, subject="u1", kind="bank_card")
    guard.vault.tokenize(CANARY_PHONE, subject="u1", kind="phone")
    kept = guard.vault.tokenize(CARD, subject="u2", kind="bank_card")
    assert guard.vault.delete_subject("u1") == 2
    with pytest.raises(pg.TokenNotFound):
        guard.vault.detokenize(gone, actor="tester", purpose="testing")
    assert guard.vault.detokenize(kept, actor="tester", purpose="testing") == CARD


def test_a_row_moved_to_another_token_does_not_decrypt(guard: pg.Guard) -> None:
    """Each ciphertext is bound to its token: swapping rows gives DecryptionError."""
    first = guard.vault.tokenize(CARD, subject="u1", kind="bank_card")
    second = guard.vault.tokenize("4242424242424242", subject="u1", kind="bank_card")
    vault = guard.store.tables.vault
    with guard.store.transaction() as connection:
        blob = connection.execute(
            select(vault.c.ciphertext).where(vault.c.token == first)
        ).scalar_one()
        connection.execute(update(vault).where(vault.c.token == second).values(ciphertext=blob))
    with pytest.raises(pg.DecryptionError):
        guard.vault.detokenize(second, actor="tester", purpose="testing")


def test_invalid_values_are_refused_without_echo(guard: pg.Guard) -> None:
    """A value invalid for its kind is refused before anything is stored."""
    with pytest.raises(pg.InvalidPII) as caught:
        guard.vault.tokenize(CANARY_ID[:-1] + "3", subject="u1", kind="cn_resident_id")
    assert_no_canary(exception_text(caught.value))
    with pytest.raises(pg.InvalidPII):
        guard.vault.tokenize_many([CARD, "123"], subject="u1", kind="bank_card")
    vault = guard.store.tables.vault
    with guard.store.engine.connect() as connection:
        assert connection.execute(select(vault)).all() == []


def test_a_dump_of_the_vault_reveals_nothing(tmp_path: Path, kek: LocalKEK) -> None:
    """The SQLite file holds neither values nor subject ids."""
    path = tmp_path / "vault.db"
    with pg.Guard.open(f"sqlite:///{path}", kek=kek) as guard:
        guard.vault.tokenize_many(
            [CANARY_PHONE, "13912345678"], subject="customer-77", kind="phone"
        )
        guard.vault.tokenize(CANARY_ID, subject="customer-77", kind="cn_resident_id")
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("vault.db*"))
    for secret in (CANARY_PHONE, CANARY_ID, "13912345678", "customer-77"):
        assert secret.encode() not in raw


def test_a_version_1_store_migrates_to_version_2(tmp_path: Path, kek: LocalKEK) -> None:
    """Opening a store written before the vault adds the vault table and bumps the version."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store.open(url)
    with store.transaction() as connection:
        store.tables.vault.drop(connection)
        meta = store.tables.meta
        connection.execute(update(meta).where(meta.c.name == "schema_version").values(value="1"))
    store.close()
    with pg.Guard.open(url, kek=kek) as guard:
        assert guard.store.schema_version == SCHEMA_VERSION
        allow_test_reveals(guard)
        token = guard.vault.tokenize(CARD, subject="u1", kind="bank_card")
        assert guard.vault.detokenize(token, actor="tester", purpose="testing") == CARD


def test_detokenize_fails_closed_when_the_reveal_cannot_be_recorded(
    tmp_path: Path, kek: LocalKEK
) -> None:
    """No audit record, no value: the sink's error is raised and no frame holds the value."""
    with pg.Guard.open(f"sqlite:///{tmp_path / 'v.db'}", kek=kek, events=FailingSink()) as guard:
        allow_test_reveals(guard)
        token = guard.vault.tokenize(CANARY_PHONE, subject="u1", kind="phone")
        with pytest.raises(pg.EventNotRecorded, match="OSError") as caught:
            guard.vault.detokenize(token, actor="tester", purpose="testing")
    assert_no_canary(piiguard_frames_text(caught.value))


def test_concurrent_tokenizations_of_one_value_give_one_token(
    store_target: StoreTarget, kek: LocalKEK
) -> None:
    """Eight instances tokenize the same card at the same moment: one live token, which all of
    them return (issue 10: two live tokens came out of most such races)."""
    import threading

    url, schema = store_target
    guards = [pg.Guard.open(url, kek=kek, schema=schema) for _ in range(4)]
    try:
        for guard in guards:  # warm: keys and roots exist, so the race is on the vault alone
            guard.vault.tokenize("6222021234567890128", subject="warm", kind="bank_card")
        for round_ in range(3):
            card = luhn_complete(f"62220212345678{round_}1")
            barrier = threading.Barrier(8)
            tokens: list[str] = []

            def tokenize(
                guard: pg.Guard,
                value: str = card,
                barrier: threading.Barrier = barrier,
                tokens: list[str] = tokens,
            ) -> None:
                barrier.wait()
                tokens.append(guard.vault.tokenize(value, subject="u1", kind="bank_card"))

            threads = [threading.Thread(target=tokenize, args=(guards[i % 4],)) for i in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert len(tokens) == 8
            assert len(set(tokens)) == 1
    finally:
        for guard in guards:
            guard.close()
