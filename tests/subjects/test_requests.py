"""Subject requests (issue 12): opened with a due date, fulfilled by export, erasure,
correction, withdrawal or an explanation, or refused with a reason; PII-free rows and
receipts; overdue requests found; on SQLite and PostgreSQL, across instances."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

import piiguard as pg
from piiguard.keys import LocalKEK
from piiguard.testing import DEFAULT_START, SettableClock, allow_test_reveals
from tests.conftest import StoreTarget
from tests.helpers import CANARY_ID, CANARY_PHONE, assert_no_canary, piiguard_frames_text

SUBJECT = CANARY_ID  # a careless shop keys customers by ID number: it must never be stored


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


def _open(target: StoreTarget, kek: LocalKEK, clock: SettableClock, **options: Any) -> pg.Guard:
    url, schema = target
    guard = pg.Guard.open(url, kek=kek, schema=schema, clock=clock, **options)
    allow_test_reveals(guard)
    return guard


@pytest.fixture
def rows() -> dict[str, dict[str, str]]:
    return {SUBJECT: {"phone": CANARY_PHONE, "city": "北京"}}


@pytest.fixture
def shop(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock, rows: dict[str, Any]
) -> Iterator[pg.Guard]:
    with _open(store_target, kek, clock) as guard:
        _tables(guard, rows)
        guard.consent.register(pg.Purpose("marketing_sms", basis="consent", kinds={"phone"}))
        guard.consent.publish_notice("2026-01", purposes=["marketing_sms"], text="promotions")
        guard.consent.grant(SUBJECT, "marketing_sms", notice="2026-01", evidence={"c": "app"})
        yield guard


def _tables(guard: pg.Guard, rows: dict[str, Any]) -> None:
    @guard.subjects.exporter("customers")
    def export(subject: str) -> Any:
        return rows.get(subject)

    @guard.subjects.eraser("customers")
    def erase(subject: str) -> int:
        return 1 if rows.pop(subject, None) is not None else 0

    @guard.subjects.corrector("customers")
    def correct(subject: str, changes: Any) -> int:
        rows[subject].update(changes)
        return 1


def _stored(guard: pg.Guard) -> str:
    table = guard.store.tables.requests
    with guard.store.engine.connect() as connection:
        return repr(connection.execute(select(table)).all())


# -- due dates -------------------------------------------------------------------------------


def test_the_default_deadline_is_30_calendar_days(shop: pg.Guard) -> None:
    request = shop.requests.open(SUBJECT, kind="access", verified_by="sms_otp")
    assert request.opened_at == DEFAULT_START
    assert request.due_at == datetime(2026, 2, 1, tzinfo=UTC)  # the end of 31 January
    assert request.status == "open"


def test_working_days_skip_weekends_and_holidays_and_count_adjusted_workdays() -> None:
    deadline = pg.RequestDeadline(
        days=3,
        working_days=True,
        holidays=frozenset({date(2026, 1, 2)}),
        workdays=frozenset({date(2026, 1, 4)}),  # a Sunday worked
    )
    # Thursday 1 January: Friday 2 is a holiday, Saturday 3 off, Sunday 4 worked,
    # Monday 5 and Tuesday 6 count: due at the end of the 6th
    assert deadline.due(DEFAULT_START) == datetime(2026, 1, 7, tzinfo=UTC)


@given(
    days=st.integers(1, 60),
    opened=st.datetimes(datetime(2025, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
)
def test_a_working_day_deadline_counts_exactly_its_working_days(
    days: int, opened: datetime
) -> None:
    due = pg.RequestDeadline(days=days, working_days=True).due(opened)
    first = opened.date() + timedelta(days=1)
    counted = [first + timedelta(days=n) for n in range((due.date() - first).days)]
    assert sum(day.weekday() < 5 for day in counted) == days
    assert counted[-1].weekday() < 5  # it ends on a working day
    calendar = pg.RequestDeadline(days=days).due(opened)
    assert calendar <= due


@pytest.mark.parametrize("days", [0, 367, "30", 1.5])
def test_a_deadline_is_a_whole_number_of_days(days: Any) -> None:
    with pytest.raises(pg.InvalidArgument):
        pg.RequestDeadline(days=days)


def test_a_configured_deadline_applies(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock
) -> None:
    deadline = pg.RequestDeadline(days=15, working_days=True)
    with _open(store_target, kek, clock, request_deadline=deadline) as guard:
        request = guard.requests.open("u1", kind="delete", verified_by="id_card_check")
        assert request.due_at == deadline.due(DEFAULT_START)


# -- opening ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        {"kind": "sell"},
        {"verified_by": CANARY_PHONE},
        {"verified_by": f"otp to {CANARY_PHONE}"},
        {"verified_by": ""},
    ],
)
def test_a_bad_request_is_refused_and_nothing_is_stored(
    shop: pg.Guard, call: dict[str, Any]
) -> None:
    given_call: dict[str, Any] = {"kind": "access", "verified_by": "sms_otp"} | call
    with pytest.raises(pg.InvalidArgument) as raised:
        shop.requests.open(SUBJECT, **given_call)
    assert CANARY_PHONE not in str(raised.value)
    assert shop.requests.of(SUBJECT) == []


def test_a_request_names_no_subject_id_in_its_row_its_receipt_or_its_events(
    shop: pg.Guard,
) -> None:
    request = shop.requests.open(SUBJECT, kind="copy", verified_by="sms_otp")
    shop.requests.fulfil(request.request_id, actor="dpo-1", purpose="testing")
    dumped = _stored(shop) + repr(shop.requests.of(SUBJECT)) + repr(list(shop.audit.events()))
    for canary in (SUBJECT, SUBJECT[:14], CANARY_PHONE):
        assert canary not in dumped


# -- fulfilling --------------------------------------------------------------------------------


def test_a_copy_is_a_portable_json_export_with_a_schema_and_version(shop: pg.Guard) -> None:
    request = shop.requests.open(SUBJECT, kind="copy", verified_by="sms_otp")
    copy, closed = shop.requests.fulfil(request.request_id, actor="dpo-1", purpose="testing")
    parsed = json.loads(json.dumps(copy, ensure_ascii=False))
    assert (parsed["format"], parsed["version"]) == ("piiguard.export", 1)
    assert parsed["customers"] == {"phone": CANARY_PHONE, "city": "北京"}
    assert "consent" in parsed
    assert "sharing" in parsed
    assert closed.status == "fulfilled"
    assert closed.actor == "dpo-1"
    assert "customers" in closed.receipt["parts"]
    assert shop.requests.get(request.request_id) == closed
    (export,) = shop.audit.events(action="export")
    assert export.actor == "dpo-1"
    actions = [(e.action, e.actor) for e in shop.audit.events() if e.action.startswith("request")]
    assert actions == [("request_open", "unnamed"), ("request_fulfil", "dpo-1")]


def test_an_access_request_needs_a_registered_purpose_and_stays_open_without_one(
    shop: pg.Guard,
) -> None:
    request = shop.requests.open(SUBJECT, kind="access", verified_by="sms_otp")
    with pytest.raises(pg.AccessDenied):
        shop.requests.fulfil(request.request_id, actor="dpo-1")
    assert shop.requests.get(request.request_id).status == "open"


def test_a_delete_request_erases_the_subject_everywhere(
    shop: pg.Guard, rows: dict[str, Any]
) -> None:
    request = shop.requests.open(SUBJECT, kind="delete", verified_by="sms_otp")
    done, closed = shop.requests.fulfil(request.request_id, actor="dpo-1")
    assert rows == {}
    assert done["completed"] is True
    assert closed.receipt["erasure_receipt"] == done["erasure_receipt"]
    assert not shop.consent.check(SUBJECT, "marketing_sms")
    (erase,) = shop.audit.events(action="erase")
    assert erase.actor == "dpo-1"


def test_a_correction_goes_through_the_tables_correctors(
    shop: pg.Guard, rows: dict[str, Any]
) -> None:
    request = shop.requests.open(SUBJECT, kind="correct", verified_by="sms_otp")
    with pytest.raises(pg.InvalidArgument):  # a table with no corrector: nothing changes
        shop.requests.fulfil(
            request.request_id, actor="dpo-1", changes={"customers": {"city": "上海"}, "x": {}}
        )
    assert rows[SUBJECT]["city"] == "北京"
    assert shop.requests.get(request.request_id).status == "open"
    answer, closed = shop.requests.fulfil(
        request.request_id, actor="dpo-1", changes={"customers": {"city": "上海"}}
    )
    assert rows[SUBJECT]["city"] == "上海"
    assert answer == closed.receipt == {"corrected": {"customers": 1}}
    assert "上海" not in _stored(shop)


def test_a_withdrawal_withdraws_every_consent_or_those_named(shop: pg.Guard) -> None:
    request = shop.requests.open(SUBJECT, kind="withdraw", verified_by="sms_otp")
    answer, _ = shop.requests.fulfil(request.request_id, actor="dpo-1")
    assert answer == {"withdrawn": ["marketing_sms"]}
    assert not shop.consent.check(SUBJECT, "marketing_sms")


def test_an_explanation_names_the_purposes_and_the_recipients(shop: pg.Guard) -> None:
    request = shop.requests.open(SUBJECT, kind="explain", verified_by="sms_otp")
    answer, closed = shop.requests.fulfil(request.request_id, actor="dpo-1")
    names = {p["name"]: p for p in answer["purposes"]}
    assert names["marketing_sms"]["basis"] == "consent"
    assert answer["recipients"] == []
    assert closed.receipt == {"purposes": len(names), "recipients": 0}


def test_a_closed_request_is_not_done_twice_even_from_another_instance(
    shop: pg.Guard, store_target: StoreTarget, kek: LocalKEK, clock: SettableClock
) -> None:
    request = shop.requests.open(SUBJECT, kind="withdraw", verified_by="sms_otp")
    with _open(store_target, kek, clock) as other:
        _, closed = other.requests.fulfil(request.request_id, actor="dpo-2")
        assert closed.actor == "dpo-2"
    with pytest.raises(pg.InvalidArgument):
        shop.requests.fulfil(request.request_id, actor="dpo-1")
    with pytest.raises(pg.InvalidArgument):
        shop.requests.refuse(request.request_id, reason="excessive", actor="dpo-1")
    with pytest.raises(pg.InvalidArgument):
        shop.requests.fulfil("req_nope", actor="dpo-1")
    with pytest.raises(pg.InvalidArgument):
        shop.requests.fulfil(request.request_id, actor="")


# -- refusals and the overdue ------------------------------------------------------------------


def test_a_refusal_records_one_of_the_known_reasons(shop: pg.Guard) -> None:
    request = shop.requests.open(SUBJECT, kind="delete", verified_by="sms_otp")
    with pytest.raises(pg.InvalidArgument):
        shop.requests.refuse(request.request_id, reason=f"call {CANARY_PHONE}", actor="dpo-1")
    refused = shop.requests.refuse(request.request_id, reason="legal_obligation", actor="dpo-1")
    assert (refused.status, refused.reason) == ("refused", "legal_obligation")
    assert CANARY_PHONE not in _stored(shop)
    (event,) = shop.audit.events(action="request_refuse")
    assert event.actor == "dpo-1"


def test_overdue_lists_open_requests_past_their_due_date(
    shop: pg.Guard, clock: SettableClock
) -> None:
    late = shop.requests.open(SUBJECT, kind="access", verified_by="sms_otp")
    done = shop.requests.open(SUBJECT, kind="explain", verified_by="sms_otp")
    refused = shop.requests.open(SUBJECT, kind="delete", verified_by="sms_otp")
    clock.advance(timedelta(days=10))
    later = shop.requests.open("u2", kind="copy", verified_by="sms_otp")
    shop.requests.fulfil(done.request_id, actor="dpo-1")
    shop.requests.refuse(refused.request_id, reason="excessive", actor="dpo-1")
    assert shop.requests.overdue() == []
    clock.set(late.due_at)
    assert shop.requests.overdue() == []  # due at that instant: not yet late
    clock.advance(timedelta(seconds=1))
    assert [r.request_id for r in shop.requests.overdue()] == [late.request_id]
    beyond = later.due_at + timedelta(days=1)
    assert [r.request_id for r in shop.requests.overdue(beyond)] == [
        late.request_id,
        later.request_id,
    ]
    with pytest.raises(pg.InvalidArgument):
        shop.requests.overdue(datetime(2026, 3, 1))


# -- found by an attack review -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "verified_by"),
    [("acess", "sms_otp"), ("access", "otp_13812345678"), ("access", "id11010519491231002X")],
)
def test_a_refused_request_leaves_no_subject_id_in_the_error_s_frames(
    shop: pg.Guard, kind: Any, verified_by: str
) -> None:
    with pytest.raises(pg.InvalidArgument) as raised:
        shop.requests.open(SUBJECT, kind=kind, verified_by=verified_by)
    assert_no_canary(piiguard_frames_text(raised.value))
    assert shop.requests.of(SUBJECT) == []


def test_a_failed_fulfil_leaves_no_subject_id_in_the_error_s_frames(shop: pg.Guard) -> None:
    request = shop.requests.open(SUBJECT, kind="access", verified_by="sms_otp")
    with pytest.raises(pg.AccessDenied) as raised:  # no purpose for the export
        shop.requests.fulfil(request.request_id, actor="dpo-1")
    assert_no_canary(piiguard_frames_text(raised.value))
    assert shop.requests.get(request.request_id).status == "open"


def test_a_request_being_fulfilled_is_not_fulfilled_again_by_another_instance(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock, rows: dict[str, Any]
) -> None:
    calls: list[str] = []
    with _open(store_target, kek, clock) as shop, _open(store_target, kek, clock) as other:
        _tables(other, rows)

        @shop.subjects.corrector("customers")
        def correct(subject: str, changes: Any) -> int:
            calls.append(subject)
            with pytest.raises(pg.InvalidArgument):  # meanwhile, on another instance
                other.requests.fulfil(request.request_id, actor="dpo-2", changes=changes)
            return 1

        request = shop.requests.open(SUBJECT, kind="correct", verified_by="sms_otp")
        _, closed = shop.requests.fulfil(
            request.request_id, actor="dpo-1", changes={"customers": {"city": "上海"}}
        )
        assert closed.status == "fulfilled"
        assert len(calls) == 1


def test_an_actor_the_audit_log_refuses_is_refused_before_any_work(
    shop: pg.Guard, rows: dict[str, Any]
) -> None:
    request = shop.requests.open(SUBJECT, kind="delete", verified_by="sms_otp")
    with pytest.raises(pg.InvalidArgument):
        shop.requests.fulfil(request.request_id, actor=CANARY_PHONE)
    assert SUBJECT in rows  # nothing erased
    assert shop.requests.get(request.request_id).status == "open"
    assert CANARY_PHONE not in _stored(shop)


def test_a_withdrawal_naming_an_unknown_purpose_withdraws_nothing(shop: pg.Guard) -> None:
    request = shop.requests.open(SUBJECT, kind="withdraw", verified_by="sms_otp")
    with pytest.raises(pg.UnknownPurpose):
        shop.requests.fulfil(request.request_id, actor="dpo-1", purposes=["marketing_sms", "x"])
    assert shop.consent.check(SUBJECT, "marketing_sms")
    answer, _ = shop.requests.fulfil(
        request.request_id, actor="dpo-1", purposes=(p for p in ["marketing_sms"])
    )
    assert answer == {"withdrawn": ["marketing_sms"]}  # a generator is read once, fully
    assert not shop.consent.check(SUBJECT, "marketing_sms")


def test_a_deletion_that_did_not_complete_stays_open_until_it_does(
    shop: pg.Guard, rows: dict[str, Any]
) -> None:
    broken = {"down": True}

    @shop.subjects.eraser("orders")
    def erase_orders(subject: str) -> int:
        if broken["down"]:
            raise RuntimeError("orders database down")
        return 1

    request = shop.requests.open(SUBJECT, kind="delete", verified_by="sms_otp")
    done, still = shop.requests.fulfil(request.request_id, actor="dpo-1")
    assert done["completed"] is False
    assert still.status == "open"
    assert still.receipt["completed"] is False
    broken["down"] = False
    done, closed = shop.requests.fulfil(request.request_id, actor="dpo-1")
    assert done["completed"] is True
    assert closed.status == "fulfilled"


def test_an_erased_subject_s_requests_name_nobody_and_open_ones_are_closed(
    shop: pg.Guard,
) -> None:
    waiting = shop.requests.open(SUBJECT, kind="access", verified_by="sms_otp")
    request = shop.requests.open(SUBJECT, kind="delete", verified_by="sms_otp")
    shop.requests.fulfil(request.request_id, actor="dpo-1")
    assert shop.requests.of(SUBJECT) == []
    closed = shop.requests.get(waiting.request_id)
    assert (closed.status, closed.reason) == ("refused", "no_such_data")
    assert shop.requests.get(request.request_id).status == "fulfilled"


def test_overdue_reads_a_time_in_any_zone(shop: pg.Guard) -> None:
    late = shop.requests.open(SUBJECT, kind="access", verified_by="sms_otp")
    beijing = timezone(timedelta(hours=8))
    just_before = (late.due_at - timedelta(minutes=1)).astimezone(beijing)
    just_after = (late.due_at + timedelta(minutes=1)).astimezone(timezone(timedelta(hours=-8)))
    assert shop.requests.overdue(just_before) == []
    assert [r.request_id for r in shop.requests.overdue(just_after)] == [late.request_id]


def test_a_request_whose_kind_was_changed_by_hand_does_nothing(
    shop: pg.Guard, rows: dict[str, Any]
) -> None:
    """An insider turns an explanation into a deletion: the sealed subject is bound to the
    kind, so the DPO's fulfil opens nothing."""
    request = shop.requests.open(SUBJECT, kind="explain", verified_by="sms_otp")
    table = shop.store.tables.requests
    with shop.store.engine.begin() as connection:
        connection.execute(update(table).values(kind="delete"))
    with pytest.raises(pg.DecryptionError):
        shop.requests.fulfil(request.request_id, actor="dpo-1")
    assert SUBJECT in rows


