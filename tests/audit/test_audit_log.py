"""The audit log (issue 11): committed before the reveal returns, PII-free, and a keyed chain
that names the first bad event after an insider edits, deletes, inserts or reorders rows
directly in the database (SQLite and PostgreSQL), or recomputes plain SHA-256 hashes."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from sqlalchemy import delete, select, text, update

import piiguard as pg
from piiguard.audit.chain import FIELDS, GENESIS
from piiguard.audit.log import AuditLog
from piiguard.events import Rows
from piiguard.keys import LocalKEK
from piiguard.testing import DEFAULT_START, SettableClock, allow_test_reveals
from tests.conftest import StoreTarget
from tests.helpers import CANARY_ID, CANARY_PHONE

CONTEXT = {"table": "customers", "field": "phone", "id": CANARY_ID}


@pytest.fixture
def shop(guard: pg.Guard) -> pg.Guard:
    allow_test_reveals(guard)
    return guard


def _reveal(guard: pg.Guard, times: int = 1, actor: str = "cs-7") -> None:
    ciphertext = guard.encrypt(CANARY_PHONE, context=CONTEXT, subject=CANARY_ID)
    for _ in range(times):
        guard.decrypt(ciphertext, context=CONTEXT, actor=actor, purpose="testing")


def _rows(guard: pg.Guard) -> list[Any]:
    events = guard.store.tables.audit_events
    with guard.store.engine.connect() as connection:
        return list(connection.execute(select(events).order_by(events.c.seq)))


def _execute(guard: pg.Guard, statement: Any) -> None:
    """What an insider with write access to the database does: plain SQL, no piiguard."""
    with guard.store.engine.begin() as connection:
        connection.execute(statement)


def test_each_reveal_is_committed_before_it_returns(
    shop: pg.Guard, store_target: StoreTarget, kek: LocalKEK
) -> None:
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema) as other:
        _reveal(shop)
        (event,) = other.audit.events()  # another instance, its own connections
    assert (event.action, event.actor, event.purpose, event.result) == (
        "decrypt",
        "cs-7",
        "testing",
        "ok",
    )
    assert event.count == 1
    assert len(event.subjects) == 1
    assert event.detail["context"]["table"] == "customers"


def test_no_value_and_no_subject_id_reach_the_audit_table(shop: pg.Guard) -> None:
    _reveal(shop, 2)
    ciphertext = shop.encrypt(CANARY_PHONE, context=CONTEXT, subject=CANARY_ID)
    shop.decrypt_many([ciphertext] * 3, contexts=[CONTEXT] * 3, actor="svc:x", purpose="testing")
    shop.erase(CANARY_ID)
    dumped = repr(_rows(shop)) + repr(list(shop.audit.events()))
    for canary in (CANARY_PHONE, CANARY_ID, CANARY_ID[:14]):
        assert canary not in dumped


def test_a_batch_is_one_event_naming_every_row(shop: pg.Guard) -> None:
    contexts = [{"table": "orders", "field": "phone", "id": f"o{n}"} for n in range(4)]
    ciphertexts = [shop.encrypt(CANARY_PHONE, context=c) for c in contexts]
    shop.decrypt_many(ciphertexts, contexts=contexts, actor="svc:sms", purpose="testing")
    (event,) = shop.audit.events()
    assert event.count == 4
    assert event.detail["common"] == {"field": "phone", "table": "orders"}
    assert len({row["id"] for row in event.detail["rows"]}) == 4


@pytest.mark.parametrize("ids", [["o1", "o2", "o3"], ["o1", "o1"], ["o1"]])
def test_a_batch_given_factored_is_recorded_as_the_same_batch_of_mappings(
    shop: pg.Guard, ids: list[str]
) -> None:
    """The ORM hands its rows over factored (one base, one id each): the event stored, and
    a search by one row's id, are what the same rows as mappings give."""
    base = {"table": "orders", "field": "phone"}
    contexts = [{**base, "id": row_id} for row_id in ids]
    ciphertexts = [shop.encrypt(CANARY_PHONE, context=c) for c in contexts]
    shop.decrypt_many(ciphertexts, contexts=contexts, actor="svc:sms", purpose="testing")
    shop.decrypt_many(
        ciphertexts, contexts=Rows(base, "id", ids), actor="svc:sms", purpose="testing"
    )
    as_mappings, factored = shop.audit.events()
    assert factored.detail == as_mappings.detail
    assert CANARY_PHONE not in repr(factored)
    common = factored.detail.get("common", {})
    shown = [{**common, **row}["id"] for row in factored.detail["rows"]]
    # a value every row shares is stored once, as a context value; one that varies, per row
    form = shop.audit.stored_form if "id" in common else shop.audit.batch_form
    assert shown == [form("id", row_id) for row_id in ids]
    assert ("id" in common) is (len(set(ids)) == 1)


