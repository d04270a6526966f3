"""Retention: policies, tracking, holds, crash-safe sweeps, erasure with receipts, export."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

import piiguard as pg
from piiguard.keys import LocalKEK
from piiguard.testing import allow_test_reveals
from tests.conftest import StoreTarget
from tests.helpers import CANARY_PHONE

YEAR = timedelta(days=365)
START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class Clock:
    """A settable, timezone-aware clock: tests move time, they never sleep."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    """A deletion hook that records its calls and can be told to fail."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.fail_with: Exception | None = None
        self.lock = threading.Lock()

    def __call__(self, ids: list[str]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        with self.lock:
            self.calls.append(sorted(ids))

    @property
    def deleted(self) -> list[str]:
        return sorted(record for call in self.calls for record in call)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def shop(
    store_target: StoreTarget, kek: LocalKEK, clock: Clock
) -> Iterator[tuple[pg.Guard, Recorder, Recorder]]:
    """A Guard with orders (3-year legal minimum) and chats (30 days), each with a hook."""
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, clock=clock) as guard:
        allow_test_reveals(guard)
        guard.retention.policy(
            pg.RetentionPolicy("orders", keep=3 * YEAR, after="completed", legal_minimum=True)
        )
        guard.retention.policy(pg.RetentionPolicy("chats", keep=timedelta(days=30), after="closed"))
        orders, chats = Recorder(), Recorder()
        guard.retention.hook("orders")(orders)
        guard.retention.hook("chats")(chats)
        yield guard, orders, chats


@pytest.mark.parametrize(
    "kwargs",
    [
        {"category": "bad name", "keep": YEAR},
        {"category": "orders", "keep": timedelta(0)},
        {"category": "orders", "keep": 365},
        {"category": "orders", "keep": YEAR, "action": "archive"},
    ],
)
def test_policies_are_checked_when_built(kwargs: dict[str, object]) -> None:
    """Identifiers, positive periods, known actions."""
    with pytest.raises(ValueError, match=r"category|keep|action"):
        pg.RetentionPolicy(**kwargs)  # type: ignore[arg-type]


def test_track_is_idempotent_and_later_events_move_the_due_date(
    shop: tuple[pg.Guard, Recorder, Recorder], clock: Clock
) -> None:
    """Tracking twice changes nothing; a later event moves the date; an earlier one does not."""
    guard, _, _ = shop
    due = guard.retention.track("chats", "c1", subject="u1", at=START)
    assert due == START + timedelta(days=30)
    assert guard.retention.track("chats", "c1", subject="u1", at=START) == due
    assert guard.retention.track("chats", "c1", at=START + timedelta(days=5)) == due + timedelta(
        days=5
    )
    assert guard.retention.track("chats", "c1", at=START) == due + timedelta(days=5)
    with pytest.raises(pg.PolicyViolation):
        guard.retention.track("invoices", "i1", at=START)
    with pytest.raises(ValueError, match="aware"):
        guard.retention.track("chats", "c2", at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="record id"):
        guard.retention.track("chats", "", at=START)


def test_sweeps_act_on_due_records_only_in_batches(
    shop: tuple[pg.Guard, Recorder, Recorder], clock: Clock
) -> None:
    """Due records go through the hook in batches; others wait; dry runs call nothing."""
    guard, _, chats = shop
    for i in range(5):
        guard.retention.track("chats", f"old{i}", subject=f"u{i}", at=START - timedelta(days=31))
    guard.retention.track("chats", "new", subject="u9", at=START)
    dry = guard.retention.sweep(dry_run=True)
    assert (dry.dry_run, dry.done, dry.not_yet_due, dict(dry.by_category)) == (
        True,
        5,
        1,
        {"chats": 5},
    )
    assert chats.calls == []
    seen: list[int] = []
    report = guard.retention.sweep(batch=2, progress=lambda partial: seen.append(partial.done))
    assert (report.done, report.failed, report.not_yet_due) == (5, 0, 1)
    assert [len(call) for call in chats.calls] == [2, 2, 1]
    assert seen == [2, 4, 5]
    assert guard.retention.sweep().done == 0  # nothing twice
    clock.now += timedelta(days=31)
    assert guard.retention.sweep().done == 1
    assert chats.deleted == sorted([f"old{i}" for i in range(5)] + ["new"])
    with pytest.raises(ValueError, match="batch"):
        guard.retention.sweep(batch=0)


