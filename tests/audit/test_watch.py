"""Access watch (issue 11): per-actor sliding-window counts of reveals, role limits and a
multiple of the actor's usual rate; an alert callback, an audit event, and, if configured,
AccessDenied on every instance until someone else resets it. Injected clock throughout."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import structlog
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import piiguard as pg
from piiguard.audit.watch import _Tally
from piiguard.keys import LocalKEK
from piiguard.testing import SettableClock, throwaway_guard
from tests.conftest import StoreTarget
from tests.helpers import CANARY_PHONE

CONTEXT = {"table": "customers", "field": "phone", "id": "c1"}
POLICY = pg.AccessPolicy([pg.Role("cs", purposes={"testing"}, clear={"phone"})])


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def alerts() -> list[pg.AccessAlert]:
    return []


def _open(target: StoreTarget, kek: LocalKEK, clock: SettableClock, watch: Any) -> pg.Guard:
    url, schema = target
    guard = pg.Guard.open(url, kek=kek, schema=schema, clock=clock, watch=watch, access=POLICY)
    pg.testing.allow_test_reveals(guard)
    return guard


@pytest.fixture
def watched(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock, alerts: list[Any]
) -> Iterator[pg.Guard]:
    watch = pg.AccessWatch(
        limits={"*": 5}, block=True, on_alert=alerts.append, refresh=timedelta(0)
    )
    with _open(store_target, kek, clock, watch) as guard:
        yield guard


def _decrypt(guard: pg.Guard, actor: str = "cs-7", times: int = 1) -> None:
    ciphertext = guard.encrypt(CANARY_PHONE, context=CONTEXT)
    for _ in range(times):
        guard.decrypt(ciphertext, context=CONTEXT, actor=actor, purpose="testing")


def test_a_blocking_watch_stops_the_actor_at_the_limit_on_every_instance(
    watched: pg.Guard,
    store_target: StoreTarget,
    kek: LocalKEK,
    clock: SettableClock,
    alerts: list[pg.AccessAlert],
) -> None:
    _decrypt(watched, times=5)
    with pytest.raises(pg.AccessDenied) as raised:
        _decrypt(watched)
    assert raised.value.reason == "watch_blocked"
    (alert,) = alerts
    assert (alert.actor, alert.count, alert.limit, alert.reason, alert.blocked) == (
        "cs-7",
        6,
        5,
        "limit",
        True,
    )
    assert watched.watch.blocked() == ["cs-7"]
    second = pg.AccessWatch(limits={"*": 1000}, block=True, refresh=timedelta(0))
    with _open(store_target, kek, clock, second) as other:
        with pytest.raises(pg.AccessDenied):
            _decrypt(other)  # the block holds on an instance with looser limits
        _decrypt(other, actor="cs-8")  # others are not stopped
    clock.advance(timedelta(hours=2))
    with pytest.raises(pg.AccessDenied):
        _decrypt(watched)  # a block outlives the window: only a reset lifts it
    (event,) = watched.audit.events(action="access_alert")
    assert (event.actor, event.result, event.count) == ("cs-7", "blocked", 6)


def test_a_reset_by_someone_else_lifts_the_block_everywhere_and_restarts_the_count(
    watched: pg.Guard, store_target: StoreTarget, kek: LocalKEK, clock: SettableClock
) -> None:
    _decrypt(watched, times=5)
    with pytest.raises(pg.AccessDenied):
        _decrypt(watched)
    with pytest.raises(pg.AccessDenied) as raised:
        watched.watch.reset("cs-7", by="cs-7")
    assert raised.value.reason == "self_approval"
    with pytest.raises(pg.InvalidArgument) as named:  # kept in clear: never a phone
        watched.watch.reset("cs-7", by="sec:138-1234-5678")
    assert "138" not in str(named.value)
    watch = pg.AccessWatch(limits={"*": 5}, block=True, refresh=timedelta(0))
    with _open(store_target, kek, clock, watch) as other:
        assert other.watch.reset("cs-7", by="lead-1")
        assert not other.watch.reset("cs-7", by="lead-1")
    _decrypt(watched, times=5)  # counted afresh from the reset event, whatever the clock
    with pytest.raises(pg.AccessDenied):
        _decrypt(watched)
    (reset,) = watched.audit.events(action="watch_reset")
    assert (reset.actor, reset.detail["context"]["by"]) == ("cs-7", "lead-1")


def test_a_batch_that_would_cross_the_limit_reveals_nothing(
    watched: pg.Guard, alerts: list[pg.AccessAlert]
) -> None:
    ciphertext = watched.encrypt(CANARY_PHONE, context=CONTEXT)
    with pytest.raises(pg.AccessDenied):
        watched.decrypt_many(
            [ciphertext] * 6, contexts=[CONTEXT] * 6, actor="svc:x", purpose="testing"
        )
    assert alerts[0].count == 6
    results = [(e.action, e.result) for e in watched.audit.events(actor="svc:x")]
    assert results == [("access_alert", "blocked"), ("decrypt", "denied")]


def test_counts_slide_with_the_window(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock, alerts: list[Any]
) -> None:
    watch = pg.AccessWatch(
        window=timedelta(minutes=10), limits={"*": 3}, on_alert=alerts.append, refresh=timedelta(0)
    )
    with _open(store_target, kek, clock, watch) as guard:
        for _ in range(6):  # 3 per 10 minutes, spread out: never over
            _decrypt(guard)
            clock.advance(timedelta(minutes=4))
        assert alerts == []
        _decrypt(guard, times=3)
        assert len(alerts) == 1  # not blocking: alerted once, the reveal went through
        _decrypt(guard, times=3)
        assert len(alerts) == 1  # one alert per window, not one per reveal
        assert watch.block is False
        assert guard.watch.blocked() == []
        assert guard.watch.count("cs-7") == 8  # at 16 and 20 minutes, then 3 and 3
        clock.advance(timedelta(minutes=11))
        assert guard.watch.count("cs-7") == 0
        _decrypt(guard, times=4)
        assert len(alerts) == 2


def test_a_role_limit_holds_for_reveals_in_that_role(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock, alerts: list[Any]
) -> None:
    watch = pg.AccessWatch(
        limits={"cs": 2, "*": 100}, block=True, on_alert=alerts.append, refresh=timedelta(0)
    )
    with _open(store_target, kek, clock, watch) as guard:
        record = {"phone": CANARY_PHONE}
        for _ in range(2):
            guard.reveal(
                record, actor="cs-7", role="cs", purpose="testing", kinds={"phone": "phone"}
            )
        with pytest.raises(pg.AccessDenied):
            guard.reveal(
                record, actor="cs-7", role="cs", purpose="testing", kinds={"phone": "phone"}
            )
        assert alerts[0].role == "cs"
        assert [e.result for e in guard.audit.events(action="reveal")] == ["ok", "ok", "denied"]


def test_a_role_that_sees_only_masked_values_is_held_to_its_limit(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock, alerts: list[Any]
) -> None:
    """A masked customer list copied out a page at a time is still a customer list: every
    value shown counts, masked ones too, on this instance and in the store's count."""
    url, schema = store_target
    policy = pg.AccessPolicy([pg.Role("courier", purposes={"testing"}, masked={"phone"})])
    watch = pg.AccessWatch(
        limits={"courier": 4}, block=True, on_alert=alerts.append, refresh=timedelta(0)
    )
    record = {"phone": CANARY_PHONE, "backup": "13912345678"}
    kinds = {"phone": "phone", "backup": "phone"}
    with pg.Guard.open(
        url, kek=kek, schema=schema, clock=clock, watch=watch, access=policy
    ) as guard:
        pg.testing.allow_test_reveals(guard)
        for _ in range(2):
            shown = guard.reveal(
                record, actor="c-1", role="courier", purpose="testing", kinds=kinds
            )
            assert CANARY_PHONE not in str(shown)
        with pytest.raises(pg.AccessDenied):
            guard.reveal(record, actor="c-1", role="courier", purpose="testing", kinds=kinds)
        assert alerts[0].role == "courier"
        shown_in_all = guard.audit.events(action="reveal", actor="c-1")
        assert sum(e.count for e in shown_in_all if e.result == "ok") == 4
    with pg.Guard.open(
        url, kek=kek, schema=schema, clock=clock, watch=watch, access=policy
    ) as other:
        pg.testing.allow_test_reveals(other)
        with pytest.raises(pg.AccessDenied):  # blocked on every instance
            other.reveal(record, actor="c-1", role="courier", purpose="testing", kinds=kinds)


