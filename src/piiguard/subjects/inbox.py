"""Subject requests (PIPL Art. 44-48): opened with a due date, fulfilled by the part that
does the work (export, erasure, correction, withdrawal, an explanation), or refused with a
reason; every outcome a PII-free receipt, and ``overdue`` for what is late.

The due date is one function, :meth:`RequestDeadline.due`: by default 30 calendar days
(GB/T 35273-2020 §8.7 c: reply within 30 days or the period laws and regulations set),
configurable to working days with the shop's own holidays, or another count.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import insert, select, update

from piiguard.errors import InvalidArgument, boundary, require_subject
from piiguard.store import Store, aware

__all__ = ["KINDS", "REFUSALS", "RequestDeadline", "Requests", "SubjectRequest"]

#: What a subject may ask (PIPL Art. 44-48): to see (access), to have a copy (copy, a
#: portable JSON export), to correct, to delete, to withdraw consent, to have the processing
#: explained.
KINDS = frozenset({"access", "copy", "correct", "delete", "withdraw", "explain"})
RequestKind = Literal["access", "copy", "correct", "delete", "withdraw", "explain"]
#: Why a request may be refused: recorded as one of these words, never as free text (which
#: could hold what the subject wrote).
REFUSALS = frozenset(
    {
        "identity_not_verified",
        "legal_obligation",  # a law requires keeping the data (PIPL Art. 47, last paragraph)
        "legal_hold",
        "national_security",
        "manifestly_unfounded",
        "excessive",
        "no_such_data",
        "other_rights",  # fulfilling it would harm others' rights
    }
)
_OPEN, _WORKING, _FULFILLED, _REFUSED = "open", "working", "fulfilled", "refused"
#: How long a claim holds: an instance that died mid-request gives it up after this.
_LEASE = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class RequestDeadline:
    """How long a request may take: ``days`` calendar days, or working days when
    ``working_days`` (Saturdays, Sundays and ``holidays`` skipped; ``workdays`` are weekend
    days worked, as China's adjusted working days are). Default: 30 calendar days,
    GB/T 35273-2020 §8.7 c."""

    days: int = 30
    working_days: bool = False
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if type(self.days) is not int or not 1 <= self.days <= 366:
            raise InvalidArgument("a request deadline is 1 to 366 days")
        for days in (self.holidays, self.workdays):
            if not all(isinstance(day, date) and not isinstance(day, datetime) for day in days):
                raise InvalidArgument(
                    "holidays and workdays are sets of datetime.date (not datetimes)"
                )
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "workdays", frozenset(self.workdays))

    def due(self, opened: datetime) -> datetime:
        """When a request opened at ``opened`` is due: the end of its last day, UTC."""
        day = opened.astimezone(UTC).date()
        if not self.working_days:
            day += timedelta(days=self.days)
        else:
            left = self.days
            while left:
                day += timedelta(days=1)
                if self._working(day):
                    left -= 1
        return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)

    def _working(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays


@dataclass(frozen=True, slots=True)
class SubjectRequest:
    """One request, as the inbox keeps it: no subject id, no value.

    Attributes:
        request_id: its id.
        kind: what was asked (:data:`KINDS`).
        opened_at, due_at: when it was opened and when it is due.
        verified_by: how the subject's identity was verified (``"sms_otp"``).
        status: ``open``, ``working`` (claimed by an instance fulfilling it), ``fulfilled``
            or ``refused``.
        closed_at: when it was fulfilled or refused.
        actor: who fulfilled or refused it.
        reason: why it was refused (:data:`REFUSALS`).
        receipt: what was done, PII-free (counts, parts, ids of receipts).
    """

    request_id: str
    kind: str
    opened_at: datetime
    due_at: datetime
    verified_by: str
    status: str
    closed_at: datetime | None = None
    actor: str | None = None
    reason: str | None = None
    receipt: Mapping[str, Any] = field(default_factory=dict)

    @property
    def overdue(self) -> bool:
        """Still open after its due date (by the wall clock; ``Requests.overdue`` takes a
        time)."""
        return self.status == _OPEN and datetime.now(UTC) > self.due_at


Work = Callable[[str, "SubjectRequest", Mapping[str, Any]], tuple[Any, Mapping[str, Any]]]


class Requests:
    """``guard.requests``: the subject request inbox.

    Args:
        store: where requests are kept.
        pseudonym: a subject id's keyed pseudonym (how requests name subjects).
        clock: the current time.
        work: kind -> the function that fulfils it: called with the subject, the request
            and the caller's arguments, it returns (what the subject receives, a PII-free
            receipt).
        recorded: records an operation on a request (the audit log).
        seal: keeps the subject id with the request, encrypted under the subject's own key
            and bound to the request's id, kind and verification (so that the request is
            done without asking who again, a row whose kind was changed by hand does not
            open, and an erasure leaves the request naming nobody).
        unseal: opens what ``seal`` kept.
        actor_refusal: why a name cannot be the actor of a request (the audit log's rule),
            or None.
        deadline: how long a request may take.
    """

    def __init__(
        self,
        store: Store,
        *,
        pseudonym: Callable[[str], str],
        clock: Callable[[], datetime],
        work: Mapping[str, Work],
        recorded: Callable[[str, str, str | None], None],
        seal: Callable[[str, Mapping[str, str]], str],
        unseal: Callable[[str, Mapping[str, str]], str],
        actor_refusal: Callable[[str], Exception | None],
        deadline: RequestDeadline | None = None,
    ) -> None:
        if deadline is not None and not isinstance(deadline, RequestDeadline):
            raise InvalidArgument("request_deadline is a pg.RequestDeadline")
        self._store = store
        self._pseudonym = pseudonym
        self._clock = clock
        self._work = dict(work)
        self._recorded = recorded
        self._seal = seal
        self._unseal = unseal
        self._actor_refusal = actor_refusal
        self.deadline = deadline or RequestDeadline()

    @boundary
    def open(self, subject: str, *, kind: RequestKind, verified_by: str) -> SubjectRequest:
        """Record a request of ``subject`` with its due date.

        Args:
            kind: what the subject asks (:data:`KINDS`).
            verified_by: how their identity was verified (a method's name, such as
                ``"sms_otp"`` or ``"id_card_check"``: kept in clear, so never a value).

        Raises:
            InvalidArgument: an unknown kind, a subject that is not a non-empty str, a
                ``verified_by`` that is not a short name.
        """
        checked = require_subject(subject)
        refused = checked if isinstance(checked, InvalidArgument) else None
        if refused is None and kind not in KINDS:
            refused = InvalidArgument(f"a request's kind is one of {sorted(KINDS)}")
        refused = refused or _method(verified_by)
        if refused is not None:
            # an ID number, a code: not in the frame the error passes through
            del subject, checked, verified_by
            raise refused
        opened = self._clock().astimezone(UTC)
        request = SubjectRequest(
            request_id="req_" + secrets.token_hex(12),
            kind=kind,
            opened_at=opened,
            due_at=self.deadline.due(opened),
            verified_by=verified_by,
            status=_OPEN,
        )
        try:
            return self._opened(subject, request)
        except Exception as error:
            del subject, checked  # out of the frames the error passes through
            raise error.with_traceback(None) from None

    def _opened(self, subject: str, request: SubjectRequest) -> SubjectRequest:
        kind, verified_by, opened = request.kind, request.verified_by, request.opened_at
        pseudonym = self._pseudonym(subject)
        sealed = self._seal(subject, _bound(request.request_id, kind, verified_by))  # a key first
        with self._store.transaction() as connection:
            connection.execute(
                insert(self._store.tables.requests).values(
                    id=request.request_id,
                    subject=pseudonym,
                    sealed=sealed,
                    kind=kind,
                    opened_at=opened,
                    due_at=request.due_at,
                    verified_by=verified_by,
                    status=_OPEN,
                    receipt="{}",
                )
            )
        self._recorded("request_open", pseudonym, None)
        return request

    @boundary
    def get(self, request_id: str) -> SubjectRequest:
        """The request of that id.

        Raises:
            InvalidArgument: no such request.
        """
        row = self._row(request_id)
        return _request(row)

    def _row(self, request_id: object) -> Any:
        if type(request_id) is not str or len(request_id) > 40:
            raise InvalidArgument("a request id is the str open() returned")
        table = self._store.tables.requests
        with self._store.engine.connect() as connection:
            row = connection.execute(select(table).where(table.c.id == request_id)).first()
        if row is None:
            raise InvalidArgument("no request has that id")
        return row

    @boundary
    def of(self, subject: str) -> list[SubjectRequest]:
        """The subject's requests, oldest first."""
        table = self._store.tables.requests
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                select(table)
                .where(table.c.subject == self._pseudonym(subject))
                .order_by(table.c.opened_at, table.c.id)
            ).all()
        return [_request(row) for row in rows]

    @boundary
    def fulfil(
        self, request_id: str, *, actor: str, **arguments: Any
    ) -> tuple[Any, SubjectRequest]:
        """Do what the request asks, as ``actor``, and close it with its receipt; (what the
        subject receives, the request). Other ``arguments`` go to the work (``purpose`` for
        an access or copy, which is an audited export; a correction's ``changes``; a
        withdrawal's ``purposes``, default all).

        The request is claimed first, so that two instances never both do it; a request
        whose work fails is released, still open. A deletion whose erasure is not complete
        (a participant failed, keys deferred) stays open with the erasure's receipt: fulfil
        it again to resume.

        Raises:
            InvalidArgument: no such request, it is closed or being fulfilled, or the actor
                is not a name the audit log keeps (nothing is done).
        """
        refused = _actor(actor) or self._actor_refusal(actor)
        if refused is not None:
            raise refused
        row, claim = self._claim(request_id, actor)
        try:
            subject = self._unseal(row.sealed, _bound(row.id, row.kind, row.verified_by))
            request = _request(row)
            answer, receipt = self._work[request.kind](
                subject, request, {**arguments, "actor": actor}
            )
        except Exception as error:
            self._release(row.id, claim, None)
            subject = arguments = None  # type: ignore[assignment]  # out of the frames
            raise error.with_traceback(None) from None
        subject = arguments = None  # type: ignore[assignment]
        if receipt.get("completed") is False:  # a deletion to resume
            self._release(row.id, claim, receipt)
            return answer, _request(self._row(row.id))
        closed = self._close(request, _FULFILLED, actor, None, receipt, claim=claim)
        self._recorded("request_fulfil", row.subject, actor)
        return answer, closed

    def _claim(self, request_id: str, actor: str) -> Any:
        """Mark an open request as being fulfilled by ``actor`` (one instance wins); a
        claim older than :data:`_LEASE` is taken over (its holder died)."""
        row = self._row(request_id)
        now = self._clock().astimezone(UTC)
        table = self._store.tables.requests
        open_or_stale = (table.c.status == _OPEN) | (
            (table.c.status == _WORKING) & (table.c.claimed_at < now - _LEASE)
        )
        claim = secrets.token_hex(12)
        with self._store.transaction() as connection:
            done = connection.execute(
                update(table)
                .where(table.c.id == row.id, open_or_stale)
                .values(status=_WORKING, claimed_at=now, actor=actor, claim=claim)
            )
        if done.rowcount != 1:
            raise InvalidArgument("the request is closed already, or being fulfilled")
        return row, claim

    def _release(self, request_id: str, claim: str, receipt: Mapping[str, Any] | None) -> None:
        """Give a claimed request back, open (with the receipt of what was done so far);
        only while the claim is still this one (another instance may have taken it over)."""
        table = self._store.tables.requests
        values: dict[str, Any] = {"status": _OPEN, "claimed_at": None, "claim": None}
        if receipt is not None:
            values["receipt"] = json.dumps(dict(receipt), sort_keys=True, default=str)
        with self._store.transaction() as connection:
            connection.execute(
                update(table)
                .where(table.c.id == request_id, table.c.status == _WORKING, table.c.claim == claim)
                .values(**values)
            )

    @boundary
    def refuse(self, request_id: str, *, reason: str, actor: str) -> SubjectRequest:
        """Close a request without doing it, for one of :data:`REFUSALS` (PIPL Art. 50: a
        refusal gives its reason).

        Raises:
            InvalidArgument: no such request, it is closed already, or an unknown reason.
        """
        if reason not in REFUSALS:
            raise InvalidArgument(f"a refusal's reason is one of {sorted(REFUSALS)}")
        refused = _actor(actor) or self._actor_refusal(actor)
        if refused is not None:
            raise refused
        row = self._row(request_id)
        if row.status != _OPEN:
            raise InvalidArgument("the request is closed already, or being fulfilled")
        closed = self._close(_request(row), _REFUSED, actor, reason, {})
        self._recorded("request_refuse", row.subject, actor)
        return closed

    def _close(
        self,
        request: SubjectRequest,
        status: str,
        actor: str,
        reason: str | None,
        receipt: Mapping[str, Any],
        *,
        claim: str | None = None,
    ) -> SubjectRequest:
        """Close a request: a refusal only while it is open, a fulfilment only while this
        instance's claim holds."""
        closed_at = self._clock().astimezone(UTC)
        text = json.dumps(dict(receipt), sort_keys=True, ensure_ascii=False, default=str)
        table = self._store.tables.requests
        with self._store.transaction() as connection:
            done = connection.execute(
                update(table)
                .where(
                    table.c.id == request.request_id,
                    (table.c.status == _OPEN)
                    if claim is None
                    else ((table.c.status == _WORKING) & (table.c.claim == claim)),
                )
                .values(
                    status=status,
                    closed_at=closed_at,
                    actor=actor or None,
                    reason=reason,
                    receipt=text,
                    claim=None,
                )
            )
            if done.rowcount != 1:  # another instance closed it meanwhile
                raise InvalidArgument("the request is closed already")
        return SubjectRequest(
            request.request_id,
            request.kind,
            request.opened_at,
            request.due_at,
            request.verified_by,
            status,
            closed_at,
            actor or None,
            reason,
            json.loads(text),
        )

    # -- erasure (a participant) ---------------------------------------------------------

    participant = "requests"

    def export_subject(self, subject: str) -> object:
        """The subject's requests: kind, times, status (no receipt details)."""
        return [
            {
                "request_id": r.request_id,
                "kind": r.kind,
                "opened_at": r.opened_at.isoformat(),
                "due_at": r.due_at.isoformat(),
                "status": r.status,
                "reason": r.reason,
            }
            for r in self.of(subject)
        ]

    def erase_subject(self, subject: str, now: datetime) -> str:
        """Unlink the subject's requests (a one-off marker instead of the pseudonym: the
        record that requests were answered stays, naming nobody); open ones can no longer
        be done (the subject's key is going) and are refused as ``no_such_data``."""
        table = self._store.tables.requests
        marker = "erased:" + secrets.token_hex(16)
        closed_at = now.astimezone(UTC)
        mine = table.c.subject == self._pseudonym(subject)  # a key first, then the store
        with self._store.transaction() as connection:
            waiting = (table.c.status == _OPEN) | (
                (table.c.status == _WORKING) & (table.c.kind != "delete")
            )
            stale = connection.execute(
                update(table)
                .where(mine, waiting)
                .values(status=_REFUSED, reason="no_such_data", closed_at=closed_at, claim=None)
            )
            done = connection.execute(update(table).where(mine).values(subject=marker))
        return f"{int(done.rowcount)} requests unlinked, {int(stale.rowcount)} open refused"

    @boundary
    def overdue(self, now: datetime | None = None) -> list[SubjectRequest]:
        """Open requests past their due date at ``now`` (default: the clock), most late
        first."""
        moment = now or self._clock()
        if moment.tzinfo is None:
            raise InvalidArgument("now is a timezone-aware datetime")
        moment = moment.astimezone(UTC)  # stored in UTC (SQLite compares wall times)
        table = self._store.tables.requests
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                select(table)
                .where(table.c.status.in_([_OPEN, _WORKING]), table.c.due_at < moment)
                .order_by(table.c.due_at, table.c.id)
            ).all()
        return [_request(row) for row in rows]