def test_failed_hooks_are_retried_with_backoff_and_record_no_pii(
    shop: tuple[pg.Guard, Recorder, Recorder], clock: Clock
) -> None:
    """A raising hook marks its batch failed with the error's type only; a later sweep, after
    the backoff, retries it."""
    guard, _, chats = shop
    guard.retention.track("chats", "c1", subject="u1", at=START - timedelta(days=31))
    chats.fail_with = RuntimeError(f"could not delete row for {CANARY_PHONE}")
    assert guard.retention.sweep().failed == 1
    table = guard.store.tables.retention
    with guard.store.engine.connect() as connection:
        row = connection.execute(select(table)).one()
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "RuntimeError")
    chats.fail_with = None
    assert guard.retention.sweep().done == 0  # still backing off
    clock.now += timedelta(minutes=3)
    assert guard.retention.sweep().done == 1
    assert chats.deleted == ["c1"]


def test_a_category_without_hook_fails_visibly(shop: tuple[pg.Guard, Recorder, Recorder]) -> None:
    """Nothing is marked done when no hook exists to do it."""
    guard, _, _ = shop
    guard.retention.policy(pg.RetentionPolicy("logs", keep=timedelta(days=180)))
    guard.retention.track("logs", "l1", at=START - YEAR)
    assert guard.retention.sweep().failed == 1


def test_holds_keep_records_until_released_or_expired(
    shop: tuple[pg.Guard, Recorder, Recorder], clock: Clock
) -> None:
    """Subject, category and record holds all stop sweeps; release and expiry end them."""
    guard, _, chats = shop
    for i, subject in enumerate(["u1", "u2", "u3"]):
        guard.retention.track("chats", f"c{i}", subject=subject, at=START - timedelta(days=31))
    by_subject = guard.retention.hold(subject="u1", reason="litigation 2026-17")
    guard.retention.hold(
        category="chats", record_id="c1", reason="complaint", until=START + timedelta(days=1)
    )
    report = guard.retention.sweep()
    assert (report.done, report.held) == (1, 2)
    assert chats.deleted == ["c2"]
    clock.now += timedelta(days=2)
    assert guard.retention.sweep().done == 1  # the record hold expired
    guard.retention.release(by_subject)
    assert guard.retention.sweep().done == 1
    assert chats.deleted == ["c0", "c1", "c2"]
    category_hold = guard.retention.hold(category="chats", reason="audit")
    guard.retention.track("chats", "c9", at=START - YEAR)
    assert guard.retention.sweep().held == 1
    guard.retention.release(category_hold)
    assert guard.retention.sweep().done == 1
    with pytest.raises(ValueError, match="names"):
        guard.retention.hold(reason="nothing named")
    with pytest.raises(ValueError, match="category"):
        guard.retention.hold(record_id="c1", reason="no category")


def test_a_crashed_sweep_loses_nothing(
    shop: tuple[pg.Guard, Recorder, Recorder], clock: Clock
) -> None:
    """Records claimed by a sweep that died are claimed again after the lease, not before."""
    guard, _, chats = shop
    for i in range(3):
        guard.retention.track("chats", f"c{i}", at=START - timedelta(days=31))
    claimed = guard.retention._claim("chats", START, 2)  # a sweep claims, then its process dies
    assert len(claimed) == 2
    assert guard.retention.sweep().done == 1  # the unclaimed one; the claimed wait for the lease
    clock.now += timedelta(minutes=11)
    assert guard.retention.sweep().done == 2
    assert chats.deleted == ["c0", "c1", "c2"]