def test_a_reveal_whose_write_stalls_stays_counted_until_it_settles() -> None:
    """A write held up for minutes (a lock on PostgreSQL) is still in flight: only its own
    settling or failure ends it, or two windows of the clock."""
    tally = _Tally()
    start = SettableClock()()
    tally.admit(3, start)
    assert tally.in_flight(start - timedelta(minutes=20)) == 3
    assert tally.in_flight(start) == 3  # admitted at the horizon: still counted
    tally.settle(1)
    assert tally.in_flight(start) == 2
    tally.release(2)
    assert tally.in_flight(start) == 0
    tally.admit(1, start)
    assert tally.in_flight(start + timedelta(seconds=1)) == 0  # older than the horizon


def test_the_baseline_is_a_multiple_of_the_actor_s_usual_rate(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock, alerts: list[Any]
) -> None:
    watch = pg.AccessWatch(
        baseline=5,
        baseline_period=timedelta(hours=10),
        baseline_floor=2,
        on_alert=alerts.append,
        refresh=timedelta(0),
    )
    with _open(store_target, kek, clock, watch) as guard:
        for _ in range(10):  # two an hour for ten hours: the usual rate
            _decrypt(guard, times=2)
            clock.advance(timedelta(hours=1))
        _decrypt(guard, times=10)  # five times the usual rate: still allowed
        assert alerts == []
        _decrypt(guard)
        (alert,) = alerts
        assert (alert.reason, alert.limit, alert.count, alert.blocked) == (
            "baseline",
            10,
            11,
            False,
        )
        _decrypt(guard, actor="new-hire", times=3)  # no history: the floor holds
        assert (alerts[-1].actor, alerts[-1].limit) == ("new-hire", 2)


