"""Access watch: counts each actor's reveals over a sliding window and acts on abnormal use.

The counts come from the audit log, so every instance sharing a store sees every reveal
(re-read at most every ``refresh``; between reads an instance adds its own). A breach of a
role's limit, or of a multiple of the actor's own usual rate, calls the alert callback,
records an ``access_alert`` event and, if configured, refuses the actor's reveals
(:class:`~piiguard.AccessDenied`, ``reason="watch_blocked"``) on every instance until
someone resets it. The check runs before the reveal, with the reveal's count: a blocking
watch never lets a batch carry an actor past a limit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Select, Table, bindparam, func, or_, select

from piiguard.audit.log import REVEALS, holds_pii, micros, shown_actor
from piiguard.errors import AccessDenied, InvalidArgument, boundary
from piiguard.events import NAME_LIMIT, AccessEvent, actor_name, name_refusal, same_person
from piiguard.store import Store

__all__ = ["AccessAlert", "AccessWatch", "Watcher"]

#: Key of ``limits`` that applies to every reveal, whatever the role.
ANY_ROLE = "*"
#: The events that set and lift an actor's block.
WATCH_ACTIONS = frozenset({"access_alert", "watch_reset"})
#: Reveals whose recording settles what the watch admitted (an export counts its values in
#: the reveals it makes, not itself).
_SETTLES = REVEALS - {"export"}

_log = structlog.get_logger("piiguard")


def _usual_every(config: AccessWatch) -> timedelta:
    """How long an actor's usual rate is kept before it is summed again."""
    return min(config.window / 10, timedelta(minutes=10))


@dataclass(frozen=True, slots=True)
class AccessAlert:
    """An actor crossed a threshold: what an alert callback receives (no values, no ids).

    Attributes:
        actor: who.
        role: the role the reveal named, if any.
        count: values this actor revealed in the window, the refused or alerting reveal
            included.
        limit: the threshold crossed (a count per window).
        reason: ``limit`` (a role's or the ``"*"`` limit) or ``baseline`` (a multiple of the
            actor's usual rate).
        window: the sliding window counted over.
        at: when, from the Guard's clock.
        blocked: whether the actor's reveals are now refused until reset.
    """

    actor: str
    role: str | None
    count: int
    limit: int
    reason: str
    window: timedelta
    at: datetime
    blocked: bool