def test_concurrent_sweeps_never_call_a_hook_twice(
    store_target: StoreTarget, kek: LocalKEK, clock: Clock
) -> None:
    """Four Guards sweeping one store at once: every record is deleted exactly once."""
    url, schema = store_target
    hook = Recorder()
    guards = [pg.Guard.open(url, kek=kek, schema=schema, clock=clock) for _ in range(4)]
    for guard in guards:
        guard.retention.policy(pg.RetentionPolicy("chats", keep=timedelta(days=30)))
        guard.retention.hook("chats")(hook)
    for i in range(400):
        guards[0].retention.track("chats", f"c{i}", at=START - timedelta(days=31))
    threads = [
        threading.Thread(target=guard.retention.sweep, kwargs={"batch": 25}) for guard in guards
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for guard in guards:
        guard.close()
    assert hook.deleted == sorted(f"c{i}" for i in range(400))


def test_the_shred_action_destroys_subject_keys(shop: tuple[pg.Guard, Recorder, Recorder]) -> None:
    """A shred policy needs no hook: the subject's keys go, and its ciphertexts with them."""
    guard, _, _ = shop
    guard.retention.policy(
        pg.RetentionPolicy("face_templates", keep=timedelta(days=1), action="shred")
    )
    text = guard.encrypt("template", context={"t": "faces"}, subject="u1")
    guard.retention.track("face_templates", "f1", subject="u1", at=START - timedelta(days=2))
    assert guard.retention.sweep().done == 1
    with pytest.raises(pg.KeyDestroyed):
        guard.decrypt(text, context={"t": "faces"}, actor="tester", purpose="testing")


def test_erasure_freezes_legal_minimums_and_deletes_the_rest(
    shop: tuple[pg.Guard, Recorder, Recorder], clock: Clock
) -> None:
    """Orders are frozen until their 3 years pass; chats, vault, consents go now; keys are
    shredded when the freeze ends, by a sweep."""
    guard, orders, chats = shop
    guard.retention.track("orders", "o1", subject="u1", at=START - timedelta(days=10))
    guard.retention.track("chats", "c1", subject="u1", at=START - timedelta(days=10))
    secret = guard.encrypt(CANARY_PHONE, context={"t": "customers"}, subject="u1")
    guard.vault.tokenize(CANARY_PHONE, subject="u1", kind="phone")
    guard.consent.register(pg.Purpose("marketing_sms", kinds={"phone"}))
    guard.consent.publish_notice("n1", purposes=["marketing_sms"])
    guard.consent.grant("u1", "marketing_sms", notice="n1")
    receipt = guard.erase("u1")
    assert not receipt.completed  # the keys wait for the frozen orders
    assert [(s.step, s.target, s.outcome) for s in receipt.steps] == [
        ("records", "chats", "done"),
        ("records", "orders", "frozen"),
        ("vault", "vault", "done"),
        ("consent", "consent", "done"),
        ("sharing", "sharing", "done"),
        ("requests", "requests", "done"),
        ("keys", "subject keys", "scheduled"),
    ]
    assert receipt.kept[0].category == "orders"
    assert receipt.kept[0].until == START - timedelta(days=10) + 3 * YEAR
    assert chats.deleted == ["c1"]
    assert orders.calls == []
    assert guard.retention.is_frozen("orders", "o1")
    assert not guard.consent.check("u1", "marketing_sms")
    assert [e.action for e in guard.consent.history("u1")] == ["grant", "withdraw"]
    assert (
        guard.decrypt(secret, context={"t": "customers"}, actor="tester", purpose="testing")
        == CANARY_PHONE
    )  # frozen data stays readable
    clock.now += 3 * YEAR
    report = guard.retention.sweep()
    assert (report.done, report.shredded_subjects) == (1, 1)
    assert orders.deleted == ["o1"]
    with pytest.raises(pg.KeyDestroyed):
        guard.decrypt(secret, context={"t": "customers"}, actor="tester", purpose="testing")
    assert [r["completed"] for r in guard.erasure_receipts("u1")] == [True]


def test_erasure_without_frozen_data_shreds_at_once(
    shop: tuple[pg.Guard, Recorder, Recorder],
) -> None:
    """Nothing to keep: keys are destroyed in the same call."""
    guard, _, _ = shop
    secret = guard.encrypt("x", context={"t": "c"}, subject="u2")
    receipt = guard.erase("u2", reason="account_closed")
    assert receipt.steps[-1].outcome == "done"
    with pytest.raises(pg.KeyDestroyed):
        guard.decrypt(secret, context={"t": "c"}, actor="tester", purpose="testing")


def test_a_failed_erasure_says_so_and_resumes(shop: tuple[pg.Guard, Recorder, Recorder]) -> None:
    """A raising hook: the step is failed, keys are kept for the retry, and erase again finishes."""
    guard, _, chats = shop
    guard.retention.track("chats", "c1", subject="u3", at=START)
    chats.fail_with = RuntimeError(f"db down while deleting {CANARY_PHONE}")
    first = guard.erase("u3")
    assert not first.completed
    assert ("records", "chats", "failed", "RuntimeError") in [
        (s.step, s.target, s.outcome, s.detail) for s in first.steps
    ]
    assert first.steps[-1].outcome == "deferred"
    chats.fail_with = None
    second = guard.erase("u3")
    assert second.completed
    assert chats.deleted == ["c1"]
    receipts = guard.erasure_receipts("u3")
    assert [r["completed"] for r in receipts] == [False, True]
    assert CANARY_PHONE not in str(receipts)


def test_legal_holds_stop_erasure_and_keep_the_keys(
    shop: tuple[pg.Guard, Recorder, Recorder],
) -> None:
    """A held record is kept and named in the receipt; keys wait."""
    guard, _, chats = shop
    guard.retention.track("chats", "c1", subject="u4", at=START)
    guard.retention.hold(subject="u4", reason="court order")
    receipt = guard.erase("u4")
    assert chats.calls == []
    assert receipt.kept[0].reason == "legal hold"
    assert receipt.steps[-1].outcome == "scheduled"
    assert not receipt.completed


def test_export_gathers_records_consents_and_vault(
    shop: tuple[pg.Guard, Recorder, Recorder],
) -> None:
    """An access request: the exporters' records, consent history, and vault values."""
    guard, _, _ = shop
    guard.retention.exporter("orders")(lambda ids: [{"order": record} for record in ids])
    guard.retention.track("orders", "o7", subject="u5", at=START)
    guard.retention.track("chats", "c7", subject="u5", at=START)
    guard.vault.tokenize("6222021234567890128", subject="u5", kind="bank_card")
    exported = guard.export("u5", actor="tester", purpose="testing")
    assert exported["records"] == {"chats": None, "orders": [{"order": "o7"}]}
    assert exported["vault"][0]["value"] == "6222021234567890128"
    assert exported["consent"] == []
    assert exported["destroyed"] == []
    assert exported["keys"] == {"active": 1}


def test_receipts_and_schedule_name_no_subject(tmp_path: Path, kek: LocalKEK, clock: Clock) -> None:
    """Tracked records, holds and receipts store pseudonyms: the SQLite file never names u-4711."""
    path = tmp_path / "r.db"
    with pg.Guard.open(f"sqlite:///{path}", kek=kek, clock=clock) as guard:
        guard.retention.policy(pg.RetentionPolicy("chats", keep=timedelta(days=30)))
        guard.retention.hook("chats")(Recorder())
        guard.retention.track("chats", "c1", subject="customer-4711", at=START)
        guard.retention.hold(subject="customer-4711", reason="audit")
        guard.erase("customer-4711")
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("r.db*"))
    assert b"customer-4711" not in raw