def test_an_alert_callback_that_fails_does_not_stop_the_watch(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock
) -> None:
    def broken(alert: pg.AccessAlert) -> None:
        raise RuntimeError("pager down")

    watch = pg.AccessWatch(limits={"*": 1}, block=True, on_alert=broken, refresh=timedelta(0))
    with (
        _open(store_target, kek, clock, watch) as guard,
        structlog.testing.capture_logs() as logs,
    ):
        _decrypt(guard)
        with pytest.raises(pg.AccessDenied):
            _decrypt(guard)
    assert [entry["event"] for entry in logs] == ["access_alert", "access_alert_callback_failed"]
    assert CANARY_PHONE not in repr(logs)


def test_without_a_watch_nothing_is_counted(guard: pg.Guard) -> None:
    _decrypt(guard, times=50)
    assert guard.watch.config is None
    assert list(guard.audit.events(action="access_alert")) == []


@pytest.mark.parametrize(
    "options",
    [
        {"window": timedelta(0)},
        {"limits": {"*": -1}},
        {"limits": {"*": 1.5}},
        {"limits": {"": 1}},
        {"baseline": 1},
        {"baseline": True},
        {"refresh": timedelta(seconds=-1)},
        {"baseline_floor": -1},
        {"on_alert": "pager"},
    ],
)
def test_a_malformed_watch_is_refused_when_built(options: Any) -> None:
    with pytest.raises(pg.InvalidArgument):
        pg.AccessWatch(**options)