@pytest.mark.parametrize(("suite", "tag"), [("aes256gcm", "k:"), ("sm4gcm", "h:")])
def test_a_batch_is_stored_sealed_and_read_with_a_keyed_name_per_row(
    store_target: StoreTarget, kek: LocalKEK, suite: str, tag: str
) -> None:
    """A batch's row ids are stored sealed in one text (no digest per row, nothing in
    clear), and read back as one mapping per row, each id named by the context key's keyed
    hash (keyed BLAKE2s, ``k:``; HMAC-SM3, ``h:``, in the SM suite), as a second instance
    on the same store names them too."""
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, suite=suite) as guard:
        allow_test_reveals(guard)
        ids = [f"{n}" for n in range(1, 6)] + [CANARY_PHONE]  # a key can be a value
        contexts = [{"table": "orders", "field": "phone", "id": row_id} for row_id in ids]
        texts = guard.encrypt_many([CANARY_PHONE] * len(ids), contexts=contexts)
        guard.decrypt_many(texts, contexts=contexts, actor="svc:sms", purpose="testing")
        (event,) = guard.audit.events(action="decrypt")
        named = [row["id"] for row in event.detail["rows"]]
        assert named == [guard.audit.batch_form("id", row_id) for row_id in ids]
        assert all(name.startswith(tag) and len(name) == 22 for name in named)
        # the SM suite's rows are named as its contexts are; the others' by the faster hash
        same = guard.audit.batch_form("id", "1") == guard.audit.stored_form("id", "1")
        assert same is (tag == "h:")
        stored = _stored_details(guard)[-1]
        assert set(json.loads(stored)) == {"common", "sealed"}
        assert CANARY_PHONE not in stored
        assert not any(name in stored for name in named)
        assert guard.audit.verify().ok
    with pg.Guard.open(url, kek=kek, schema=schema, suite=suite) as again:
        (event,) = again.audit.events(action="decrypt")
        assert [row["id"] for row in event.detail["rows"]] == named


def test_a_batch_changed_in_the_table_reads_as_stored_and_fails_verification(
    shop: pg.Guard,
) -> None:
    """An insider swaps, edits or unseals a batch's sealed rows: reading the log still
    works (the batch is shown as stored, its rows unnamed), and verify names the event."""
    contexts = [{"table": "orders", "field": "phone", "id": f"o{n}"} for n in range(3)]
    texts = [shop.encrypt(CANARY_PHONE, context=c) for c in contexts]
    shop.decrypt_many(texts, contexts=contexts, actor="svc:sms", purpose="testing")
    shop.decrypt_many(texts[:2], contexts=contexts[:2], actor="svc:sms", purpose="testing")
    events = shop.store.tables.audit_events
    first, second = (json.loads(detail) for detail in _stored_details(shop))
    swapped = {**first, "sealed": second["sealed"]}  # another batch's rows: 2, not 3
    flipped = {**first, "sealed": {**first["sealed"], "text": "A" + first["sealed"]["text"][1:]}}
    legacy = {"common": first["common"], "rows": [{"id": "h:01"}, {"id": "h:02"}]}
    infinite = {**first, "sealed": {**first["sealed"], "key": float("inf")}}  # "Infinity"
    for changed in (swapped, flipped, {**first, "sealed": {"key": "x"}}, infinite, legacy):
        _execute(
            shop,
            update(events)
            .where(events.c.action == "decrypt", events.c.count == 3)
            .values(detail=json.dumps(changed)),
        )
        (event, _) = shop.audit.events(action="decrypt")
        if changed is legacy:
            assert event.detail["rows"] == legacy["rows"]  # earlier versions' form, as is
        elif changed is swapped:
            assert len(event.detail["rows"]) == 2  # opens: the chain is what catches it
        else:
            assert "rows" not in event.detail
        assert not shop.audit.verify().ok


