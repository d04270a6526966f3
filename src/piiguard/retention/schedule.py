"""The retention schedule: tracked records, legal holds, hooks, and crash-safe sweeps.

A sweep *claims* a batch of due, unheld records in one transaction (marking them running,
with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so several processes never claim the same
rows), calls the category's hook outside the transaction, and marks them done only after the
hook returns. A hook that raises marks its batch failed, with the error's *type* only (never
its message, which may hold PII), and the batch is retried on a later sweep after a backoff.
A process that dies mid-sweep leaves its claimed rows running; after a lease they are claimed
again, so nothing is skipped, and since hooks must be idempotent a repeated call is harmless.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, and_, func, or_, select, update

from piiguard.errors import InvalidArgument, PolicyViolation, boundary
from piiguard.retention.participant import RecordsParticipant
from piiguard.retention.policy import RetentionPolicy
from piiguard.store import Store, aware

__all__ = ["Hook", "Retention", "RetentionFailure", "SweepReport"]

Hook = Callable[[list[str]], object]
_log = structlog.get_logger("piiguard.retention")
_PENDING, _RUNNING, _DONE, _FAILED, _FROZEN = "pending", "running", "done", "failed", "frozen"
_LEASE = timedelta(minutes=10)
#: Seconds between checks of a running hook's claim (renewed every third of the lease).
_RENEW_POLL = 0.5
_MAX_BACKOFF = timedelta(hours=24)


def _backoff(attempts: int) -> timedelta:
    return min(timedelta(minutes=2 ** min(attempts, 20)), _MAX_BACKOFF)


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What a sweep did (or, with ``dry_run``, would do), in counts of records."""

    done: int = 0
    failed: int = 0
    held: int = 0
    not_yet_due: int = 0
    shredded_subjects: int = 0
    dry_run: bool = False
    by_category: Mapping[str, int] = field(default_factory=dict)
    epoch_advanced: bool = False


@dataclass(frozen=True)
class RetentionFailure:
    """A record whose retention hook failed, waiting for its next attempt."""

    category: str
    record_id: str
    attempts: int
    next_attempt_at: datetime
    error: str | None