class WatchMachine(RuleBasedStateMachine):
    """The watch against a plain model: a list of (time, count) reveals per actor, a block
    set, and the time of each actor's last reset."""

    LIMIT = 4
    WINDOW = timedelta(minutes=30)

    @initialize()
    def start(self) -> None:
        self.clock = SettableClock()
        self.context = throwaway_guard(
            clock=self.clock,
            watch=pg.AccessWatch(
                window=self.WINDOW, limits={"*": self.LIMIT}, block=True, refresh=timedelta(0)
            ),
        )
        self.guard = self.context.__enter__()
        self.ciphertext = self.guard.encrypt(CANARY_PHONE, context=CONTEXT)
        self.revealed: dict[str, list[tuple[Any, int, int]]] = {}
        self.blocked: set[str] = set()
        self.reset_at: dict[str, int] = {}  # the step of the actor's last reset
        self.step = 0

    def teardown(self) -> None:
        if hasattr(self, "context"):
            self.context.__exit__(None, None, None)

    def _counted(self, actor: str) -> int:
        start = self.clock() - self.WINDOW
        after = self.reset_at.get(actor, -1)
        return sum(n for at, n, step in self.revealed.get(actor, []) if at > start and step > after)

    @rule(actor=st.sampled_from(["a", "b"]), count=st.integers(1, 3))
    def reveal(self, actor: str, count: int) -> None:
        allowed = actor not in self.blocked and self._counted(actor) + count <= self.LIMIT
        try:
            self.guard.decrypt_many(
                [self.ciphertext] * count,
                contexts=[CONTEXT] * count,
                actor=actor,
                purpose="testing",
            )
        except pg.AccessDenied:
            assert not allowed
            self.blocked.add(actor)
        else:
            assert allowed
            self.step += 1
            self.revealed.setdefault(actor, []).append((self.clock(), count, self.step))

    @rule(spelling=st.sampled_from(["a", "Ａ", "b "]), count=st.integers(1, 3))
    def fail(self, spelling: str, count: int) -> None:
        """A batch with a tampered row, by any spelling of an actor: refused as a reveal
        would be, else it reveals nothing and counts nothing."""
        actor = {"a": "a", "Ａ": "a", "b ": "b"}[spelling]
        allowed = actor not in self.blocked and self._counted(actor) + count <= self.LIMIT
        try:
            self.guard.decrypt_many(
                [self.ciphertext] * count,
                contexts=[CONTEXT] * (count - 1) + [{**CONTEXT, "id": "other"}],
                actor=spelling,
                purpose="testing",
            )
        except pg.AccessDenied:
            assert not allowed
            self.blocked.add(actor)
        except pg.DecryptionError:
            assert allowed

    @rule(minutes=st.integers(1, 40))
    def wait(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @rule(actor=st.sampled_from(["a", "b"]))
    def reset(self, actor: str) -> None:
        assert self.guard.watch.reset(actor, by="lead") == (actor in self.blocked)
        if actor in self.blocked:
            self.blocked.discard(actor)
            self.step += 1
            self.reset_at[actor] = self.step

    @invariant()
    def blocks_agree(self) -> None:
        if hasattr(self, "guard"):
            assert set(self.guard.watch.blocked()) == self.blocked


WatchMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=12, deadline=None)
test_the_watch_matches_a_plain_model = WatchMachine.TestCase