def test_holidays_are_dates_not_datetimes() -> None:
    with pytest.raises(pg.InvalidArgument):
        pg.RequestDeadline(working_days=True, holidays=frozenset({DEFAULT_START}))


def test_a_request_being_fulfilled_cannot_be_refused_meanwhile(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock, rows: dict[str, Any]
) -> None:
    with _open(store_target, kek, clock) as shop, _open(store_target, kek, clock) as other:

        @shop.subjects.corrector("customers")
        def correct(subject: str, changes: Any) -> int:
            with pytest.raises(pg.InvalidArgument):
                other.requests.refuse(request.request_id, reason="excessive", actor="dpo-2")
            return 1

        request = shop.requests.open(SUBJECT, kind="correct", verified_by="sms_otp")
        _, closed = shop.requests.fulfil(
            request.request_id, actor="dpo-1", changes={"customers": {"city": "上海"}}
        )
        assert (closed.status, closed.actor) == ("fulfilled", "dpo-1")


def test_a_claim_taken_over_after_its_lease_is_not_closed_by_its_old_holder(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock, rows: dict[str, Any]
) -> None:
    """The first instance stalls past the lease; the second takes the request over and
    does it; the first, waking, neither reopens nor closes it."""
    with _open(store_target, kek, clock) as shop, _open(store_target, kek, clock) as other:
        _tables(other, rows)

        @shop.subjects.corrector("customers")
        def stall(subject: str, changes: Any) -> int:
            clock.advance(timedelta(minutes=16))
            _, done = other.requests.fulfil(
                request.request_id, actor="dpo-2", changes={"customers": changes}
            )
            assert done.status == "fulfilled"
            raise RuntimeError("the first instance fails after all")

        request = shop.requests.open(SUBJECT, kind="correct", verified_by="sms_otp")
        with pytest.raises(RuntimeError):
            shop.requests.fulfil(
                request.request_id, actor="dpo-1", changes={"customers": {"city": "上海"}}
            )
        final = shop.requests.get(request.request_id)
        assert (final.status, final.actor) == ("fulfilled", "dpo-2")