def _sweep_and_die(url: str, schema: str | None, kek_path: str) -> None:
    """A worker whose process dies inside the hook, after claiming a batch."""
    import os

    with pg.Guard.open(
        url, kek=LocalKEK.from_file(kek_path), schema=schema, clock=lambda: START
    ) as guard:
        guard.retention.policy(pg.RetentionPolicy("chats", keep=timedelta(days=30)))
        guard.retention.hook("chats")(lambda ids: os._exit(1))
        guard.retention.sweep(batch=3)


def test_a_process_killed_mid_sweep_loses_nothing(
    store_target: StoreTarget, tmp_path: Path, clock: Clock
) -> None:
    """A real process dies holding a claimed batch: after the lease another sweep deletes
    every record, each once."""
    import multiprocessing

    url, schema = store_target
    kek_path = tmp_path / "kek.key"
    hook = Recorder()
    with pg.Guard.open(url, kek=LocalKEK.generate(kek_path), schema=schema, clock=clock) as guard:
        guard.retention.policy(pg.RetentionPolicy("chats", keep=timedelta(days=30)))
        guard.retention.hook("chats")(hook)
        for i in range(7):
            guard.retention.track("chats", f"c{i}", at=START - timedelta(days=31))
        worker = multiprocessing.get_context("spawn").Process(
            target=_sweep_and_die, args=(url, schema, str(kek_path))
        )
        worker.start()
        worker.join(timeout=60)
        assert worker.exitcode == 1
        assert guard.retention.sweep().done == 4  # the dead worker's 3 wait for their lease
        clock.now += timedelta(minutes=11)
        assert guard.retention.sweep().done == 3
    assert hook.deleted == [f"c{i}" for i in range(7)]
    assert sum(len(call) for call in hook.calls) == 7