class AccessWatch:
    """How the access watch judges an actor's reveals.

    Args:
        window: the sliding window counts cover (default one hour).
        limits: role -> the most values an actor may reveal in a window acting in that role
            (``guard.reveal(role=...)``); ``"*"`` applies to every reveal.
        baseline: alert when an actor reveals more than this many times their usual count
            per window (their average over ``baseline_period`` before the window); None to
            judge by ``limits`` only.
        baseline_period: how far back the usual rate is taken from (default 14 days).
        baseline_floor: the baseline never alerts below this many values per window (a new
            actor has no usual rate).
        block: refuse the actor's reveals after a breach, until :meth:`Watcher.reset`.
        on_alert: called with an :class:`AccessAlert` on each breach (its errors are logged
            and do not stop the watch).
        refresh: how often an instance re-reads the shared counts and blocks (default one
            second; other instances' reveals and resets reach it within this time).

    Raises:
        InvalidArgument: a window, period or refresh that is not a timedelta of the right
            sign, a limit that is not a non-negative int, or a baseline not above 1.
    """

    __slots__ = (
        "baseline",
        "baseline_floor",
        "baseline_period",
        "block",
        "limits",
        "on_alert",
        "refresh",
        "window",
    )

    def __init__(
        self,
        *,
        window: timedelta = timedelta(hours=1),
        limits: Mapping[str, int] | None = None,
        baseline: float | None = None,
        baseline_period: timedelta = timedelta(days=14),
        baseline_floor: int = 100,
        block: bool = False,
        on_alert: Callable[[AccessAlert], object] | None = None,
        refresh: timedelta = timedelta(seconds=1),
    ) -> None:
        for what, span in (("window", window), ("baseline_period", baseline_period)):
            if not isinstance(span, timedelta) or span <= timedelta(0):
                raise InvalidArgument(f"{what} is a positive timedelta")
        if not isinstance(refresh, timedelta) or refresh < timedelta(0):
            raise InvalidArgument("refresh is a timedelta, zero or more")
        found: dict[str, int] = {}
        for role, limit in dict(limits or {}).items():
            if type(role) is not str or not role or len(role) > NAME_LIMIT:
                raise InvalidArgument("limits map role names to counts")
            if type(limit) is not int or limit < 0:
                raise InvalidArgument("a limit is a count: an int, zero or more")
            found[role] = limit
        if baseline is not None and (
            isinstance(baseline, bool) or not isinstance(baseline, int | float) or baseline <= 1
        ):
            raise InvalidArgument("baseline is a factor above 1 (e.g. 5.0), or None")
        if type(baseline_floor) is not int or baseline_floor < 0:
            raise InvalidArgument("baseline_floor is a count: an int, zero or more")
        if on_alert is not None and not callable(on_alert):
            raise InvalidArgument("on_alert is a callable")
        self.window = window
        self.limits: Mapping[str, int] = found
        self.baseline = None if baseline is None else float(baseline)
        self.baseline_period = baseline_period
        self.baseline_floor = baseline_floor
        self.block = bool(block)
        self.on_alert = on_alert
        self.refresh = refresh

    def limit_for(self, role: str | None) -> int | None:
        """The tightest fixed limit on a reveal in ``role`` (None when there is none)."""
        found = [
            limit
            for key in (ANY_ROLE, role)
            if key is not None and (limit := self.limits.get(key)) is not None
        ]
        return min(found) if found else None

    def __repr__(self) -> str:
        return (
            f"AccessWatch(window={self.window}, limits={dict(self.limits)},"
            f" baseline={self.baseline}, block={self.block})"
        )


class _Tally:
    """One actor as this instance knows it.

    The estimate of the actor's window count is ``shared + carried + since``: ``shared`` is
    the store's count at the last read, ``carried`` what this instance had admitted but not
    yet recorded when that read began (so a read never forgets a reveal in flight; one
    recorded meanwhile is counted twice, which errs towards refusing), and ``since`` what it
    admitted after the read began. ``pending`` holds admitted, unrecorded reveals.
    """

    __slots__ = (
        "alerted_at",
        "baseline",
        "baseline_at",
        "blocked",
        "carried",
        "pending",
        "read_at",
        "reading",
        "reset_seq",
        "shared",
        "since",
        "since_read",
    )

    def __init__(self) -> None:
        self.read_at: float | None = None  # monotonic time of the last read; None: never read
        self.reading = False
        self.shared = 0
        self.carried = 0
        self.since = 0
        self.since_read = 0  # admitted since the read in progress began
        self.pending: deque[list[Any]] = deque()  # [when admitted (the clock's), count]
        self.baseline = 0.0
        self.baseline_at: datetime | None = None
        self.blocked = False
        self.reset_seq = 0  # the newest reset of the actor the store has shown
        self.alerted_at: datetime | None = None

    def admit(self, count: int, now: datetime) -> None:
        if count:
            self.since += count
            if self.reading:
                self.since_read += count
            self.pending.append([now, count])

    def release(self, count: int) -> None:
        """``count`` admitted values were never revealed (the reveal failed): uncounted."""
        self.settle(count)
        self.since = max(0, self.since - count)
        if self.reading:
            self.since_read = max(0, self.since_read - count)

    def settle(self, count: int) -> None:
        """``count`` admitted values were recorded: no longer in flight (the store has them)."""
        pending = self.pending
        while count > 0 and pending:
            oldest = pending[0]
            if oldest[1] <= count:
                count -= int(oldest[1])
                pending.popleft()
            else:
                oldest[1] -= count
                count = 0

    def in_flight(self, horizon: datetime) -> int:
        """Admitted values not yet recorded (settled or released), however long their write
        takes. Only one admitted before ``horizon`` (two windows ago: its event, stamped
        as it was made, is outside the window) is forgotten, if a failure never said so."""
        while self.pending and self.pending[0][0] < horizon:
            self.pending.popleft()
        return int(sum(count for _, count in self.pending))