def test_an_old_holder_failing_does_not_reopen_a_request_another_is_working_on(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock, rows: dict[str, Any]
) -> None:
    """A stalls past the lease, B takes the request over, A's work then fails while B is
    still working: A's release must leave B's claim alone, or a third instance claims the
    request and the work runs twice (found by an attack review)."""
    taken, working, finish = threading.Event(), threading.Event(), threading.Event()
    calls: list[str] = []
    with _open(store_target, kek, clock) as shop, _open(store_target, kek, clock) as other:

        @other.subjects.corrector("customers")
        def second(subject: str, changes: Any) -> int:
            calls.append("B")
            working.set()
            finish.wait(10)
            return 1

        @shop.subjects.corrector("customers")
        def first(subject: str, changes: Any) -> int:
            calls.append("A")
            clock.advance(timedelta(minutes=16))
            taken.set()
            working.wait(10)
            raise RuntimeError("the first instance fails after all")

        request = shop.requests.open(SUBJECT, kind="correct", verified_by="sms_otp")
        done: list[pg.SubjectRequest] = []

        def take_over() -> None:
            taken.wait(10)
            done.append(
                other.requests.fulfil(
                    request.request_id, actor="dpo-2", changes={"customers": {"city": "上海"}}
                )[1]
            )

        thread = threading.Thread(target=take_over)
        thread.start()
        with pytest.raises(RuntimeError):
            shop.requests.fulfil(
                request.request_id, actor="dpo-1", changes={"customers": {"city": "上海"}}
            )
        assert shop.requests.get(request.request_id).status == "working"  # still B's
        with pytest.raises(pg.InvalidArgument):
            shop.requests.fulfil(request.request_id, actor="dpo-3", changes={"customers": {}})
        finish.set()
        thread.join(10)
        assert calls == ["A", "B"]
        assert (done[0].status, done[0].actor) == ("fulfilled", "dpo-2")


