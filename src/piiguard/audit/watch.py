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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from piiguard.audit.log import REVEALS
from piiguard.errors import AccessDenied, InvalidArgument, boundary
from piiguard.events import NAME_LIMIT, AccessEvent
from piiguard.store import Store

__all__ = ["AccessAlert", "AccessWatch", "Watcher"]

#: Key of ``limits`` that applies to every reveal, whatever the role.
ANY_ROLE = "*"

_log = structlog.get_logger("piiguard")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


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
    """One actor as this instance knows it: the shared count at the last read, its own
    reveals since, the usual count per window, and whether a block holds."""

    __slots__ = (
        "alerted_at",
        "baseline",
        "baseline_at",
        "blocked",
        "local",
        "read_at",
        "shared",
    )

    def __init__(self) -> None:
        self.read_at = -1.0e18
        self.shared = 0
        self.local = 0
        self.baseline = 0.0
        self.baseline_at: datetime | None = None
        self.blocked = False
        self.alerted_at: datetime | None = None


class Watcher:
    """``guard.watch``: the access watch at work (its configuration is ``.config``)."""

    def __init__(
        self,
        store: Store,
        config: AccessWatch | None,
        clock: Callable[[], datetime],
        record: Callable[[AccessEvent], BaseException | None],
    ) -> None:
        if config is not None and not isinstance(config, AccessWatch):
            raise InvalidArgument("watch= is a pg.AccessWatch")
        self.config = config
        self._store = store
        self._clock = clock
        self._record = record
        self._lock = threading.Lock()
        self._tallies: dict[str, _Tally] = {}

    def check(self, actor: str, role: str | None, count: int) -> AccessDenied | None:
        """Whether ``actor`` may reveal ``count`` more values now, acting in ``role``: None,
        or the refusal (a block, or a breach of a blocking watch)."""
        config = self.config
        if config is None:
            return None
        now = self._clock()
        tally = self._tally(actor, now, config)
        if tally.blocked:
            return AccessDenied("watch_blocked", "the access watch stopped this actor")
        with self._lock:
            total = tally.shared + tally.local + count
            limit, reason = self._limit(config, role, tally.baseline)
            if limit is None or total <= limit:
                tally.local += count
                return None
            repeat = tally.alerted_at is not None and now - tally.alerted_at < config.window
            tally.alerted_at = now
            if config.block:
                tally.blocked = True
            else:
                tally.local += count
        if config.block or not repeat:
            alert = AccessAlert(actor, role, total, limit, reason, config.window, now, config.block)
            self._alert(config, alert)
        if config.block:
            return AccessDenied("watch_blocked", "the access watch stopped this actor")
        return None

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
        if alert.blocked:
            self._block(alert)
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
            actor=alert.actor,
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

    def _block(self, alert: AccessAlert) -> None:
        blocks = self._store.tables.access_blocks
        values = {"at_us": _micros(alert.at), "role": alert.role, "cleared_us": None}
        renew = update(blocks).where(blocks.c.actor == alert.actor).values(**values)
        try:
            with self._store.transaction() as connection:
                if not connection.execute(renew).rowcount:
                    connection.execute(insert(blocks).values(actor=alert.actor, **values))
        except IntegrityError:
            pass  # another instance blocked the actor at the same moment

    def _tally(self, actor: str, now: datetime, config: AccessWatch) -> _Tally:
        """The actor's tally, re-read from the store when ``refresh`` has passed (the usual
        rate, a longer sum, at most every tenth of a window or ten minutes)."""
        with self._lock:
            tally = self._tallies.get(actor)
            if tally is None:
                tally = self._tallies[actor] = _Tally()
            due = time.monotonic() - tally.read_at >= config.refresh.total_seconds()
            usual_due = config.baseline is not None and (
                tally.baseline_at is None
                or not timedelta(0) <= now - tally.baseline_at < _usual_every(config)
            )
        if due or usual_due:
            shared, usual, blocked = self._read(actor, now, config, with_usual=usual_due)
            with self._lock:
                tally.read_at = time.monotonic()
                tally.shared, tally.local, tally.blocked = shared, 0, blocked
                if usual is not None:
                    tally.baseline, tally.baseline_at = usual, now
        return tally

    def _read(
        self, actor: str, now: datetime, config: AccessWatch, *, with_usual: bool
    ) -> tuple[int, float | None, bool]:
        """(values revealed in the window, the usual count per window when asked, blocked)
        from the store, which every instance writes."""
        events, blocks = self._store.tables.audit_events, self._store.tables.access_blocks

        def revealed(since: datetime, until: datetime) -> Select[Any]:
            return select(func.coalesce(func.sum(events.c.count), 0)).where(
                events.c.actor == actor,
                events.c.at_us > _micros(since),
                events.c.at_us <= _micros(until),
                events.c.result == "ok",
                events.c.action.in_(sorted(REVEALS)),
            )

        with self._store.engine.connect() as connection:
            block = connection.execute(
                select(blocks.c.cleared_us).where(blocks.c.actor == actor)
            ).first()
            # the window is (now - window, now]; a reset starts a new count after it
            start = now - config.window
            if block is not None and block.cleared_us is not None:
                start = max(start, _EPOCH + int(block.cleared_us) * _MICROSECOND)
            shared = int(connection.execute(revealed(start, now)).scalar_one())
            usual = None
            if with_usual:  # the period before the window, whatever a reset did
                end = now - config.window
                before = connection.execute(revealed(end - config.baseline_period, end))
                usual = int(before.scalar_one()) * (config.window / config.baseline_period)
        return shared, usual, block is not None and block.cleared_us is None

    @boundary
    def blocked(self) -> list[str]:
        """The actors the watch stopped, on any instance, until someone resets them."""
        blocks = self._store.tables.access_blocks
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                select(blocks.c.actor).where(blocks.c.cleared_us.is_(None)).order_by(blocks.c.actor)
            )
            return [row.actor for row in rows]

    @boundary
    def count(self, actor: str) -> int:
        """Values ``actor`` revealed in the current window, as the store says now."""
        if type(actor) is not str:
            raise InvalidArgument("actor is a str")
        config = self.config or AccessWatch()
        return self._read(actor, self._clock(), config, with_usual=False)[0]

    @boundary
    def reset(self, actor: str, *, by: str) -> bool:
        """Let a stopped actor reveal again, on every instance (within ``refresh``); audited
        as ``by``'s act. False if the actor was not stopped."""
        for what, name in (("actor", actor), ("by", by)):
            if type(name) is not str or not name or len(name) > NAME_LIMIT:
                raise InvalidArgument(f"{what} is a name of 1 to {NAME_LIMIT} characters")
        if by == actor:
            raise AccessDenied("self_approval", "nobody lifts their own block")
        blocks = self._store.tables.access_blocks
        now = self._clock()
        with self._store.transaction() as connection:
            gone = connection.execute(
                update(blocks)
                .where(blocks.c.actor == actor, blocks.c.cleared_us.is_(None))
                .values(cleared_us=_micros(now))
            ).rowcount
        with self._lock:
            self._tallies.pop(actor, None)
        if gone:
            failure = self._record(AccessEvent("watch_reset", by, None, now, {"target": actor}))
            if failure is not None:
                raise failure
        return bool(gone)

    def __repr__(self) -> str:
        return f"Watcher({self.config!r})"