def test_a_version_7_store_gains_grants_blocks_and_the_actor_index(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock
) -> None:
    """A store written before schema 8 (no grants table, no actor-and-time or watch index)
    is migrated on open, its audit log intact, and the watch works on it."""
    from sqlalchemy import inspect, text, update

    from piiguard.store._schema import SCHEMA_VERSION

    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, clock=clock) as guard:
        pg.testing.allow_test_reveals(guard)
        _decrypt(guard)
        tables = guard.store.tables
        prefix = f'"{schema}".' if schema else ""
        with guard.store.engine.begin() as connection:  # what schema 7 had
            tables.access_grants.drop(connection)
            connection.execute(text(f"DROP INDEX {prefix}piiguard_audit_watch"))
            prefix = f'"{schema}".' if schema else ""
            connection.execute(text(f"DROP INDEX {prefix}piiguard_audit_actor_at"))
            connection.execute(
                text(
                    f"CREATE INDEX piiguard_audit_actor ON {prefix}piiguard_audit_events"
                    " (actor, seq)"
                )
            )
            connection.execute(
                update(tables.meta).where(tables.meta.c.name == "schema_version").values(value="7")
            )
    watch = pg.AccessWatch(limits={"*": 1}, block=True, refresh=timedelta(0))
    with _open(store_target, kek, clock, watch) as guard:
        assert guard.store.schema_version == SCHEMA_VERSION == 12
        with guard.store.engine.connect() as connection:
            names = {
                i["name"] for i in inspect(connection).get_indexes("piiguard_audit_events", schema)
            }
        assert {"piiguard_audit_actor_at", "piiguard_audit_watch"} <= names
        assert "piiguard_audit_registered" in names  # schema 10: registrations by sequence
        assert "piiguard_audit_actor" not in names  # the actor-and-time index serves both
        with pytest.raises(pg.AccessDenied):
            _decrypt(guard)  # the reveal before the migration counts
        assert guard.watch.blocked() == ["cs-7"]
        assert guard.audit.verify().ok


def test_a_stopped_actor_cannot_open_consent_proofs_either(
    watched: pg.Guard, alerts: list[pg.AccessAlert]
) -> None:
    """A consent proof opens a subject's evidence: it counts towards the limit, and a
    stopped actor is refused (audited as denied)."""
    watched.consent.register(pg.Purpose("marketing_sms", basis="consent", kinds={"phone"}))
    watched.consent.publish_notice("2026-11", purposes=["marketing_sms"])
    watched.consent.grant("u1", "marketing_sms", notice="2026-11", evidence={"ip": "203.0.113.9"})
    for _ in range(5):
        watched.consent.proof("u1", "marketing_sms", actor="cs-7")
    with pytest.raises(pg.AccessDenied) as raised:
        watched.consent.proof("u1", "marketing_sms", actor="cs-7")
    assert raised.value.reason == "watch_blocked"
    results = [e.result for e in watched.audit.events(action="consent_proof")]
    assert results == ["ok"] * 5 + ["denied"]
    with pytest.raises(pg.InvalidArgument):
        watched.consent.proof("u1", 13812345678, actor="cs-8")  # type: ignore[arg-type]


@pytest.mark.parametrize("by", ["CS-7", "cs-7 ", "ｃｓ-７"])
def test_nobody_lifts_their_own_block_under_another_spelling(watched: pg.Guard, by: str) -> None:
    _decrypt(watched, times=5)
    with pytest.raises(pg.AccessDenied):
        _decrypt(watched)
    with pytest.raises(pg.AccessDenied) as raised:
        watched.watch.reset("cs-7", by=by)
    assert raised.value.reason == "self_approval"
    assert watched.watch.blocked() == ["cs-7"]


def test_a_block_an_insider_deletes_still_stands_until_verify_says_so(
    watched: pg.Guard,
) -> None:
    """The block is the audit event itself: deleting it breaks the chain, and the watch
    does not take a forged reset (it cannot be chained without the KEK)."""
    from sqlalchemy import delete

    _decrypt(watched, times=5)
    with pytest.raises(pg.AccessDenied):
        _decrypt(watched)
    events = watched.store.tables.audit_events
    with watched.store.engine.begin() as connection:
        connection.execute(delete(events).where(events.c.action == "access_alert"))
    report = watched.audit.verify()
    assert not report.ok
    with pytest.raises(pg.AccessDenied):
        _decrypt(watched)  # this instance keeps the block it set