def test_a_request_whose_event_cannot_be_recorded_leaves_no_subject_id_in_frames(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock
) -> None:
    class Failing:
        def record(self, event: pg.AccessEvent) -> None:
            if event.action == "request_open":
                raise RuntimeError("sink down")

    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, clock=clock, events=Failing()) as guard:
        with pytest.raises(pg.EventNotRecorded) as raised:
            guard.requests.open(SUBJECT, kind="access", verified_by="sms_otp")
        assert_no_canary(piiguard_frames_text(raised.value))


def test_a_value_passed_as_a_name_or_an_id_stays_out_of_piiguard_s_frames(
    shop: pg.Guard,
) -> None:
    """A phone given by mistake as the actor, the reason or the request id is refused, and
    no piiguard frame the error passes through holds it (found by an attack review)."""
    request = shop.requests.open(SUBJECT, kind="access", verified_by="sms_otp")
    for call in (
        lambda: shop.requests.fulfil(request.request_id, actor=CANARY_PHONE),
        lambda: shop.requests.refuse(request.request_id, reason=CANARY_PHONE, actor="dpo-1"),
        lambda: shop.requests.refuse(request.request_id, reason="excessive", actor=CANARY_PHONE),
        lambda: shop.requests.get(CANARY_PHONE),
        lambda: shop.requests.fulfil(CANARY_ID, actor="dpo-1"),
    ):
        with pytest.raises(pg.PiiGuardError) as raised:
            call()
        assert_no_canary(piiguard_frames_text(raised.value))
    assert shop.requests.get(request.request_id).status == "open"