def test_a_detail_changed_into_anything_still_reads_and_scopes(shop: pg.Guard) -> None:
    """Whatever an insider writes over an event's detail (not JSON, nested past any limit,
    the wrong shapes), the log is still read and scoped, and verify names the event."""
    contexts = [{"table": "orders", "field": "phone", "id": f"o{n}"} for n in range(2)]
    texts = [shop.encrypt(CANARY_PHONE, context=c) for c in contexts]
    shop.decrypt_many(texts, contexts=contexts, actor="svc:sms", purpose="testing")
    events = shop.store.tables.audit_events
    for changed in (
        "{not json",
        "[" * 100_000 + "]" * 100_000,
        '"a string"',
        '{"rows": "abc", "common": []}',
        '{"rows": [1, 2], "context": "x"}',
        '{"rows": [{"kind": ["phone"], "view": ["masked"], "table": 1}]}',
    ):
        _execute(shop, update(events).where(events.c.action == "decrypt").values(detail=changed))
        (event,) = shop.audit.events(action="decrypt")
        assert event.count == 2
        assert shop.audit.scope().events == 1
        assert not shop.audit.verify().ok


def test_events_filter_by_actor_action_purpose_and_time(shop: pg.Guard) -> None:
    _reveal(shop, 2, actor="cs-1")
    _reveal(shop, 1, actor="cs-2")
    shop.shred("someone")
    assert len(list(shop.audit.events(actor="cs-1"))) == 2
    assert [e.action for e in shop.audit.events(action="shred")] == ["shred"]
    assert len(list(shop.audit.events(purpose="testing"))) == 3
    first = next(iter(shop.audit.events()))
    assert list(shop.audit.events(until=first.at)) == []
    assert len(list(shop.audit.events(since=first.at))) == 4
    with pytest.raises(pg.InvalidArgument):
        list(shop.audit.events(actor=7))  # type: ignore[arg-type]


def test_operations_are_recorded(shop: pg.Guard, tmp_path: Path) -> None:
    with pg.acting(actor="ops-1", purpose="testing"):
        shop.shred("u9")
        shop.keys.advance_epoch()
        shop.keys.rotate_kek(LocalKEK.generate(tmp_path / "next.key"))
    shop.erase("u8")
    assert [(e.action, e.actor) for e in shop.audit.events()] == [
        ("shred", "ops-1"),
        ("advance_epoch", "ops-1"),
        ("rotate_kek", "ops-1"),
        ("erase", "unnamed"),
    ]
    assert shop.audit.verify().ok


def test_an_audit_write_that_fails_fails_the_reveal(shop: pg.Guard) -> None:
    ciphertext = shop.encrypt(CANARY_PHONE, context=CONTEXT)
    events = shop.store.tables.audit_events
    name = events.fullname if events.schema is None else f'"{events.schema}".{events.name}'
    with shop.store.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.execute(
                text(
                    f"CREATE TRIGGER refuse BEFORE INSERT ON {name} "
                    "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION pg_temp_refuse() RETURNS trigger AS "
                    "$$ BEGIN RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql"
                )
            )
            connection.execute(
                text(
                    f"CREATE TRIGGER refuse BEFORE INSERT ON {name} "
                    "FOR EACH ROW EXECUTE FUNCTION pg_temp_refuse()"
                )
            )
    try:
        with pytest.raises(pg.EventNotRecorded) as caught:
            shop.decrypt(ciphertext, context=CONTEXT, actor="cs-7", purpose="testing")
        assert CANARY_PHONE not in repr(caught.value)
        assert caught.value.__cause__ is None
    finally:
        with shop.store.engine.begin() as connection:
            on = "" if connection.dialect.name == "sqlite" else f" ON {name}"
            connection.execute(text(f"DROP TRIGGER refuse{on}"))
            if connection.dialect.name != "sqlite":
                connection.execute(text("DROP FUNCTION pg_temp_refuse()"))
    assert shop.decrypt(ciphertext, context=CONTEXT, actor="cs-7", purpose="testing")