class Retention:
    """Retention of one store's records (``guard.retention``)."""

    def __init__(
        self,
        store: Store,
        *,
        pseudonym: Callable[[str], str],
        shred_scope: Callable[[str, Connection | None], int],
        clock: Callable[[], datetime],
        deferred_shreds: Callable[[datetime], int] | None = None,
        maintenance: Callable[[datetime], bool] | None = None,
    ) -> None:
        self._store = store
        self._deferred_shreds = deferred_shreds
        self._maintenance = maintenance
        self._tables = store.tables
        self._pseudonym = pseudonym
        self._shred_scope = shred_scope
        self._clock = clock
        self._policies: dict[str, RetentionPolicy] = {}
        self._hooks: dict[str, Hook] = {}
        self._exporters: dict[str, Callable[[list[str]], Any]] = {}

    # -- configuration -------------------------------------------------------------------

    @boundary
    def policy(self, policy: RetentionPolicy) -> RetentionPolicy:
        """Register (or replace) the policy of a category."""
        if not isinstance(policy, RetentionPolicy):
            raise InvalidArgument("policy() takes a piiguard.RetentionPolicy")
        self._policies[policy.category] = policy
        return policy

    def policies(self) -> list[RetentionPolicy]:
        """Every registered policy, by category (the record of processing lists them)."""
        return [self._policies[category] for category in sorted(self._policies)]

    @boundary
    def policy_for(self, category: str) -> RetentionPolicy:
        """The registered policy of a category.

        Raises:
            PolicyViolation: none is registered.
        """
        found = self._policies.get(category)
        if found is None:
            raise PolicyViolation(f"no retention policy for category {category!r}")
        return found

    def hook(self, category: str) -> Callable[[Hook], Hook]:
        """Register the function that deletes (or anonymizes) due records of a category.

        It is called with batches of record ids, must be idempotent, and may raise.
        """

        def register(function: Hook) -> Hook:
            self._hooks[category] = function
            return function

        return register

    def exporter(
        self, category: str
    ) -> Callable[[Callable[[list[str]], Any]], Callable[[list[str]], Any]]:
        """Register the function that returns a subject's records of a category for an access
        request (JSON-serialisable)."""

        def register(function: Callable[[list[str]], Any]) -> Callable[[list[str]], Any]:
            self._exporters[category] = function
            return function

        return register

    # -- tracking --------------------------------------------------------------------------

    @boundary
    def track(
        self,
        category: str,
        record_id: str,
        *,
        subject: str | None = None,
        at: datetime | None = None,
    ) -> datetime:
        """Record the triggering event of a record; return when it falls due.

        Idempotent on (category, record_id); a later event moves the due date, an earlier
        one changes nothing; a record already dealt with stays so.
        """
        policy = self.policy_for(category)
        if not isinstance(record_id, str) or not 0 < len(record_id) <= 128:
            raise InvalidArgument("a record id is a text of 1 to 128 characters")
        event_at = at or self._clock()
        if event_at.tzinfo is None:
            raise InvalidArgument("at must be timezone-aware")
        due = event_at + policy.keep
        scope = self._pseudonym(subject) if subject is not None else None
        table = self._tables.retention
        with self._store.joining() as connection:
            self._store.serialize(connection, f"track:{category}:{record_id}")
            row = connection.execute(
                select(table.c.event_at, table.c.status)
                .where(table.c.category == category, table.c.record_id == record_id)
                .with_for_update()
            ).first()
            if row is None:
                connection.execute(
                    table.insert().values(
                        category=category,
                        record_id=record_id,
                        subject=scope,
                        event_at=event_at,
                        due_at=due,
                        status=_PENDING,
                        attempts=0,
                    )
                )
                return due
            if row.status in (_DONE, _FROZEN) or event_at <= aware(row.event_at):
                return aware(row.event_at) + policy.keep
            connection.execute(
                update(table)
                .where(table.c.category == category, table.c.record_id == record_id)
                .values(event_at=event_at, due_at=due)
            )
            return due

    @boundary
    def hold(
        self,
        *,
        subject: str | None = None,
        category: str | None = None,
        record_id: str | None = None,
        reason: str,
        until: datetime | None = None,
    ) -> str:
        """Put a legal hold on a subject, a category, or one record; return the hold's id.

        Held records are never swept or erased until the hold is released or ``until`` passes.
        """
        if subject is None and category is None:
            raise InvalidArgument("a hold names a subject, a category, or a category and a record")
        if record_id is not None and category is None:
            raise InvalidArgument("a record hold names its category")
        if not isinstance(reason, str) or not 0 < len(reason) <= 200:
            raise InvalidArgument("a hold gives a reason of 1 to 200 characters")
        hold_id = "hold_" + os.urandom(12).hex()
        # named before the transaction: a first pseudonym may create the root key, in a
        # transaction of its own (on SQLite, one inside another would wait for ever)
        scope = self._pseudonym(subject) if subject is not None else None
        with self._store.transaction() as connection:
            self._store.serialize_holds(connection)  # no shred is decided meanwhile
            connection.execute(
                self._tables.holds.insert().values(
                    hold_id=hold_id,
                    subject=scope,
                    category=category,
                    record_id=record_id,
                    reason=reason,
                    until=until,
                )
            )
        return hold_id

    @boundary
    def release(self, hold_id: str) -> None:
        """End a hold; the records it kept become due as their policy says."""
        holds = self._tables.holds
        with self._store.transaction() as connection:
            connection.execute(
                update(holds).where(holds.c.hold_id == hold_id).values(released_at=self._clock())
            )

    def _active_hold(self, now: datetime) -> Any:
        """An SQL condition: the hold row is in force at ``now``."""
        holds = self._tables.holds
        return and_(
            holds.c.released_at.is_(None), or_(holds.c.until.is_(None), holds.c.until > now)
        )

    def _held(self, now: datetime) -> Any:
        """An SQL condition: the retention row is under an active hold."""
        holds, table = self._tables.holds, self._tables.retention
        active = self._active_hold(now)
        return (
            select(holds.c.hold_id)
            .where(
                active,
                or_(
                    and_(holds.c.subject.is_not(None), holds.c.subject == table.c.subject),
                    and_(
                        holds.c.category == table.c.category,
                        or_(holds.c.record_id.is_(None), holds.c.record_id == table.c.record_id),
                    ),
                ),
            )
            .exists()
        )

    def _held_records(self, scope: str, now: datetime) -> set[tuple[str, str]]:
        """(category, record id) of the subject's open records that a hold keeps."""
        table = self._tables.retention
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                select(table.c.category, table.c.record_id).where(
                    table.c.subject == scope, table.c.status != _DONE, self._held(now)
                )
            ).all()
        return {(row.category, row.record_id) for row in rows}

    @boundary
    def is_frozen(self, category: str, record_id: str) -> bool:
        """Whether a record is frozen: kept for a legal minimum after an erasure request, and
        not to be processed any more."""
        table = self._tables.retention
        with self._store.reading() as connection:
            status = connection.execute(
                select(table.c.status).where(
                    table.c.category == category, table.c.record_id == record_id
                )
            ).scalar_one_or_none()
        return status == _FROZEN

    # -- sweeps ---------------------------------------------------------------------------

    @boundary
    def sweep(
        self,
        now: datetime | None = None,
        *,
        batch: int = 1000,
        dry_run: bool = False,
        progress: Callable[[SweepReport], object] | None = None,
    ) -> SweepReport:
        """Act on every due, unheld record, in batches; see the module docstring.

        Args:
            now: the time to sweep at (default: the Guard's clock).
            batch: records per hook call.
            dry_run: count what would go, by category, and call nothing.
            progress: called with the running report after each batch.

        After the scheduled key shreds, the key epoch is advanced when it is due (the Guard's
        ``key_epoch``), so shreds reach copies of the store within that period.
        """
        if batch < 1:
            raise InvalidArgument("batch is at least 1")
        moment = now or self._clock()
        if dry_run:
            return self._dry_run(moment)
        done = failed = 0
        by_category: dict[str, int] = {}
        for category in sorted(self._policies):
            while True:
                claimed = self._claim(category, moment, batch)
                if not claimed:
                    break
                ok = self._act(category, claimed, moment)
                if ok:
                    done += len(claimed)
                    by_category[category] = by_category.get(category, 0) + len(claimed)
                else:
                    failed += len(claimed)
                if progress is not None:
                    progress(SweepReport(done=done, failed=failed, by_category=dict(by_category)))
        shredded = self._deferred_shreds(moment) if self._deferred_shreds is not None else 0
        held, not_due = self._counts(moment)
        advanced = self._maintenance(moment) if self._maintenance is not None else False
        _log.info("sweep", done=done, failed=failed, held=held, shredded=shredded)
        return SweepReport(done, failed, held, not_due, shredded, False, by_category, advanced)

    def _claimable_states(self, now: datetime) -> list[Any]:
        """The states a due record can be claimed from, each an index-friendly condition
        (one query per state walks the (status, due_at) index; an OR of them would not)."""
        table = self._tables.retention
        return [
            table.c.status == _PENDING,
            and_(table.c.status == _FAILED, table.c.next_attempt_at <= now),
            and_(table.c.status == _RUNNING, table.c.claimed_at <= self._clock() - _LEASE),
            table.c.status == _FROZEN,
        ]

    def _claimable(self, category: str, now: datetime) -> Any:
        table = self._tables.retention
        return and_(
            table.c.category == category,
            table.c.due_at <= now,
            or_(*self._claimable_states(now)),
            ~self._held(now),
        )

    def _claim(self, category: str, now: datetime, batch: int) -> list[tuple[str, str | None]]:
        table = self._tables.retention
        found: list[Any] = []
        with self._store.transaction() as connection:
            for state in self._claimable_states(now):
                if len(found) >= batch:
                    break
                found.extend(
                    connection.execute(
                        select(table.c.record_id, table.c.subject)
                        .where(
                            state,
                            table.c.due_at <= now,
                            table.c.category == category,
                            ~self._held(now),
                        )
                        .order_by(table.c.due_at)
                        .limit(batch - len(found))
                        .with_for_update(skip_locked=True)
                    ).all()
                )
            if found:
                connection.execute(
                    update(table)
                    .where(
                        table.c.category == category,
                        table.c.record_id.in_([row.record_id for row in found]),
                    )
                    .values(status=_RUNNING, claimed_at=self._clock())
                )
        return [(row.record_id, row.subject) for row in found]

    @contextmanager
    def _renewing(self, category: str, ids: list[str]) -> Iterator[None]:
        """Keep renewing the claim on these records while their hook runs, so a hook that
        outlives the lease is never joined by a second sweeper on the same records."""
        stop = threading.Event()
        table = self._tables.retention
        where = and_(
            table.c.category == category,
            table.c.record_id.in_(ids),
            table.c.status == _RUNNING,
        )

        def renew() -> None:
            stamped = self._clock()
            while not stop.wait(_RENEW_POLL):
                now = self._clock()
                if now - stamped >= _LEASE / 3:
                    with self._store.transaction() as connection:
                        connection.execute(update(table).where(where).values(claimed_at=now))
                    stamped = now

        renewer = threading.Thread(target=renew, name="piiguard-claim-renewal", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()

    def _act(self, category: str, claimed: list[tuple[str, str | None]], now: datetime) -> bool:
        policy = self._policies[category]
        hook = self._hooks.get(category)
        ids = [record_id for record_id, _ in claimed]
        error: str | None = None
        try:
            if policy.action == "shred":
                for scope in {subject for _, subject in claimed if subject is not None}:
                    if not self._shred_if_free(scope, now, claimed=(category, ids)):
                        error = "ShredBlocked"  # retried after a backoff, once unblocked
            elif hook is None:
                error = "NoHookRegistered"
            if hook is not None and error is None:
                with self._renewing(category, ids):
                    hook(list(ids))
        except Exception as failure:  # recorded by type only: messages may hold PII
            error = type(failure).__name__
            _log.warning("retention_hook_failed", category=category, records=len(ids), error=error)
        self._finish(category, ids, now, error)
        return error is None

    def _finish(self, category: str, ids: list[str], now: datetime, error: str | None) -> None:
        table = self._tables.retention
        where = and_(table.c.category == category, table.c.record_id.in_(ids))
        with self._store.transaction() as connection:
            if error is None:
                connection.execute(
                    update(table).where(where).values(status=_DONE, done_at=now, last_error=None)
                )
                return
            rows = connection.execute(
                select(table.c.record_id, table.c.attempts).where(where)
            ).all()
            for row in rows:
                attempts = int(row.attempts) + 1
                connection.execute(
                    update(table)
                    .where(table.c.category == category, table.c.record_id == row.record_id)
                    .values(
                        status=_FAILED,
                        attempts=attempts,
                        next_attempt_at=now + _backoff(attempts),
                        last_error=error[:200],
                    )
                )

    @boundary
    def failures(self) -> list[RetentionFailure]:
        """Records whose hook failed and that wait for a retry, soonest first: category,
        record id, attempts, the next attempt and the error's type (never its message)."""
        table = self._tables.retention
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                select(
                    table.c.category,
                    table.c.record_id,
                    table.c.attempts,
                    table.c.next_attempt_at,
                    table.c.last_error,
                )
                .where(table.c.status == _FAILED)
                .order_by(table.c.next_attempt_at, table.c.category, table.c.record_id)
            ).all()
        return [
            RetentionFailure(
                r.category, r.record_id, int(r.attempts), aware(r.next_attempt_at), r.last_error
            )
            for r in rows
        ]

    def _dry_run(self, now: datetime) -> SweepReport:
        table = self._tables.retention
        by_category: dict[str, int] = {}
        with self._store.engine.connect() as connection:
            for category in sorted(self._policies):
                count = connection.execute(
                    select(func.count()).select_from(table).where(self._claimable(category, now))
                ).scalar_one()
                if count:
                    by_category[category] = int(count)
        held, not_due = self._counts(now)
        return SweepReport(sum(by_category.values()), 0, held, not_due, 0, True, by_category)

    def _counts(self, now: datetime) -> tuple[int, int]:
        table = self._tables.retention
        open_rows = table.c.status.in_([_PENDING, _FAILED, _RUNNING, _FROZEN])
        with self._store.engine.connect() as connection:
            held = connection.execute(
                select(func.count()).select_from(table).where(open_rows, self._held(now))
            ).scalar_one()
            not_due = connection.execute(
                select(func.count())
                .select_from(table)
                .where(open_rows, table.c.due_at > now, ~self._held(now))
            ).scalar_one()
        return int(held), int(not_due)

    # -- erasure ----------------------------------------------------------------------------

    @boundary
    def shred_blocked(
        self,
        scope: str,
        now: datetime,
        *,
        claimed: tuple[str, list[str]] | None = None,
        connection: Connection | None = None,
    ) -> str | None:
        """Why a subject's keys must not be shredded yet, or None: the one rule that an
        erasure, the sweeper's deferred shreds and the ``shred`` action all follow.

        Blocked while a legal hold names the subject (placed before or after the erasure),
        while any of its records is under a hold, and while any is frozen (kept for a legal
        minimum after an erasure), failing or being processed: that data must stay readable
        until it goes. ``claimed`` (category, ids) are the records the caller itself is
        processing. Records merely pending (an account in use) do not block.
        """
        holds, table = self._tables.holds, self._tables.retention
        mine = (
            and_(table.c.category == claimed[0], table.c.record_id.in_(claimed[1]))
            if claimed is not None
            else None
        )
        busy = table.c.status.in_([_FROZEN, _FAILED, _RUNNING])
        if connection is None:
            with self._store.engine.connect() as own:
                return self.shred_blocked(scope, now, claimed=claimed, connection=own)
        held = connection.execute(
            select(holds.c.hold_id).where(holds.c.subject == scope, self._active_hold(now)).limit(1)
        ).first()
        if held is not None:
            return "while a legal hold on the subject lasts"
        condition = and_(
            table.c.subject == scope,
            table.c.status != _DONE,
            or_(busy, self._held(now)),
        )
        if mine is not None:
            condition = and_(condition, ~mine)
        until = connection.execute(
            select(func.max(table.c.due_at)).where(condition)
        ).scalar_one_or_none()
        if until is None:
            return None
        return f"when the subject's kept records go (due {aware(until).date()})"

    def _shred_if_free(
        self, scope: str, now: datetime, *, claimed: tuple[str, list[str]] | None = None
    ) -> bool:
        """Shred the subject's keys unless :meth:`shred_blocked` says no, deciding and
        shredding in one transaction under the lock every ``hold`` takes too."""
        with self._store.transaction() as connection:
            self._store.serialize_holds(connection)
            if self.shred_blocked(scope, now, claimed=claimed, connection=connection):
                return False
            self._shred_scope(scope, connection)
            return True

    @property
    def participant(self) -> RecordsParticipant:
        """The tracked records as an erasure participant (``guard.erase`` walks it)."""
        return RecordsParticipant(self)

    def _export_category(self, category: str, record_ids: list[str]) -> Any:
        exporter = self._exporters.get(category)
        return exporter(list(record_ids)) if exporter is not None else None

    def _delete_now(
        self, category: str, record_ids: list[str], now: datetime
    ) -> tuple[list[str], str | None]:
        """Claim records for an erasure request and call their hook now; return the ids it
        claimed and the error type. A record a sweep is processing (its claim within the
        lease) is left to that sweep, so no record's hook runs twice at once."""
        hook = self._hooks.get(category)
        error: str | None = None
        table = self._tables.retention
        with self._store.transaction() as connection:
            claimed = list(
                connection.execute(
                    update(table)
                    .where(
                        table.c.category == category,
                        table.c.record_id.in_(record_ids),
                        or_(
                            table.c.status != _RUNNING,
                            table.c.claimed_at <= self._clock() - _LEASE,
                        ),
                    )
                    .values(status=_RUNNING, claimed_at=self._clock(), due_at=now)
                    .returning(table.c.record_id)
                ).scalars()
            )
        if not claimed:
            return claimed, None
        try:
            if hook is None:
                error = "NoHookRegistered"
            else:
                with self._renewing(category, claimed):
                    hook(list(claimed))
        except Exception as failure:  # recorded by type only
            error = type(failure).__name__
        self._finish(category, claimed, now, error)
        return claimed, error