def _actor(actor: object) -> InvalidArgument | None:
    if type(actor) is not str or not actor.strip() or len(actor) > 128 or not actor.isprintable():
        return InvalidArgument("a request is fulfilled or refused by a named actor (actor=)")
    return None


def _method(verified_by: object) -> InvalidArgument | None:
    """A verification method's name: letters and ``_ - :``, no digits (never a code, a
    phone or an ID number)."""
    if (
        type(verified_by) is not str
        or not 1 <= len(verified_by) <= 64
        or not verified_by.isascii()
        or not verified_by.replace("_", "").replace("-", "").replace(":", "").isalpha()
    ):
        return InvalidArgument(
            "verified_by names the verification method (sms_otp, id_card_check): letters "
            "and _ - : only, never a value"
        )
    return None


def _bound(request_id: str, kind: str, verified_by: str) -> dict[str, str]:
    """What the sealed subject id is bound to: its request, kind and verification."""
    return {"id": request_id, "kind": kind, "verified_by": verified_by}


def _request(row: Any) -> SubjectRequest:
    return SubjectRequest(
        request_id=row.id,
        kind=row.kind,
        opened_at=aware(row.opened_at),
        due_at=aware(row.due_at),
        verified_by=row.verified_by,
        status=row.status,
        closed_at=None if row.closed_at is None else aware(row.closed_at),
        actor=row.actor,
        reason=row.reason,
        receipt=json.loads(row.receipt),
    )