def _sets_or_lifts(events: Table) -> tuple[ColumnElement[bool], ...]:
    """The events that set a block (a blocking alert) or lift one (a reset); the first
    condition matches the partial index."""
    return (
        events.c.action.in_(sorted(WATCH_ACTIONS)),
        or_(events.c.action == "watch_reset", events.c.result == "blocked"),
    )


def _blocked(block_seq: int | None, reset_seq: int) -> bool:
    """The one rule of a block: the actor's newest blocking alert is newer than their
    newest reset (an alert that only alerted neither sets nor lifts one)."""
    return block_seq is not None and block_seq > reset_seq


class _Read:
    """What the store says of an actor."""

    __slots__ = ("blocked", "reset_seq", "shared", "usual")

    def __init__(self, shared: int, usual: float | None, blocked: bool, reset_seq: int) -> None:
        self.shared, self.usual, self.blocked, self.reset_seq = shared, usual, blocked, reset_seq


class Watcher:
    """``guard.watch``: the access watch at work (its configuration is ``.config``).

    An actor's block is its newest ``access_alert`` event with result ``blocked`` that no
    ``watch_reset`` event follows, in the keyed audit log: an insider cannot lift a block
    (nor forge a reset) without ``guard.audit.verify()`` saying so, and a reset counts the
    actor's reveals afresh from the reset event on, whatever any instance's clock says.
    """

    def __init__(
        self,
        store: Store,
        config: AccessWatch | None,
        clock: Callable[[], datetime],
        record: Callable[[AccessEvent], BaseException | None],
        *,
        roles: frozenset[str] = frozenset(),
    ) -> None:
        if config is not None and not isinstance(config, AccessWatch):
            raise InvalidArgument("watch= is a pg.AccessWatch")
        if config is not None and not set(config.limits) <= roles | {ANY_ROLE}:
            # a limit for "CS" when the role is "cs" would never apply: say so at start-up
            raise InvalidArgument("the watch's limits name roles the access policy does not have")
        self.config = config
        self._store = store
        self._clock = clock
        self._record = record
        self._lock = threading.Lock()
        self._read_done = threading.Condition(self._lock)  # an actor's first read ended
        self._tallies: dict[str, _Tally] = {}

    def check(self, actor: str, role: str | None, count: int) -> AccessDenied | None:
        """Whether ``actor`` may reveal ``count`` more values now, acting in ``role``: None,
        or the refusal (a block, or a breach of a blocking watch)."""
        config = self.config
        if config is None:
            return None
        now = self._clock()
        tally = self._tally(actor, now, config)
        with self._lock:
            if tally.blocked:
                return AccessDenied("watch_blocked", "the access watch stopped this actor")
            total = tally.shared + tally.carried + tally.since + count
            limit, reason = self._limit(config, role, tally.baseline)
            if limit is None or total <= limit:
                tally.admit(count, now)
                return None
            repeat = tally.alerted_at is not None and now - tally.alerted_at < config.window
            tally.alerted_at = now
            if config.block:
                tally.blocked = True
            else:
                tally.admit(count, now)
        if config.block or not repeat:
            alert = AccessAlert(actor, role, total, limit, reason, config.window, now, config.block)
            self._alert(config, alert)
        if config.block:
            return AccessDenied("watch_blocked", "the access watch stopped this actor")
        return None

    def settled(self, event: AccessEvent, *, recorded: bool) -> None:
        """A reveal's event was recorded (its values are in the store's count now), or could
        not be (they were never revealed, so they do not count)."""
        if self.config is None or event.action not in _SETTLES or event.result != "ok":
            return
        if not recorded:
            self.released(event.actor, event.count)
            return
        with self._lock:
            tally = self._tallies.get(event.actor)
            if tally is not None:
                tally.settle(event.count)

    def released(self, actor: str, count: int) -> None:
        """``count`` values admitted for ``actor`` were never revealed (a bad ciphertext, an
        expired token): they no longer count towards the actor's limits."""
        if self.config is None or not count:
            return
        with self._lock:
            tally = self._tallies.get(actor)
            if tally is not None:
                tally.release(count)

    @staticmethod
    def _limit(config: AccessWatch, role: str | None, usual: float) -> tuple[int | None, str]:
        """The threshold a reveal in ``role`` is held to, and which kind it is: the tightest
        of the fixed limits and the multiple of the actor's usual count."""
        limit, reason = config.limit_for(role), "limit"
        if config.baseline is not None:
            ceiling = max(config.baseline_floor, int(config.baseline * usual))
            if limit is None or ceiling < limit:
                limit, reason = ceiling, "baseline"
        return limit, reason

    def _alert(self, config: AccessWatch, alert: AccessAlert) -> None:
        """Record the alert (for a blocking watch, the event is the block itself), log it
        and call the callback."""
        event = AccessEvent(
            "access_alert",
            alert.actor,
            None,
            alert.at,
            {"reason": alert.reason} | ({} if alert.role is None else {"role": alert.role}),
            count=alert.count,
            result="blocked" if alert.blocked else "alert",
        )
        failure = self._record(event)
        _log.warning(
            "access_alert",
            actor=shown_actor(alert.actor),
            role=alert.role,
            count=alert.count,
            limit=alert.limit,
            reason=alert.reason,
            blocked=alert.blocked,
            recorded=failure is None,
        )
        if config.on_alert is not None:
            try:
                config.on_alert(alert)
            except Exception as error:
                _log.error("access_alert_callback_failed", error=type(error).__name__)

    def _tally(self, actor: str, now: datetime, config: AccessWatch) -> _Tally:
        """The actor's tally, re-read from the store when ``refresh`` has passed (the usual
        rate, a longer sum, at most every tenth of a window or ten minutes). One thread
        reads at a time; the others go on with the last read and what they admit, or wait
        for the first one (an empty tally knows nothing, not even a block)."""
        with self._lock:
            tally = self._tallies.get(actor)
            if tally is None:
                tally = self._tallies[actor] = _Tally()
            while tally.reading and tally.read_at is None:
                self._read_done.wait()
            if tally.reading:
                return tally
            due = (
                tally.read_at is None
                or time.monotonic() - tally.read_at >= config.refresh.total_seconds()
            )
            usual_due = config.baseline is not None and (
                tally.baseline_at is None
                or not timedelta(0) <= now - tally.baseline_at < _usual_every(config)
            )
            if not (due or usual_due):
                return tally
            tally.reading, tally.since_read = True, 0
            carried = tally.in_flight(now - 2 * config.window)
        try:
            read = self._read(actor, now, config, with_usual=usual_due)
        finally:
            with self._lock:
                tally.reading = False
                self._read_done.notify_all()
        with self._lock:
            tally.read_at = time.monotonic()
            tally.shared, tally.carried, tally.since = read.shared, carried, tally.since_read
            if read.reset_seq > tally.reset_seq:  # reset since the last read: the store says
                tally.blocked, tally.reset_seq = read.blocked, read.reset_seq
                tally.alerted_at = None
            else:  # a block this instance just set stands until a reset is seen
                tally.blocked = tally.blocked or read.blocked
            if read.usual is not None:
                tally.baseline, tally.baseline_at = read.usual, now
        return tally

    def _read(self, actor: str, now: datetime, config: AccessWatch, *, with_usual: bool) -> _Read:
        """The actor's count in the window (after its last reset), its usual count per
        window when asked, and whether it is blocked, from the store every instance writes."""
        events = self._store.tables.audit_events
        since_reset = events.c.seq > bindparam("reset_seq")

        def revealed(since: datetime, *bounds: Any) -> Select[Any]:
            return select(func.coalesce(func.sum(events.c.count), 0)).where(
                events.c.actor == actor,
                events.c.at_us > micros(since),
                events.c.result == "ok",
                events.c.action.in_(sorted(REVEALS)),
                *bounds,
            )

        newest = (
            select(events.c.action, func.max(events.c.seq).label("seq"))
            .where(events.c.actor == actor, *_sets_or_lifts(events))
            .group_by(events.c.action)
        )
        with self._store.engine.connect() as connection:
            found = {row.action: int(row.seq) for row in connection.execute(newest)}
            reset_seq = found.get("watch_reset", 0)
            # no upper bound: an event stamped ahead by a fast clock still counts
            window = revealed(now - config.window, since_reset)
            shared = int(connection.execute(window, {"reset_seq": reset_seq}).scalar_one())
            usual = None
            if with_usual:  # the period before the window, whatever a reset did
                end = now - config.window
                period = revealed(end - config.baseline_period, events.c.at_us <= micros(end))
                before = connection.execute(period)
                usual = int(before.scalar_one()) * (config.window / config.baseline_period)
        return _Read(shared, usual, _blocked(found.get("access_alert"), reset_seq), reset_seq)

    @boundary
    def blocked(self) -> list[str]:
        """The actors the watch stopped, on any instance, until someone resets them."""
        events = self._store.tables.audit_events
        newest = (
            select(events.c.actor, events.c.action, func.max(events.c.seq).label("seq"))
            .where(*_sets_or_lifts(events))
            .group_by(events.c.actor, events.c.action)
        )
        found: dict[str, dict[str, int]] = {}
        with self._store.engine.connect() as connection:
            for row in connection.execute(newest):
                found.setdefault(row.actor, {})[row.action] = int(row.seq)
        return sorted(
            actor
            for actor, seqs in found.items()
            if _blocked(seqs.get("access_alert"), seqs.get("watch_reset", 0))
        )

    @boundary
    def count(self, actor: str) -> int:
        """Values ``actor`` revealed in the current window (since its last reset), as the
        store says now."""
        if type(actor) is not str:
            raise InvalidArgument("actor is a str")
        config = self.config or AccessWatch()
        return self._read(actor_name(actor), self._clock(), config, with_usual=False).shared

    @boundary
    def reset(self, actor: str, *, by: str) -> bool:
        """Let a stopped actor reveal again, on every instance (within ``refresh``), its
        count started afresh; recorded in the audit log (the actor's ``watch_reset`` event,
        naming ``by``). False if the actor was not stopped.

        Raises:
            AccessDenied: ``reason="self_approval"``: nobody lifts their own block.
        """
        for what, name in (("actor", actor), ("by", by)):
            refused = name_refusal(what, name)
            if refused is not None or not actor_name(name):
                raise refused or InvalidArgument(f"{what} must not be empty")
            if holds_pii(name):  # kept in clear in the reset event
                raise InvalidArgument(f"{what} is a staff or service id, not personal information")
        if same_person(by, actor):
            raise AccessDenied("self_approval", "nobody lifts their own block")
        actor = actor_name(actor)
        config = self.config or AccessWatch()
        if not self._read(actor, self._clock(), config, with_usual=False).blocked:
            return False
        failure = self._record(
            AccessEvent("watch_reset", actor, None, self._clock(), {"by": by}, count=0)
        )
        if failure is not None:
            raise failure
        with self._lock:
            self._tallies.pop(actor, None)
        return True

    def __repr__(self) -> str:
        return f"Watcher({self.config!r})"