def test_the_anonymize_action_calls_the_hook(shop: tuple[pg.Guard, Recorder, Recorder]) -> None:
    """piiguard owns none of an anonymized category's data: the application's hook does it."""
    guard, _, _ = shop
    guard.retention.policy(pg.RetentionPolicy("reviews", keep=YEAR, action="anonymize"))
    anonymizer = Recorder()
    guard.retention.hook("reviews")(anonymizer)
    guard.retention.track("reviews", "r1", subject="u1", at=START - 2 * YEAR)
    assert guard.retention.sweep().done == 1
    assert anonymizer.deleted == ["r1"]


@contextmanager
def two_sweepers(
    target: StoreTarget, kek: LocalKEK, clock: Clock, calls: list[str]
) -> Iterator[tuple[pg.Guard, pg.Guard]]:
    """Two Guards on one store and one clock, sweeping chats; the second's hook records."""
    url, schema = target
    with (
        pg.Guard.open(url, kek=kek, schema=schema, clock=clock) as first,
        pg.Guard.open(url, kek=kek, schema=schema, clock=clock) as second,
    ):
        for guard in (first, second):
            guard.retention.policy(pg.RetentionPolicy("chats", keep=timedelta(days=30)))
        second.retention.hook("chats")(calls.extend)
        yield first, second


def test_claims_carry_the_claim_time_not_the_sweeps_start(
    store_target: StoreTarget, kek: LocalKEK, clock: Clock
) -> None:
    """A sweep whose first batch outlives the lease: its later batches are claimed at their
    own time, so a second sweeper does not take them while their hook runs."""
    calls: list[str] = []
    with two_sweepers(store_target, kek, clock, calls) as (first, second):

        def slow_hook(ids: list[str]) -> None:
            calls.extend(ids)
            if ids == ["c0"]:
                clock.now += timedelta(minutes=11)  # the first batch outlives the lease
            else:
                assert second.retention.sweep().done == 0

        first.retention.hook("chats")(slow_hook)
        for i in range(2):
            first.retention.track("chats", f"c{i}", at=START - timedelta(days=32 - i))
        assert first.retention.sweep(batch=1).done == 2
    assert sorted(calls) == ["c0", "c1"]


def test_a_claim_is_renewed_while_its_hook_runs(
    store_target: StoreTarget, kek: LocalKEK, clock: Clock
) -> None:
    """A hook running past the lease keeps its claim: a second sweeper finds nothing."""
    import time

    calls: list[str] = []
    with two_sweepers(store_target, kek, clock, calls) as (first, second):

        def long_hook(ids: list[str]) -> None:
            calls.extend(ids)
            clock.now += timedelta(minutes=4)
            time.sleep(1.2)  # the renewer looks every 0.5 s and renews after a third of the lease
            clock.now += timedelta(minutes=7)  # 11 minutes after the claim
            assert second.retention.sweep().done == 0

        first.retention.hook("chats")(long_hook)
        first.retention.track("chats", "c1", at=START - timedelta(days=31))
        assert first.retention.sweep().done == 1
    assert calls == ["c1"]