def test_parallel_reveals_do_not_carry_an_actor_past_a_blocking_limit(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock
) -> None:
    """Eight threads revealing batches of 60 against a limit of 100: one batch passes, not
    several (a re-read of the shared count must not forget reveals still in flight)."""
    import threading

    watch = pg.AccessWatch(limits={"*": 100}, block=True, refresh=timedelta(0))
    with _open(store_target, kek, clock, watch) as guard:
        sealed = guard.encrypt(CANARY_PHONE, context=CONTEXT)
        passed: list[int] = []
        start = threading.Barrier(8)

        def batch() -> None:
            start.wait()
            try:
                guard.decrypt_many(
                    [sealed] * 60, contexts=[CONTEXT] * 60, actor="svc:x", purpose="testing"
                )
            except pg.AccessDenied:
                return
            passed.append(60)

        threads = [threading.Thread(target=batch) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(passed) == 60


@pytest.mark.parametrize("spelling", ["CS-7", " cs-7", "ｃｓ-７", "ＣＳ－７"])
def test_another_spelling_of_an_actor_is_the_same_actor_to_the_watch(
    watched: pg.Guard, spelling: str
) -> None:
    """Case, width and spacing do not make a second person with a fresh count: events,
    counts, blocks and resets all name the actor in one spelling."""
    _decrypt(watched, times=3)
    _decrypt(watched, actor=spelling, times=2)
    with pytest.raises(pg.AccessDenied):
        _decrypt(watched, actor=spelling)
    assert watched.watch.blocked() == ["cs-7"]
    assert watched.watch.count(spelling) == 5
    assert {e.actor for e in watched.audit.events(actor=spelling)} == {"cs-7"}
    assert watched.audit.scope(actors=[spelling]).values == 5
    assert watched.watch.reset(spelling, by="lead-1")
    _decrypt(watched)


def test_reveals_that_fail_reveal_nothing_and_do_not_count(
    watched: pg.Guard, clock: SettableClock
) -> None:
    """Tampered ciphertexts, expired tokens and invalid FPE tokens reveal nothing: however
    many fail, the actor's count and limits are untouched."""
    sealed = watched.encrypt(CANARY_PHONE, context=CONTEXT)
    for _ in range(6):
        with pytest.raises(pg.DecryptionError):
            watched.decrypt(
                sealed, context={**CONTEXT, "id": "c2"}, actor="cs-7", purpose="testing"
            )
    with pytest.raises(pg.DecryptionError):
        watched.decrypt_many(
            [sealed] * 3,
            contexts=[CONTEXT, CONTEXT, {**CONTEXT, "id": "c2"}],
            actor="cs-7",
            purpose="testing",
        )
    with pytest.raises(pg.DecryptionError):
        watched.decrypt("not a ciphertext", context=CONTEXT, actor="cs-7", purpose="testing")
    token = watched.vault.tokenize(CANARY_PHONE, kind="phone", ttl=timedelta(minutes=1))
    clock.advance(timedelta(minutes=2))
    for _ in range(6):
        with pytest.raises(pg.TokenExpired):
            watched.vault.detokenize(token, actor="cs-7", purpose="testing")
    for _ in range(6):
        with pytest.raises(pg.PiiGuardError):
            watched.tokens.fpe_decrypt("1234", kind="phone", actor="cs-7", purpose="testing")
    assert watched.watch.count("cs-7") == 0
    _decrypt(watched, times=5)  # the whole limit is still there
    assert watched.watch.blocked() == []


def test_a_fresh_instance_refuses_a_blocked_actor_from_its_first_reveal_in_every_thread(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock
) -> None:
    """Threads that arrive while a new instance first reads an actor's block wait for that
    read; none is let through on an empty count."""
    import threading
    import time

    from sqlalchemy import event

    watch = pg.AccessWatch(limits={"*": 5}, block=True, refresh=timedelta(0))
    with _open(store_target, kek, clock, watch) as first:
        _decrypt(first, times=5)
        with pytest.raises(pg.AccessDenied):
            _decrypt(first)
        sealed = first.encrypt(CANARY_PHONE, context=CONTEXT)
    with _open(store_target, kek, clock, watch) as fresh:

        def slow_read(*args: Any) -> None:
            if "piiguard_audit_events" in str(args[2]) and "sum(" in str(args[2]).lower():
                time.sleep(0.05)  # the first read of the count is slow: threads pile up

        event.listen(fresh.store.engine, "before_cursor_execute", slow_read)
        passed: list[str] = []
        start = threading.Barrier(6)

        def reveal() -> None:
            start.wait()
            try:
                passed.append(
                    fresh.decrypt(sealed, context=CONTEXT, actor="cs-7", purpose="testing")
                )
            except pg.AccessDenied:
                return

        threads = [threading.Thread(target=reveal) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert passed == []


def test_reveals_stamped_by_an_instance_whose_clock_runs_fast_still_count(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock
) -> None:
    ahead = SettableClock(clock() + timedelta(minutes=20))
    watch = pg.AccessWatch(limits={"*": 5}, block=True, refresh=timedelta(0))
    with (
        _open(store_target, kek, ahead, watch) as fast,
        _open(store_target, kek, clock, watch) as slow,
    ):
        _decrypt(fast, times=5)
        assert slow.watch.count("cs-7") == 5
        with pytest.raises(pg.AccessDenied):
            _decrypt(slow)


def test_an_alerting_instance_does_not_lift_another_s_block(
    watched: pg.Guard, store_target: StoreTarget, kek: LocalKEK, clock: SettableClock
) -> None:
    """An instance whose watch only alerts (a reporting service, re-reading hourly) records
    an alert after another instance's block: the block stands until a reset."""
    alerting = pg.AccessWatch(limits={"*": 5}, refresh=timedelta(hours=1))
    with _open(store_target, kek, clock, alerting) as reporting:
        _decrypt(reporting)  # it reads cs-7's count once, then counts on its own
        _decrypt(watched, times=4)
        with pytest.raises(pg.AccessDenied):
            _decrypt(watched)  # blocked
        _decrypt(reporting, times=5)  # it alerts, recording an alert after the block
        assert [e.result for e in watched.audit.events(action="access_alert")] == [
            "blocked",
            "alert",
        ]
    assert watched.watch.blocked() == ["cs-7"]
    clock.advance(timedelta(hours=2))  # the window passes, with no reset
    watch = pg.AccessWatch(limits={"*": 5}, block=True, refresh=timedelta(0))
    with _open(store_target, kek, clock, watch) as fresh, pytest.raises(pg.AccessDenied):
        _decrypt(fresh)


@pytest.mark.parametrize("limits", [{"CS": 2}, {"cs": 2, "auditor": 1}])
def test_a_limit_for_a_role_the_policy_lacks_is_refused_at_start(
    store_target: StoreTarget, kek: LocalKEK, limits: dict[str, int]
) -> None:
    url, schema = store_target
    with pytest.raises(pg.InvalidArgument):
        pg.Guard.open(
            url, kek=kek, schema=schema, access=POLICY, watch=pg.AccessWatch(limits=limits)
        )


@pytest.mark.parametrize("spelling", ["cs\u20107", "cs\u22127", "cs-7\u3164", "\u3164cs-7"])
def test_dashes_and_fillers_do_not_make_another_actor(watched: pg.Guard, spelling: str) -> None:
    _decrypt(watched, times=5)
    with pytest.raises(pg.AccessDenied):
        _decrypt(watched, actor=spelling)
    with pytest.raises(pg.AccessDenied) as raised:
        watched.watch.reset("cs-7", by=spelling)
    assert raised.value.reason == "self_approval"