def test_concurrent_reveals_from_threads_and_instances_form_one_chain(
    shop: pg.Guard, store_target: StoreTarget, kek: LocalKEK
) -> None:
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema) as other:
        ciphertext = shop.encrypt(CANARY_PHONE, context=CONTEXT)

        def work(guard: pg.Guard, actor: str) -> None:
            for _ in range(25):
                guard.decrypt(ciphertext, context=CONTEXT, actor=actor, purpose="testing")

        threads = [
            threading.Thread(target=work, args=(guard, f"t{n}"))
            for n, guard in enumerate([shop, other] * 3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        report = other.audit.verify()
    assert report.ok
    assert report.checked == 150
    assert [row.seq for row in _rows(shop)] == list(range(1, 151))


# -- tampering ----------------------------------------------------------------------------


@pytest.fixture
def logged(shop: pg.Guard) -> pg.Guard:
    for actor in ("cs-1", "cs-2", "cs-3", "cs-4", "cs-5"):
        _reveal(shop, actor=actor)
    assert shop.audit.verify().ok
    return shop


def test_an_edited_event_is_named(logged: pg.Guard) -> None:
    events = logged.store.tables.audit_events
    _execute(logged, update(events).where(events.c.seq == 3).values(actor="cs-9"))
    report = logged.audit.verify()
    assert (report.ok, report.first_bad, report.checked) == (False, 3, 2)


def test_a_deleted_event_is_named(logged: pg.Guard) -> None:
    events = logged.store.tables.audit_events
    _execute(logged, delete(events).where(events.c.seq == 2))
    report = logged.audit.verify()
    assert (report.ok, report.first_bad) == (False, 3)
    assert report.reason is not None
    assert "missing" in report.reason


def test_renumbering_after_a_delete_is_named(logged: pg.Guard) -> None:
    events = logged.store.tables.audit_events
    _execute(logged, delete(events).where(events.c.seq == 2))
    for seq in (3, 4, 5):
        _execute(logged, update(events).where(events.c.seq == seq).values(seq=seq - 1))
    report = logged.audit.verify()
    assert (report.ok, report.first_bad) == (False, 2)


def test_an_inserted_event_is_named(logged: pg.Guard) -> None:
    events = logged.store.tables.audit_events
    forged = dict(_rows(logged)[4]._mapping, seq=6, actor="cs-forged")
    _execute(logged, events.insert().values(**forged))
    report = logged.audit.verify()
    assert (report.ok, report.first_bad) == (False, 6)


def test_reordered_events_are_named(logged: pg.Guard) -> None:
    events = logged.store.tables.audit_events
    rows = _rows(logged)
    second, fourth = rows[1]._mapping, rows[3]._mapping
    columns = [c for c in FIELDS if c != "seq"] + ["chain"]
    _execute(
        logged, update(events).where(events.c.seq == 2).values(**{c: fourth[c] for c in columns})
    )
    _execute(
        logged, update(events).where(events.c.seq == 4).values(**{c: second[c] for c in columns})
    )
    report = logged.audit.verify()
    assert (report.ok, report.first_bad) == (False, 2)


def test_an_insider_recomputing_plain_sha256_is_caught(logged: pg.Guard) -> None:
    events, head = logged.store.tables.audit_events, logged.store.tables.audit_head
    rows = _rows(logged)
    chain = bytes(rows[1].chain)
    for row in rows[2:]:
        values = dict(row._mapping, actor="cs-0")
        encoded = b"".join(str(values[name]).encode() for name in FIELDS)
        chain = hashlib.sha256(chain + encoded).digest()
        _execute(
            logged, update(events).where(events.c.seq == row.seq).values(actor="cs-0", chain=chain)
        )
    _execute(logged, update(head).values(chain=chain))
    report = logged.audit.verify()
    assert (report.ok, report.first_bad) == (False, 3)


def test_a_cut_off_tail_is_found_against_a_head_kept_elsewhere(
    logged: pg.Guard, store_target: StoreTarget, kek: LocalKEK
) -> None:
    kept = logged.audit.head()
    assert kept is not None
    assert kept.seq == 5
    events, head = logged.store.tables.audit_events, logged.store.tables.audit_head
    fourth = _rows(logged)[3]
    _execute(logged, delete(events).where(events.c.seq == 5))
    _execute(logged, update(head).values(seq=4, chain=fourth.chain))  # covering the cut
    assert logged.audit.verify().first_bad == 5  # this instance wrote event 5
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema) as other:  # a fresh instance
        assert other.audit.verify().ok  # nothing in the store says an event was cut
        report = other.audit.verify(expected=kept)
    assert (report.ok, report.first_bad) == (False, 5)


def test_a_deleted_log_is_found_from_its_head(logged: pg.Guard) -> None:
    _execute(logged, delete(logged.store.tables.audit_events))
    report = logged.audit.verify()
    assert (report.ok, report.first_bad, report.checked) == (False, 1, 0)


def test_the_chain_starts_at_genesis_under_a_keyed_mac(logged: pg.Guard) -> None:
    first = _rows(logged)[0]
    encoded = b"".join(str(first._mapping[name]).encode() for name in FIELDS)
    assert bytes(first.chain) != hashlib.sha256(GENESIS + encoded).digest()
    assert len(bytes(first.chain)) == 32


# -- checkpoints and pruning ------------------------------------------------------------------


@pytest.fixture
def dated(store_target: StoreTarget, kek: LocalKEK) -> Iterator[tuple[pg.Guard, SettableClock]]:
    """A Guard on a settable clock with one reveal on each of days 0, 100, 200 and 300."""
    url, schema = store_target
    clock = SettableClock()
    with pg.Guard.open(url, kek=kek, schema=schema, clock=clock) as guard:
        allow_test_reveals(guard)
        for day in (0, 100, 200, 300):
            clock.set(DEFAULT_START + timedelta(days=day))
            _reveal(guard, actor=f"day-{day}")
        yield guard, clock


def test_pruning_keeps_the_retention_period_and_the_chain_verifiable(
    dated: tuple[pg.Guard, SettableClock],
) -> None:
    guard, _clock = dated
    assert guard.audit.retention == timedelta(days=180)
    with pg.acting(actor="ops-1", purpose="testing"):
        pruned = guard.audit.prune()  # now: day 300, so days 0 and 100 are past 180 days
    assert pruned == 2
    assert [e.actor for e in guard.audit.events()] == ["day-200", "day-300", "ops-1"]
    (pruning,) = guard.audit.events(action="audit_prune")  # a prune asked for is recorded
    assert pruning.count == 2
    report = guard.audit.verify()
    assert (report.ok, report.checked) == (True, 3)
    _reveal(guard, actor="day-300b")
    assert guard.audit.verify().ok
    assert guard.audit.prune() == 0  # nothing else is old enough


def test_a_sweep_prunes_signs_a_checkpoint_and_records_it(
    dated: tuple[pg.Guard, SettableClock],
) -> None:
    guard, _clock = dated
    guard.retention.sweep()
    assert [e.actor for e in guard.audit.events()][:2] == ["day-200", "day-300"]
    (pruning,) = guard.audit.events(action="audit_prune")
    assert pruning.count == 2
    head = guard.audit.head()
    assert head is not None
    report = guard.audit.verify(from_checkpoint=True)
    assert report.ok
    assert report.checked == 1


def test_a_deleted_checkpoint_leaves_the_pruned_start_unexplained(
    dated: tuple[pg.Guard, SettableClock],
) -> None:
    guard, _ = dated
    guard.audit.prune()
    _execute(guard, delete(guard.store.tables.audit_checkpoints))
    report = guard.audit.verify()
    assert (report.ok, report.first_bad) == (False, 1)


def test_a_forged_checkpoint_is_named(dated: tuple[pg.Guard, SettableClock]) -> None:
    guard, _ = dated
    guard.audit.prune()
    points = guard.store.tables.audit_checkpoints
    _execute(guard, update(points).values(at_us=0))
    report = guard.audit.verify()
    assert (report.ok, report.first_bad, report.reason) == (False, 2, "checkpoint does not verify")


def test_events_cut_within_the_retention_period_are_found_despite_a_checkpoint(
    dated: tuple[pg.Guard, SettableClock],
) -> None:
    guard, _ = dated
    guard.audit.checkpoint()  # at day 300's event, which is recent
    _reveal(guard, actor="later")
    events = guard.store.tables.audit_events
    _execute(guard, delete(events).where(events.c.seq <= 4))  # up to the checkpoint
    report = guard.audit.verify()
    assert not report.ok
    assert report.reason is not None
    assert "missing" in report.reason


def test_a_checkpoint_at_an_old_dated_event_does_not_stand_in_for_a_prune(
    dated: tuple[pg.Guard, SettableClock], store_target: StoreTarget, kek: LocalKEK
) -> None:
    """An instance whose clock ran years behind wrote the head event; a sweep signed a
    checkpoint there. Deleting everything up to it (today's reveals too) is still found:
    only a prune's own checkpoint explains a log that starts late."""
    guard, clock = dated
    url, schema = store_target
    slow = SettableClock(clock() - timedelta(days=3650))
    with pg.Guard.open(url, kek=kek, schema=schema, clock=slow) as behind:
        allow_test_reveals(behind)
        _reveal(behind, actor="behind")
    point = guard.audit.checkpoint()  # at the old-dated head event
    assert point is not None
    _reveal(guard, actor="later")
    events = guard.store.tables.audit_events
    _execute(guard, delete(events).where(events.c.seq <= point.seq))
    report = guard.audit.verify()
    assert not report.ok
    assert report.reason is not None
    assert "no prune" in report.reason
    assert guard.audit.verify(from_checkpoint=True).ok  # asked to start there, it may


def test_a_prune_refuses_to_sign_over_recent_events_made_to_look_old(
    dated: tuple[pg.Guard, SettableClock],
) -> None:
    """An insider dates the recent events back a year so that a prune deletes them: the
    prune verifies what it deletes, finds the forgery, and deletes and signs nothing."""
    guard, _ = dated
    events = guard.store.tables.audit_events
    _execute(guard, update(events).where(events.c.seq >= 3).values(at_us=0))
    before = len(_rows(guard))
    with pytest.raises(pg.AuditLogBroken) as caught:
        guard.audit.prune()
    assert caught.value.first_bad == 3
    assert len(_rows(guard)) == before
    report = guard.audit.verify()
    assert (report.ok, report.first_bad) == (False, 3)


def test_a_checkpoint_refuses_to_sign_a_forged_head(logged: pg.Guard) -> None:
    """A row appended by hand with a made-up chain value is not vouched for by a checkpoint
    (verification starting there would pass over the forgery)."""
    guard_events = logged.store.tables.audit_events
    last = _rows(logged)[-1]
    forged = {name: last._mapping[name] for name in FIELDS} | {"seq": last.seq + 1}
    _execute(logged, guard_events.insert().values(**forged, chain=bytes(32)))
    with pytest.raises(pg.AuditLogBroken) as caught:
        logged.audit.checkpoint()
    assert caught.value.first_bad == last.seq + 1
    with logged.store.engine.connect() as connection:
        points = connection.execute(select(logged.store.tables.audit_checkpoints)).all()
    assert points == []


def test_a_sweep_over_a_broken_log_prunes_nothing_and_says_so(
    dated: tuple[pg.Guard, SettableClock],
) -> None:
    guard, _ = dated
    events = guard.store.tables.audit_events
    _execute(guard, update(events).where(events.c.seq == 2).values(actor="someone-else"))
    with pytest.raises(pg.AuditLogBroken):
        guard.retention.sweep()
    assert len(_rows(guard)) >= 4  # nothing pruned


def test_a_log_emptied_by_a_prune_still_verifies(
    dated: tuple[pg.Guard, SettableClock],
) -> None:
    """Without a recorder (an AuditLog of its own), a prune of every event leaves an empty
    table: its checkpoint at the head explains it."""
    guard, clock = dated
    keyring = guard._keyring
    alone = AuditLog(
        guard.store,
        chain_mac=lambda: keyring.mac("audit", b"audit/chain"),
        context_mac=lambda: keyring.mac("audit", b"audit/context"),
        rows_sealer=lambda key_id: keyring.sealer("audit", b"audit/rows", key_id),
        checkpoint_mac=lambda: keyring.mac("audit", b"audit/checkpoint"),
        clock=clock,
        pseudonym=keyring.subject_scope,
        pruned=lambda count: None,
    )
    clock.set(clock() + timedelta(days=400))
    assert alone.prune() == 4
    assert _rows(guard) == []
    assert alone.verify().ok
    _reveal(guard, actor="after")
    assert alone.verify().ok
    assert guard.audit.verify().ok


def test_piiguard_s_own_log_never_prints_an_actor_that_is_personal_information(
    shop: pg.Guard,
) -> None:
    with (
        structlog.testing.capture_logs() as logged,
        pg.acting(actor=CANARY_PHONE, purpose="testing"),
        pytest.raises(pg.EventNotRecorded),  # the audit log refuses the actor
    ):
        shop.shred("u1")
    assert logged
    assert CANARY_PHONE not in repr(logged)
    assert logged[0]["actor"] == "[withheld]"


def test_a_checkpoint_waits_for_a_prune_in_progress(
    dated: tuple[pg.Guard, SettableClock],
) -> None:
    """A prune committed while a checkpoint walks the chain would look like missing events:
    the checkpoint takes the prune's lock first (PostgreSQL; SQLite serialises writers)."""
    guard, _ = dated
    done = threading.Event()

    def sign() -> None:
        guard.audit.checkpoint()
        done.set()

    with guard.store.transaction() as holding:  # a writer, as a prune is
        guard.store.serialize(holding, "audit-prune")  # a prune in progress
        worker = threading.Thread(target=sign)
        worker.start()
        assert not done.wait(0.5)
    worker.join(10)
    assert done.is_set()


def test_a_retention_must_be_a_positive_timedelta(store_target: StoreTarget, kek: LocalKEK) -> None:
    url, schema = store_target
    with pytest.raises(pg.InvalidArgument):
        pg.Guard.open(url, kek=kek, schema=schema, audit_retention=timedelta(0))


# -- incident scope ---------------------------------------------------------------------------


def test_the_incident_scope_counts_subjects_kinds_and_fields(shop: pg.Guard) -> None:
    shop.consent.register(pg.Purpose("after_sales", basis="contract", kinds={"phone"}))
    phones = [
        {"table": "orders", "field": "phone", "id": f"o{n}", "kind": "phone"} for n in range(3)
    ]
    sealed = [
        shop.encrypt(CANARY_PHONE, context=c, subject=f"cust-{n}") for n, c in enumerate(phones)
    ]
    card = {"table": "customers", "field": "card", "id": "c1", "kind": "bank_card"}
    card_ct = shop.encrypt("6222021234567890128", context=card, subject="cust-9")
    shop.decrypt_many(sealed, contexts=phones, actor="cs-7", purpose="after_sales")
    shop.decrypt(card_ct, context=card, actor="cs-8", purpose="testing")
    with pytest.raises(pg.AccessDenied):  # denied: revealed nothing, so not in the scope
        shop.decrypt(card_ct, context=card, actor="cs-7", purpose="after_sales")
    everything = shop.audit.scope()
    assert (everything.events, everything.values, everything.subjects) == (2, 4, 4)
    assert everything.kinds == {"phone", "bank_card"}
    assert everything.sensitive
    assert everything.fields == {"orders.phone", "customers.card"}
    assert everything.pseudonyms == {shop.audit.pseudonym(f"cust-{n}") for n in (0, 1, 2, 9)}
    one = shop.audit.scope(actors=["cs-7"])
    assert (one.subjects, one.kinds, one.sensitive) == (3, frozenset({"phone"}), False)
    assert one.actors == {"cs-7"}
    assert one.purposes == {"after_sales"}
    assert shop.audit.scope(purposes=["nothing"]).events == 0
    assert [e.actor for e in shop.audit.events(subject="cust-9")] == ["cs-8"]  # denied: unknown
    with pytest.raises(pg.InvalidArgument):
        shop.audit.scope(actors="cs-7")
    assert CANARY_PHONE not in repr(everything)


def test_a_second_instance_s_first_audit_call_needs_no_second_transaction(
    shop: pg.Guard, store_target: StoreTarget, kek: LocalKEK
) -> None:
    """Its audit keys are not in memory yet: reading them must not wait behind its own
    transaction (a self-deadlock until the busy timeout, on SQLite)."""
    _reveal(shop)
    url, schema = store_target
    for call in ("checkpoint", "prune", "verify"):
        with pg.Guard.open(url, kek=kek, schema=schema) as other:
            getattr(other.audit, call)()
    with pg.Guard.open(url, kek=kek, schema=schema) as other:
        other.retention.sweep()
    assert shop.audit.verify().ok


def test_a_value_passed_as_purpose_or_kind_reaches_the_audit_table_digested(
    shop: pg.Guard,
) -> None:
    """Denied reveals are recorded with what was asked: a phone given as the purpose, or as
    the context's kind, must not sit in the table in clear (read with raw SQL)."""
    ciphertext = shop.encrypt(CANARY_PHONE, context=CONTEXT)
    with pytest.raises(pg.AccessDenied):
        shop.decrypt(ciphertext, context=CONTEXT, actor="cs-7", purpose=CANARY_PHONE)
    odd = {**CONTEXT, "kind": CANARY_PHONE, "field": CANARY_ID}
    sealed = shop.encrypt(CANARY_PHONE, context=odd)
    with pytest.raises(pg.AccessDenied):
        shop.decrypt(sealed, context=odd, actor="cs-7", purpose="testing")
    rows = _rows(shop)
    assert len(rows) == 2
    dumped = repr(rows)
    for canary in (CANARY_PHONE, CANARY_ID, CANARY_ID[:14]):
        assert canary not in dumped
    assert shop.audit.verify().ok


def test_a_kept_connection_that_died_is_replaced_without_failing_a_reveal(
    kek: LocalKEK,
) -> None:
    """The audit writer keeps one connection between writes; when the server ends it (a
    restart, an idle timeout), the next reveal is recorded on a fresh one, not refused."""
    from tests.backends import postgres_schema

    with postgres_schema() as (url, schema), pg.Guard.open(url, kek=kek, schema=schema) as guard:
        allow_test_reveals(guard)
        _reveal(guard, 2)  # the first write makes the head; the second keeps a connection
        kept = guard.audit._held._connection.dbapi_connection  # the writer's own
        with guard.store.engine.connect() as connection:
            killed = connection.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": kept.info.backend_pid}
            ).scalar_one()
        assert killed
        _reveal(guard, 2)
        assert [e.action for e in guard.audit.events()] == ["decrypt"] * 4
        assert guard.audit.verify().ok


@pytest.mark.parametrize("purpose", ["après_vente", "promo_20261201"])
def test_a_purpose_stored_as_a_digest_is_still_found_by_its_name(
    shop: pg.Guard, purpose: str
) -> None:
    """A purpose that does not look like a plain name is digested in the table; queries and
    the incident scope digest what they are asked for the same way."""
    shop.consent.register(pg.Purpose(purpose, basis="contract", kinds={"phone"}))
    ciphertext = shop.encrypt(CANARY_PHONE, context=CONTEXT)
    for _ in range(3):
        shop.decrypt(ciphertext, context=CONTEXT, actor="cs-7", purpose=purpose)
    assert len(list(shop.audit.events(purpose=purpose))) == 3
    assert shop.audit.scope(purposes=[purpose]).values == 3
    assert all(row.purpose != purpose for row in _rows(shop))


@pytest.mark.parametrize(
    "actor",
    [
        CANARY_PHONE,
        f"user-{CANARY_ID}",
        CANARY_PHONE.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
        "cust.138.1234.5678",
        "cust 138 12345678",
        "cust:1381234\U00016fe45678",
    ],
)
def test_an_actor_named_by_personal_information_is_refused_and_nothing_is_stored(
    shop: pg.Guard, actor: str
) -> None:
    ciphertext = shop.encrypt(CANARY_PHONE, context=CONTEXT)
    with pytest.raises(pg.EventNotRecorded) as raised:
        shop.decrypt(ciphertext, context=CONTEXT, actor=actor, purpose="testing")
    assert "personal information" in str(raised.value)
    assert actor not in str(raised.value)
    assert _rows(shop) == []


def _stored_details(guard: pg.Guard) -> list[str]:
    """The batch events' details as the table holds them, oldest first."""
    events = guard.store.tables.audit_events
    with guard.store.engine.connect() as connection:
        query = select(events.c.detail).where(events.c.action == "decrypt").order_by(events.c.seq)
        return [str(detail) for detail in connection.execute(query).scalars()]
