"""The audit log: every access event kept in the store, chained by a keyed MAC, before the
reveal it reports returns.

Threads that record at the same time share one transaction (group commit): the first to
arrive writes everything queued, the others wait for that commit, so an event is durable
when :meth:`AuditLog.record` returns and throughput grows with concurrency. Processes are
serialised on the chain's head row. A failed write fails every reveal it was to record.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
import unicodedata
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from piiguard.audit.chain import GENESIS, Digest, checkpoint_signature, link, outbox_seal
from piiguard.detect import PATTERN_KINDS, scan
from piiguard.errors import AuditLogBroken, InvalidArgument, PiiGuardError, boundary
from piiguard.events import AccessEvent, Rows, actor_name, current_acting
from piiguard.kinds import sensitive_kinds
from piiguard.seals import Sealing
from piiguard.store import Binding, Store

#: What a batch's sealed values are bound to: nothing else is sealed under their key.
_ROWS_AAD = b"piiguard audit batch rows v1"

__all__ = ["JOINED", "AuditEvent", "AuditHead", "AuditLog", "AuditReport", "IncidentScope"]
#: Actions whose change joins an application's transaction under ``guard.bind``: their
#: events do too (through the outbox). Every other event commits on its own.
JOINED = frozenset({"consent_grant", "consent_withdraw", "consent_expire"})
#: Actions that hand values to someone: what an incident's scope counts.
REVEALS = frozenset(
    {"decrypt", "detokenize", "fpe_decrypt", "export", "share", "reveal", "consent_proof"}
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_PAGE = 2000
_LOG = "main"
#: Context keys that name a place in the schema, kept in clear; every other context value
#: (a row id, a token) is stored as a keyed digest, as it may be a subject's id.
SCHEMA_KEYS = frozenset(
    {"table", "field", "column", "kind", "purpose", "piiguard", "role", "reason", "grant"}
    | {"grantee", "ticket", "by", "view", "recipient", "country"}
)
#: What a schema name, kind or purpose looks like; anything else (a value passed by mistake,
#: a phone as a "kind") is stored as a keyed digest.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
#: Separators between digits (or a digit and an ID's check character), taken out before a
#: name is scanned for a number written in groups.
_BETWEEN_DIGITS = re.compile(r"(?<=[0-9])[\s._/\\|:,+-]+(?=[0-9Xx])")
#: Six digits in a row: part of a phone, a card or an ID number, never of a name.
_DIGIT_RUN = re.compile(r"[0-9]{6}")
_LIVE_LOGS: weakref.WeakSet[AuditLog] = weakref.WeakSet()
#: How a value was shown when it was not shown in clear.
_NOT_REVEALED = frozenset({"masked", "token"})
_log = structlog.get_logger("piiguard.audit")
#: How long events are kept by default: 180 days, the six months the Cybersecurity Law
#: (Art. 21) asks network logs to be kept, at least.
DEFAULT_RETENTION = timedelta(days=180)


def _looks_like_a_name(text: str) -> bool:
    """Whether ``text`` may be stored in clear as a schema name, kind, purpose or role."""
    return _NAME.fullmatch(text) is not None and _DIGIT_RUN.search(text) is None


def reads_pii(name: str) -> bool:
    """Whether a name kept in clear (an actor, a grant's ticket) holds what ``pg.scan`` finds
    (a phone, an ID number, ...): a careless caller naming an actor by a customer's phone
    must not put the phone in the audit table. Also scanned in its :func:`actor_name`
    spelling with every decimal digit made ASCII, combining marks dropped and the separators
    between digits taken out (``138.1234.5678``, ``110105 19491231 002X``), so that
    full-width digits, fillers, another script's digits or grouping do not hide a number."""
    if scan(name, kinds=PATTERN_KINDS):
        return True
    plain = "".join(
        str(unicodedata.decimal(char)) if char.isdecimal() else char
        for char in actor_name(name)
        if not unicodedata.combining(char)
    )
    joined = _BETWEEN_DIGITS.sub("", plain)
    return any(text != name and scan(text, kinds=PATTERN_KINDS) for text in {plain, joined})


#: :func:`reads_pii` for names (actors, tickets), remembered: a name recurs. Values (a share's
#: fields) go to :func:`reads_pii` itself, so that no value is kept in a cache.
holds_pii = functools.lru_cache(maxsize=4096)(reads_pii)


def shown_actor(actor: str) -> str:
    """An actor as piiguard's own log may name it: its one spelling, or ``[withheld]`` when it
    holds personal information (the audit log refuses such an actor; the log must not have
    printed it first)."""
    named = actor_name(actor)
    return "[withheld]" if holds_pii(named) else named


def micros(moment: datetime) -> int:
    """How the audit part stores a time: microseconds since the epoch, UTC."""
    if moment.tzinfo is None:
        raise InvalidArgument("audit times are timezone-aware datetimes")
    return (moment - _EPOCH) // _MICROSECOND


def moment(stored: int) -> datetime:
    """The time :func:`micros` stored."""
    return _EPOCH + stored * _MICROSECOND


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One stored event, as :meth:`AuditLog.events` gives it back: identifiers only.

    Attributes:
        seq: its place in the log (1, 2, ...).
        at: when it happened (UTC).
        actor, action, purpose, kind, result, count: as recorded.
        subjects: keyed pseudonyms of the subjects concerned (never their ids).
        detail: the context (row ids as keyed digests), the key id, a batch's rows.
    """

    seq: int
    at: datetime
    actor: str
    action: str
    purpose: str | None
    kind: str | None
    result: str
    count: int
    subjects: tuple[str, ...]
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditHead:
    """The last event of the log and its chain value: keep it outside the store (a ticket,
    another system's log) to prove later that no event after it was cut off."""

    seq: int
    chain: str


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What :meth:`AuditLog.verify` found.

    Attributes:
        ok: every event checked is as written, in order, none missing.
        checked: how many events were checked.
        first_bad: the sequence number of the first event that does not verify (for a
            deleted event, the one after the gap; for a cut-off tail, the first missing).
        reason: what is wrong there, in words; None when ok.
        head: the last event that verified.
    """

    ok: bool
    checked: int
    first_bad: int | None = None
    reason: str | None = None
    head: AuditHead | None = None


@dataclass(frozen=True, slots=True)
class IncidentScope:
    """What a breach notice needs to say (PIPL Art. 57), from the audit log: pseudonyms and
    names of kinds and fields, never an id or a value.

    Attributes:
        events: how many reveals (and exports) matched.
        values: how many values they showed in all, in clear or masked.
        subjects: how many distinct subjects are concerned (those whose keys or tokens
            name them; values encrypted without ``subject=`` are counted in ``values`` only).
        pseudonyms: the subjects' keyed pseudonyms, to match against your own records with
            ``guard.audit.pseudonym(subject_id)``.
        kinds: the PII kinds revealed in clear, where the context or the token named one.
        sensitive: whether any of them is sensitive personal information.
        fields: ``table.field`` of every context revealed.
        actors, purposes: who revealed, and why.
        recipients: who received data (shares; empty until sharing records some).
        first, last: when the first and the last matching reveal happened.
    """

    events: int
    values: int
    subjects: int
    pseudonyms: frozenset[str]
    kinds: frozenset[str]
    sensitive: bool
    fields: frozenset[str]
    actors: frozenset[str]
    purposes: frozenset[str]
    recipients: frozenset[str]
    first: datetime | None
    last: datetime | None


class _Stale(Exception):
    """The connection the writer kept failed its first statement: retry on a fresh one."""


class _Bad(Exception):
    """Where a walk of the chain stopped: the event and what is wrong there."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(seq, reason)
        self.seq = seq
        self.reason = reason


class _NoHead(Exception):
    """The head row is missing: the write goes the slow way, which makes it."""


class _Ticket:
    __slots__ = ("done", "error", "row")

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row
        self.done = False
        self.error: BaseException | None = None


class AuditLog:
    """The keyed, hash-chained audit log (``guard.audit``); the Guard's default event sink.

    Args:
        store: where events are kept.
        chain_mac: the MAC the chain is computed with (a key the KEK wraps).
        context_mac: the MAC row ids and tokens are digested with before they are stored.
        rows_sealer: the AEAD a batch's varying values (row ids) are sealed with, by the id
            of the key to open with (None: the current one).
        checkpoint_mac: the MAC checkpoints are signed with (another key the KEK wraps).
        clock: the current time (timezone-aware).
        pseudonym: a subject id's keyed pseudonym (how events name subjects).
        retention: how long events are kept before :meth:`prune` may remove them (default
            180 days: the Cybersecurity Law's six months of network logs, at least).
        pruned: records that a prune deleted this many events (the Guard's own recorder,
            so every sink hears of it); by default an ``audit_prune`` event in this log.
    """

    def __init__(
        self,
        store: Store,
        *,
        chain_mac: Callable[[], Digest],
        context_mac: Callable[[], Digest],
        rows_sealer: Callable[[int | None], Sealing],
        checkpoint_mac: Callable[[], Digest],
        clock: Callable[[], datetime],
        pseudonym: Callable[[str], str],
        retention: timedelta = DEFAULT_RETENTION,
        pruned: Callable[[int], None] | None = None,
    ) -> None:
        if not isinstance(retention, timedelta) or retention <= timedelta(0):
            raise InvalidArgument("the audit retention is a positive timedelta")
        self._store = store
        self._chain_mac = chain_mac
        self._context_mac = context_mac
        self._rows_sealer = rows_sealer
        self._checkpoint_mac = checkpoint_mac
        self._clock = clock
        self._pseudonym = pseudonym
        self.retention = retention
        self._pruned = self._record_prune if pruned is None else pruned
        self._condition = threading.Condition()
        self._queue: list[_Ticket] = []
        self._writing = False
        self._peak = 1  # the largest recent batch: how many threads record together
        self._written = 0  # the highest sequence number this instance committed
        #: events may wait in the outbox (an application committed them, or a process ended
        #: before it chained them): the first write, read or verification looks
        self._pending = True
        events, head = store.tables.audit_events, store.tables.audit_head
        # built once: a statement built per write costs more than the write
        self._read_head = (
            select(head.c.seq, head.c.chain).where(head.c.log == _LOG).with_for_update()
        )
        self._insert = insert(events)
        self._first_head = insert(head)
        self._last_event = select(events.c.seq, events.c.chain).order_by(events.c.seq.desc())
        # the hot path runs these on the driver directly, on a connection it keeps
        self._driver_read_head = store.compiled(self._read_head)
        self._driver_append = store.compiled(self._insert)
        self._held = store.held()
        self._driver_move_head = store.compiled(
            update(head)
            .where(head.c.log == _LOG)
            .values(seq=bindparam("seq"), chain=bindparam("chain"))
        )
        _LIVE_LOGS.add(self)

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock and queue (the parent's threads did not follow)."""
        self._condition = threading.Condition()
        self._queue = []
        self._writing = False
        self._held.forget()

    def close(self) -> None:
        """Give back the connection the writer keeps (the Guard closes it)."""
        with self._condition:
            self._held.close()

    # -- recording -------------------------------------------------------------------------

    def record(self, event: AccessEvent) -> None:
        """Keep ``event``: committed to the store when this returns, or an error is raised.

        Inside ``guard.bind``, an event that reports a change joining the application's
        transaction (:data:`JOINED`: a consent given, withdrawn or expired) is written in
        that transaction instead, to the outbox: it commits or rolls back with the change,
        and is chained into the log after the commit. Every other event (a reveal, an
        erasure, a grant of access) is committed on its own before the call returns, as its
        operation is: a rollback cannot take it back.
        """
        binding = self._store.bound()
        if binding is not None:
            if event.action in JOINED:
                self._defer(binding, self._row(event))
                return
            binding.refuse_own_lock()  # never queued behind a write that waits on it
        self._commit(_Ticket(self._row(event)))
        if self._pending:
            self._drain_quietly()

    def _commit(self, ticket: _Ticket) -> None:
        """Write one event with whatever others queued alongside it (group commit)."""
        condition = self._condition
        with condition:
            self._queue.append(ticket)
            while not ticket.done:
                if self._writing:
                    condition.wait()
                    continue
                self._writing = True
                if len(self._queue) < self._peak:
                    # others recorded alongside last time: let them queue before the write
                    condition.release()
                    time.sleep(0)
                    condition.acquire()
                batch, self._queue = self._queue, []
                self._peak = max(len(batch), self._peak - 1)
                outcome: BaseException | None = RuntimeError("the audit write was interrupted")
                condition.release()
                try:
                    outcome = self._write(batch)
                finally:
                    condition.acquire()
                    self._writing = False
                    for waiting in batch:
                        waiting.done, waiting.error = True, outcome
                    condition.notify_all()
        if ticket.error is not None:
            raise ticket.error

    # -- the outbox (events of a bound application transaction) ---------------------------

    def _defer(self, binding: Binding, row: dict[str, Any]) -> None:
        """Write an event's stored form to the outbox, in the application's transaction,
        under a one-time name that the chaining remembers (a copy put back is refused)."""
        wrapped = {"event": row, "once": secrets.token_hex(16)}
        body = json.dumps(wrapped, sort_keys=True, separators=(",", ":")).encode()
        seal = outbox_seal(self._chain_mac(), body)  # before the write: it may make the key
        binding.write().execute(
            insert(self._store.tables.audit_outbox).values(row=body.decode(), mac=seal)
        )
        binding.after_commit(self.drain_soon)

    def drain_soon(self) -> None:
        """Note that an application committed events to the outbox: the next write, read or
        verification chains them (``guard.bind`` drains at once after a Session's commit)."""
        self._pending = True

    def _drain_quietly(self) -> None:
        """Chain waiting events if that waits on no lock; else leave them for later (a read
        or an event must not wait on an application's transaction, nor fail for it)."""
        try:
            self.drain(wait=False)
        except Exception as error:  # the outbox waits for the next write or verification
            self._pending = True
            _log.info("audit_outbox_drain_deferred", error=type(error).__name__)

    @boundary
    def drain(self, *, wait: bool = True) -> int:
        """Chain the events waiting in the outbox into the log; return how many.

        Serialised with every other writer on the log's head, so two instances never chain
        the same row. A row whose seal does not hold (put there by hand), or a sealed copy
        of a row chained before (put back), is deleted and not chained; an
        ``audit_outbox_refused`` event says how many.
        """
        self._pending = False
        outbox = self._store.tables.audit_outbox
        with self._store.engine.connect() as connection:
            if connection.execute(select(outbox.c.id).limit(1)).first() is None:
                return 0
        mac = self._chain_mac()  # before the transaction: it may make the key
        chained = 0
        while True:
            with self._store.transaction(wait=wait) as connection:
                self._store.serialize(connection, "audit-head")
                rows = connection.execute(select(outbox).order_by(outbox.c.id).limit(_PAGE)).all()
                if not rows:
                    return chained
                entries: list[tuple[_Ticket, str]] = []
                refused = 0
                for row in rows:
                    body = str(row.row).encode()
                    if not _same(outbox_seal(mac, body), bytes(row.mac)):
                        refused += 1
                        continue
                    stored = json.loads(body)
                    if "once" in stored and "event" in stored:
                        entries.append((_Ticket(stored["event"]), str(stored["once"])))
                    else:  # written before schema 12: named by its digest (its time is in it)
                        name = "b" + hashlib.sha256(body).hexdigest()[:31]
                        entries.append((_Ticket(stored), name))
                before = self._chained_before(connection, [once for _, once in entries])
                batch, taken, replayed = [], set(), 0
                for ticket, once in entries:
                    if once in before or once in taken:
                        replayed += 1  # a copy of a row chained already, put back
                        continue
                    taken.add(once)
                    batch.append(ticket)
                if replayed:
                    _log.error("audit_outbox_replayed", count=replayed)
                    refused += replayed
                if refused:
                    _log.error("audit_outbox_refused", count=refused)
                    refusal = AccessEvent("audit_outbox_refused", "piiguard", None, self._clock())
                    batch.append(_Ticket(self._row(refusal)))
                    batch[-1].row["count"] = refused
                self._append_in(connection, batch, mac)
                if taken:
                    connection.execute(
                        insert(self._store.tables.audit_outbox_chained),
                        [{"once": once} for once in sorted(taken)],
                    )
                connection.execute(delete(outbox).where(outbox.c.id.in_([r.id for r in rows])))
                chained += len(rows) - refused
            if len(rows) < _PAGE:
                return chained

    def _chained_before(self, connection: Connection, onces: list[str]) -> set[str]:
        """Which of these one-time names an earlier drain chained: the rows that carry
        them are copies put back."""
        if not onces:
            return set()
        chained = self._store.tables.audit_outbox_chained
        return set(
            connection.execute(select(chained.c.once).where(chained.c.once.in_(onces))).scalars()
        )

    def _record_prune(self, count: int) -> None:
        current = current_acting()
        actor = "unnamed" if current is None else current[0]
        self.record(AccessEvent("audit_prune", actor, None, self._clock(), count=count))

    def _shower(self) -> Callable[[str, str], str]:
        """How a context or schema value (purpose, kind, ...) is stored: in clear when its key
        is a schema key and it looks like a name, else as a keyed digest. Queries filter
        through the same function, so a digested purpose is still found."""
        digest = self._context_mac().digest

        def shown(key: str, value: str) -> str:
            if key in SCHEMA_KEYS and _looks_like_a_name(value):
                return value
            data = key.encode("utf-8", "surrogatepass") + b"\x00"
            return "h:" + digest(data + value.encode("utf-8", "surrogatepass")).hex()[:20]

        return shown

    def _shown_many(self, key: str, values: Sequence[str | None]) -> list[str | None]:
        """How events name each of many values under one key that varies between a batch's
        rows (None where a row has none): in clear when :meth:`_shower` keeps it so, else a
        keyed digest from the context MAC's keyed hash (``k:``, keyed BLAKE2s; HMAC-SM3's
        ``h:`` in the SM suite), under half of HMAC's cost per row. Batches recorded by
        earlier versions of piiguard hold :meth:`_shower`'s ``h:`` form there."""
        prefix = key.encode("utf-8", "surrogatepass") + b"\x00"
        mac = self._context_mac()
        keyed = mac.keyed_hash()
        in_clear = key in SCHEMA_KEYS
        out = [
            value if in_clear and value is not None and _looks_like_a_name(value) else None
            for value in values
        ]
        texts = [(n, v) for n, v in enumerate(values) if v is not None and out[n] is None]
        todo = [n for n, _ in texts]
        if keyed is not None:
            digests = keyed.names(prefix, [text for _, text in texts], chars=20, tag="k:")
        else:
            data = [prefix + text.encode("utf-8", "surrogatepass") for _, text in texts]
            digests = ["h:" + digest[:10].hex() for digest in mac.digest_many(data)]
        for n, digest in zip(todo, digests, strict=True):
            out[n] = digest
        return out

    def _factored(
        self, rows: Sequence[Mapping[str, str]], label: Callable[[str], str]
    ) -> dict[str, Any]:
        """A batch's contexts as stored: ``common`` (what every row shares, digested once)
        and ``sealed`` (each varying key's value in each row, None where a row has none,
        sealed as one text). Read back as ``rows``, each value named (:meth:`_opened`)."""
        shown = self._shower()
        if isinstance(rows, Rows) and len(set(rows.values)) > 1:  # already factored
            shared = {label(key): shown(key, value) for key, value in rows.base.items()}
            sealed = self._sealed({rows.key: list(rows.values)})
            return {"common": shared, "sealed": sealed} if shared else {"sealed": sealed}
        first, count = rows[0], len(rows)
        keys = list(first)
        known = set(keys)
        keys += [k for row in rows if row.keys() != known for k in row if k not in known]
        keys = list(dict.fromkeys(keys))  # first appearance order, each key once
        common: dict[str, str] = {}
        varying: dict[str, list[str | None]] = {}
        for key in keys:
            column = [row.get(key) for row in rows]
            value = first.get(key)
            if value is not None and column.count(value) == count:
                common[label(key)] = shown(key, value)
            else:
                varying[key] = column
        if not varying:  # every row alike: one row, as the rows each would say
            return {"common": common, "rows": [{} for _ in rows]}
        sealed = self._sealed(varying)
        return {"common": common, "sealed": sealed} if common else {"sealed": sealed}

    def _sealed(self, columns: Mapping[str, list[str | None]]) -> dict[str, Any]:
        """A batch's varying values as stored: one sealed JSON text (a seal per batch, not a
        digest per row), with the id of its key."""
        sealer = self._rows_sealer(None)
        data = json.dumps(columns, separators=(",", ":")).encode()
        text = base64.urlsafe_b64encode(sealer.seal(data, _ROWS_AAD)).decode()
        return {"key": sealer.key_id, "text": text}

    def _opened(self, detail: dict[str, Any]) -> dict[str, Any]:
        """A stored detail as events show it: a sealed batch as ``rows``, one mapping per
        row, each varying value named by :meth:`_shown_many` (never in clear). A batch that
        does not open (changed in the table: :meth:`verify` says so) is shown as stored;
        batches stored before sealing (``rows``) read as they are."""
        sealed = detail.get("sealed")
        if not isinstance(sealed, dict):
            return detail
        columns = self._unsealed(sealed)
        if columns is None:
            return detail
        shown = self._shower()
        labels = [_label(key, shown) for key in columns]
        named = [self._shown_many(key, column) for key, column in columns.items()]
        del detail["sealed"]
        detail["rows"] = [
            {label: value for label, value in zip(labels, values, strict=True) if value is not None}
            for values in zip(*named, strict=True)
        ]
        return detail

    def _unsealed(self, sealed: Mapping[str, Any]) -> dict[str, list[str | None]] | None:
        """The columns of a sealed batch, or None when it does not open or is malformed."""
        try:
            key_id = sealed["key"]
            if type(key_id) is not int:  # JSON gives floats (Infinity), strings, ...
                return None
            sealer = self._rows_sealer(key_id)
            data = sealer.open(base64.urlsafe_b64decode(str(sealed["text"])), _ROWS_AAD)
            columns = None if data is None else json.loads(data)
        except (KeyError, TypeError, ValueError, OverflowError, PiiGuardError):
            return None
        if not isinstance(columns, dict) or not columns:
            return None
        lists = list(columns.values())
        if not all(isinstance(c, list) for c in lists) or len(set(map(len, lists))) != 1:
            return None
        if not all(v is None or isinstance(v, str) for c in lists for v in c):
            return None
        return columns

    def _row(self, event: AccessEvent) -> dict[str, Any]:
        """The stored form of an event: ids digested, contexts of a batch factored."""
        shown = self._shower()

        def label(key: str) -> str:
            return _label(key, shown)

        def named(key: str, value: str | None) -> str | None:
            return None if value is None else shown(key, value)

        detail: dict[str, Any] = {}
        if event.context:
            detail["context"] = {label(k): shown(k, v) for k, v in sorted(event.context.items())}
        if event.key_id is not None:
            detail["key_id"] = event.key_id
        if event.rows:  # factored before digesting: what every row shares is digested once
            detail.update(self._factored(event.rows, label))
        actor = actor_name(event.actor)  # one spelling per person (events(actor=))
        if holds_pii(actor):
            raise InvalidArgument(
                "an actor is named by a staff or service id, not by personal information"
            )
        return {
            "at_us": micros(event.at),
            "actor": actor,
            "action": event.action,
            "purpose": named("purpose", event.purpose),
            "kind": named("kind", event.kind),
            "result": event.result,
            "count": event.count,
            "subjects": json.dumps(sorted(event.subjects), separators=(",", ":")),
            "detail": json.dumps(detail, sort_keys=True, separators=(",", ":")),
        }

    @staticmethod
    def _chained(
        batch: list[_Ticket], seq: int, chain: bytes, mac: Digest
    ) -> tuple[list[dict[str, Any]], int, bytes]:
        """The batch's rows, numbered and chained after (seq, chain): the one place rows get
        their chain values."""
        rows = []
        for ticket in batch:
            seq += 1
            row = ticket.row
            row["seq"] = seq
            chain = row["chain"] = link(mac, chain, row)
            rows.append(row)
        return rows, seq, chain

    def _write(self, batch: list[_Ticket]) -> Exception | None:
        """Append a batch in one transaction, chained after the head; the error, or None."""
        try:
            # keys first: making one (its first use in this process) takes a transaction
            # of its own, which must not wait behind this one
            mac = self._chain_mac()
            try:
                seq = self._append(batch, mac, retry=True)
            except _Stale:  # the kept connection had died (a server restart, an idle cut)
                seq = self._append(batch, mac, retry=False)
        except _NoHead:
            return self._write_first(batch)
        except Exception as error:
            _log.error("audit_write_failed", error=type(error).__name__, events=len(batch))
            return error.with_traceback(None)
        self._written = max(self._written, seq)
        return None

    def _append(self, batch: list[_Ticket], mac: Digest, *, retry: bool) -> int:
        """The batch's rows appended after the head on the kept connection; the new head's
        sequence number. _Stale when a reused connection fails its first statement."""
        reused = retry and self._held.warm
        with self._held.transaction() as cursor:
            try:
                head_seq, head_chain = _locked_head(cursor, self._driver_read_head({}))
            except _NoHead:
                raise
            except Exception as error:
                if reused:
                    raise _Stale from error
                raise
            rows, seq, chain = self._chained(batch, head_seq, head_chain, mac)
            sql = self._driver_append(rows[0])[0]
            cursor.executemany(sql, [self._driver_append(row)[1] for row in rows])
            cursor.execute(*self._driver_move_head({"seq": seq, "chain": chain}))
        return seq

    def _write_first(self, batch: list[_Ticket]) -> Exception | None:
        """The write that finds no head row (a new log, or a head deleted by hand): it makes
        the head, serialised with every other instance, after the last stored event (which
        ``verify`` checks like any other)."""
        try:
            mac = self._chain_mac()
            with self._store.transaction() as connection:
                self._store.serialize(connection, "audit-head")
                self._append_in(connection, batch, mac)
        except Exception as error:
            return error.with_traceback(None)
        return None

    def _append_in(self, connection: Connection, batch: list[_Ticket], mac: Digest) -> None:
        """Append a batch in ``connection``'s transaction (which serialised on the head),
        after the head row, or after the last stored event when the head row is missing."""
        found = connection.execute(self._read_head).first()
        last = found or connection.execute(self._last_event).first()
        seq, chain = (0, GENESIS) if last is None else (int(last.seq), bytes(last.chain))
        rows, seq, chain = self._chained(batch, seq, chain, mac)
        connection.execute(self._insert, rows)
        values = {"seq": seq, "chain": chain}
        if found is None:
            connection.execute(self._first_head, {"log": _LOG, **values})
        else:
            connection.execute(
                update(self._store.tables.audit_head)
                .where(self._store.tables.audit_head.c.log == _LOG)
                .values(**values)
            )
        self._written = max(self._written, seq)

    # -- reading ---------------------------------------------------------------------------

    @boundary
    def head(self) -> AuditHead | None:
        """The last event's sequence number and chain value, None for an empty log."""
        if self._pending:
            self._drain_quietly()
        head = self._store.tables.audit_head
        with self._store.engine.connect() as connection:
            found = connection.execute(
                select(head.c.seq, head.c.chain).where(head.c.log == _LOG)
            ).first()
        return None if found is None else AuditHead(int(found.seq), bytes(found.chain).hex())

    def _pages(
        self, connection: Connection, conditions: list[Any], after: int = 0
    ) -> Iterator[Any]:
        """Rows in sequence order after ``after``, a page at a time."""
        events = self._store.tables.audit_events
        while True:
            page = connection.execute(
                select(events)
                .where(events.c.seq > after, *conditions)
                .order_by(events.c.seq)
                .limit(_PAGE)
            ).all()
            yield from page
            if len(page) < _PAGE:
                return
            after = int(page[-1].seq)

    @boundary
    def verify(
        self, *, expected: AuditHead | None = None, from_checkpoint: bool = False
    ) -> AuditReport:
        """Recompute the chain; name the first event that is not as it was written.

        Verification starts at the first event, or (after a prune, or with
        ``from_checkpoint=True``) at a signed checkpoint: events before it are not read.

        Args:
            expected: a head kept outside the store (:meth:`head` at an earlier time): the
                log must still hold that event with that chain value, so a cut-off tail is
                found even when whoever cut it also rewrote the head row.
            from_checkpoint: start at the newest checkpoint instead of the first event kept.
        """
        self.drain()  # events an application committed are part of the log it verifies
        chain_mac, signing = self._chain_mac(), self._checkpoint_mac()  # before any transaction
        with self._store.engine.connect() as connection:
            start = self._start(connection, from_checkpoint, signing)
            if isinstance(start, AuditReport):
                return start
            previous, chain = start
            checked, last = 0, None if previous == 0 else AuditHead(previous, chain.hex())
            try:
                for previous, chain in self._links(connection, chain_mac, *start):
                    checked += 1
                    last = AuditHead(previous, chain.hex())
                    if (
                        expected is not None
                        and previous == expected.seq
                        and last.chain != expected.chain
                    ):
                        return AuditReport(
                            False, checked, previous, "differs from the expected head", last
                        )
            except _Bad as bad:
                return AuditReport(False, checked, bad.seq, bad.reason, last)
            head = self._store.tables.audit_head
            stored = connection.execute(
                select(head.c.seq, head.c.chain).where(head.c.log == _LOG)
            ).first()
        known = max(
            self._written,
            0 if stored is None else int(stored.seq),
            0 if expected is None else expected.seq,
        )
        if known > previous:
            return AuditReport(
                False, checked, previous + 1, f"events {previous + 1}..{known} are missing", last
            )
        if stored is not None and not _same(chain, bytes(stored.chain)):
            return AuditReport(False, checked, previous, "the head does not match", last)
        return AuditReport(True, checked, None, None, last)

    def _links(
        self,
        connection: Connection,
        chain_mac: Digest,
        previous: int,
        chain: bytes,
        through: int | None = None,
    ) -> Iterator[tuple[int, bytes]]:
        """The one walk of the chain: each event after ``previous`` (up to ``through``) with
        the chain value recomputed for it; :class:`_Bad` at the first that does not follow."""
        events = self._store.tables.audit_events
        bounds = [] if through is None else [events.c.seq <= through]
        for row in self._pages(connection, bounds, after=previous):
            seq = int(row.seq)
            if seq != previous + 1:
                raise _Bad(seq, f"events {previous + 1}..{seq - 1} are missing")
            chain = link(chain_mac, chain, row._mapping)
            if not _same(chain, bytes(row.chain)):
                raise _Bad(seq, "event does not verify")
            previous = seq
            yield seq, chain
        if through is not None and previous != through:
            raise _Bad(min(previous, through) + 1, f"events up to {through} are missing")

    def _verified(
        self,
        connection: Connection,
        macs: tuple[Digest, Digest],
        through: int,
        *,
        from_checkpoint: bool,
    ) -> bytes:
        """The chain value after event ``through``, recomputed from where verification
        starts; :class:`~piiguard.AuditLogBroken` if the log up to it does not verify. What
        a prune deletes and what a checkpoint vouches for is verified first: a signature
        over forged rows would make the forgery verify."""
        chain_mac, signing = macs
        start = self._start(connection, from_checkpoint, signing)
        if isinstance(start, AuditReport):
            raise AuditLogBroken(start.first_bad, start.reason)
        chain = start[1]
        try:
            for _seq, chain in self._links(connection, chain_mac, *start, through):  # noqa: B007
                pass  # the last chain value is the one wanted
        except _Bad as bad:
            raise AuditLogBroken(bad.seq, bad.reason) from None
        return chain

    def _start(
        self, connection: Connection, from_checkpoint: bool, signing: Digest
    ) -> tuple[int, bytes] | AuditReport:
        """Where verification begins: (0, genesis), or a checkpoint's (seq, chain) when the
        log begins after one (pruned) or when asked; a report if the start is not sound."""
        events, points = self._store.tables.audit_events, self._store.tables.audit_checkpoints
        found = connection.execute(select(func.min(events.c.seq))).scalar_one_or_none()
        if found is None:  # an empty log starts after its newest checkpoint (a prune's)
            newest = connection.execute(select(func.max(points.c.seq))).scalar_one_or_none()
            found = 1 if newest is None else int(newest) + 1
        first = int(found)
        if from_checkpoint:
            query = select(points).order_by(points.c.seq.desc()).limit(1)
        elif first == 1:
            return 0, GENESIS
        else:
            query = select(points).where(points.c.seq == first - 1)
        point = connection.execute(query).first()
        if point is None:
            if first == 1:
                return 0, GENESIS
            return AuditReport(False, 0, 1, f"events 1..{first - 1} are missing", None)
        seq, at_us, chain = int(point.seq), int(point.at_us), bytes(point.chain)
        signed = bytes(point.signature)
        pruned = _same(checkpoint_signature(signing, seq, at_us, chain, pruned=True), signed)
        if not pruned and not _same(checkpoint_signature(signing, seq, at_us, chain), signed):
            return AuditReport(False, 0, seq, "checkpoint does not verify", None)
        if not from_checkpoint and not pruned:  # events before it were deleted, not pruned
            return AuditReport(
                False, 0, 1, f"events 1..{seq} are missing, and no prune removed them", None
            )
        if not from_checkpoint and at_us >= micros(self._clock() - self.retention):
            return AuditReport(
                False, 0, 1, f"events 1..{seq} are missing, within the retention period", None
            )
        return seq, chain

    # -- checkpoints and pruning -------------------------------------------------------------

    @boundary
    def checkpoint(self) -> AuditHead | None:
        """Sign the current head as a checkpoint (verification can start there); None for an
        empty log. Sweeps make one; make more as often as you like."""
        events = self._store.tables.audit_events
        macs = self._chain_mac(), self._checkpoint_mac()  # before the transaction
        with self._store.transaction() as connection:
            self._store.serialize(connection, "audit-prune")  # a prune mid-walk is no gap
            last = connection.execute(
                select(events.c.seq, events.c.at_us).order_by(events.c.seq.desc()).limit(1)
            ).first()
            if last is None:
                return None
            seq = int(last.seq)
            chain = self._verified(connection, macs, seq, from_checkpoint=True)
            self._sign(connection, macs[1], seq, int(last.at_us), chain)
        return AuditHead(seq, chain.hex())

    def _sign(
        self,
        connection: Connection,
        signing: Digest,
        seq: int,
        at_us: int,
        chain: bytes,
        *,
        pruned: bool = False,
    ) -> None:
        points = self._store.tables.audit_checkpoints
        signature = checkpoint_signature(signing, seq, at_us, chain, pruned=pruned)
        if connection.execute(select(points.c.seq).where(points.c.seq == seq)).first():
            if pruned:  # a sweep's checkpoint here becomes the prune's
                where = points.c.seq == seq
                connection.execute(update(points).where(where).values(signature=signature))
            return
        connection.execute(
            insert(points).values(seq=seq, at_us=at_us, chain=chain, signature=signature)
        )

    @boundary
    def prune(self, *, now: datetime | None = None) -> int:
        """Delete the events older than the retention period, keeping the chain verifiable:
        the last one deleted becomes a signed checkpoint, and the prune is itself recorded
        (``audit_prune``, with the count). Returns how many were deleted.

        The events to delete are verified first: if they do not, nothing is deleted and
        :class:`~piiguard.AuditLogBroken` says where (a prune must not sign over forged
        times and so erase the evidence of a forgery).

        Only a leading run of old events goes (an event is never deleted while an earlier
        one is still kept), so a clock that once ran ahead cannot cut the log in the middle.
        """
        cutoff = micros((now or self._clock()) - self.retention)
        events, points = self._store.tables.audit_events, self._store.tables.audit_checkpoints
        macs = self._chain_mac(), self._checkpoint_mac()  # before the transaction
        with self._store.transaction() as connection:
            self._store.serialize(connection, "audit-prune")
            kept = connection.execute(
                select(func.min(events.c.seq)).where(events.c.at_us >= cutoff)
            ).scalar_one_or_none()
            bound = select(events.c.seq, events.c.at_us).order_by(events.c.seq.desc()).limit(1)
            if kept is not None:
                bound = bound.where(events.c.seq < int(kept))
            last = connection.execute(bound).first()
            if last is None:
                return 0
            seq, at_us = int(last.seq), int(last.at_us)
            chain = self._verified(connection, macs, seq, from_checkpoint=False)
            self._sign(connection, macs[1], seq, at_us, chain, pruned=True)
            gone = int(connection.execute(delete(events).where(events.c.seq <= seq)).rowcount)
            connection.execute(delete(points).where(points.c.seq < seq))
        self._pruned(gone)
        return gone

    @boundary
    def scope(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actors: Iterable[str] | None = None,
        purposes: Iterable[str] | None = None,
    ) -> IncidentScope:
        """The scope of an incident: every successful reveal in the window (``until``
        exclusive) by the given actors for the given purposes (all when None), summed up
        as subjects, kinds and fields, pseudonyms only (PIPL Art. 57)."""
        wanted_actors, wanted_purposes = _texts(actors), _texts(purposes)
        if wanted_purposes is not None:  # as stored: a purpose that is not name-like, digested
            shown = self._shower()
            wanted_purposes = frozenset(shown("purpose", p) for p in wanted_purposes)
        if wanted_actors is not None:
            wanted_actors = frozenset(actor_name(actor) for actor in wanted_actors)
        count = values = 0
        pseudonyms: set[str] = set()
        kinds: set[str] = set()
        fields: set[str] = set()
        seen_actors: set[str] = set()
        seen_purposes: set[str] = set()
        recipients: set[str] = set()
        first = last = None
        for event in self.events(since=since, until=until):
            if (
                event.action not in REVEALS
                or event.result != "ok"
                or (wanted_actors is not None and event.actor not in wanted_actors)
                or (wanted_purposes is not None and event.purpose not in wanted_purposes)
            ):
                continue
            count += 1
            values += event.count
            pseudonyms.update(event.subjects)
            kinds |= _kinds(event)
            fields |= _fields(event.detail)
            seen_actors.add(event.actor)
            if event.purpose is not None:
                seen_purposes.add(event.purpose)
            context = event.detail.get("context")
            recipient = context.get("recipient") if isinstance(context, dict) else None
            if recipient is not None:
                recipients.add(str(recipient))
            first = first or event.at
            last = event.at
        return IncidentScope(
            events=count,
            values=values,
            subjects=len(pseudonyms),
            pseudonyms=frozenset(pseudonyms),
            kinds=frozenset(kinds),
            sensitive=bool(sensitive_kinds(kinds)),
            fields=frozenset(fields),
            actors=frozenset(seen_actors),
            purposes=frozenset(seen_purposes),
            recipients=frozenset(recipients),
            first=first,
            last=last,
        )

    @boundary
    def pseudonym(self, subject: str) -> str:
        """The keyed pseudonym events and incident scopes name ``subject`` by."""
        return self._pseudonym(subject)

    @boundary
    def newest(self, action: str, where: Mapping[str, str]) -> AuditEvent | None:
        """The newest ``action`` event whose context holds ``where`` (values compared in
        their stored form: :meth:`stored_form`); None when there is none (never recorded,
        or pruned). What a sealed row is checked against: the log is chained and
        checkpointed, so a row put back from an old copy of the store disagrees with it.
        For rare actions (registrations): it reads them newest first."""
        shown = self._shower()
        wanted = {key: shown(key, value) for key, value in where.items()}
        events = self._store.tables.audit_events
        before: int | None = None
        with self._store.engine.connect() as connection:
            while True:  # a page at a time, newest first
                query = select(events).where(events.c.action == action)
                if before is not None:
                    query = query.where(events.c.seq < before)
                page = connection.execute(query.order_by(events.c.seq.desc()).limit(64)).all()
                for row in page:
                    event = self._event(row)
                    context = event.detail.get("context")
                    if isinstance(context, dict) and all(
                        context.get(key) == value for key, value in wanted.items()
                    ):
                        return event
                if len(page) < 64:
                    return None
                before = int(page[-1].seq)

    def _event(self, row: Any) -> AuditEvent:
        """A stored event as :meth:`events` gives it (a sealed batch opened and named)."""
        try:
            detail = json.loads(row.detail)
        except (ValueError, RecursionError):  # changed in the table: verify() names it
            return _stored_event(row, {"unreadable": True})
        if not isinstance(detail, dict):
            return _stored_event(row, {"unreadable": True})
        return _stored_event(row, self._opened(detail) if "sealed" in detail else detail)

    def stored_form(self, key: str, value: str) -> str:
        """How a context value under ``key`` is stored in an event (in clear for a schema
        name, else a keyed digest): for comparing a value with a stored event."""
        return self._shower()(key, value)

    def batch_form(self, key: str, value: str) -> str:
        """How events name a value under ``key`` that differs between a batch's rows (a row
        id) in the batch's ``rows`` (it is stored sealed): a faster keyed digest than
        :meth:`stored_form`'s. Batches recorded by earlier versions of piiguard hold
        :meth:`stored_form` there."""
        return str(self._shown_many(_text(key), [_text(value)])[0])

    def events(
        self,
        *,
        subject: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        purpose: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[AuditEvent]:
        """Stored events, oldest first, that match every filter given (``until`` exclusive);
        ``subject`` is a subject id, matched by its pseudonym."""
        events = self._store.tables.audit_events
        conditions: list[Any] = []
        if actor is not None:
            conditions.append(events.c.actor == actor_name(_text(actor)))
        if action is not None:
            conditions.append(events.c.action == _text(action))
        if purpose is not None:
            conditions.append(events.c.purpose == self._shower()("purpose", _text(purpose)))
        if since is not None:
            conditions.append(events.c.at_us >= micros(since))
        if until is not None:
            conditions.append(events.c.at_us < micros(until))
        named = None if subject is None else self._pseudonym(subject)
        subject = None
        if self._pending:
            self._drain_quietly()
        with self._store.engine.connect() as connection:
            for row in self._pages(connection, conditions):
                event = self._event(row)
                if named is None or named in event.subjects:
                    yield event


def _label(key: str, shown: Callable[[str, str], str]) -> str:
    """How an event names a context key: as it is when it looks like a name, else digested
    (a key may be a value too: {"13812345678": "o1"})."""
    return key if _looks_like_a_name(key) else shown("", key)


def _batch_rows(detail: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each row of a batch with what the rows share, skipping what is not a mapping (a
    detail changed in the table)."""
    common, rows = detail.get("common"), detail.get("rows")
    common = common if isinstance(common, dict) else {}
    if not isinstance(rows, list):
        return []
    return [{**common, **row} for row in rows if isinstance(row, dict)]


def _fields(detail: Mapping[str, Any]) -> set[str]:
    """``table.field`` of each context an event names (one, or a batch's rows)."""
    context = detail.get("context")
    contexts = [context] if isinstance(context, dict) else []
    return {
        f"{context['table']}.{context['field']}"
        for context in contexts + _batch_rows(detail)
        if isinstance(context.get("table"), str) and isinstance(context.get("field"), str)
    }


def _kinds(event: AuditEvent) -> set[str]:
    """The kinds an event revealed in clear (a masked value, or a token only the shop can
    resolve, does not reveal its kind's value)."""
    found = {event.kind} if event.kind else set()
    for shown in _batch_rows(event.detail):
        kind, view = shown.get("kind"), shown.get("view")
        if isinstance(kind, str) and kind and not (isinstance(view, str) and view in _NOT_REVEALED):
            found.add(kind)
    return found


def _locked_head(cursor: Any, statement: tuple[str, Any]) -> tuple[int, bytes]:
    """The head row, read (and on PostgreSQL locked) on a driver cursor; _NoHead if none."""
    cursor.execute(*statement)
    found = cursor.fetchone()
    if found is None:
        raise _NoHead
    return int(found[0]), bytes(found[1])


def _texts(values: Iterable[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        raise InvalidArgument("pass a list of names, not one str")
    return frozenset(_text(value) for value in values)


def _text(value: object) -> str:
    if type(value) is not str:
        raise InvalidArgument("audit filters are str")
    return value


def _same(left: bytes, right: bytes) -> bool:
    return hmac.compare_digest(left, right)


def _stored_event(row: Any, detail: dict[str, Any]) -> AuditEvent:
    return AuditEvent(
        seq=int(row.seq),
        at=moment(int(row.at_us)),
        actor=row.actor,
        action=row.action,
        purpose=row.purpose,
        kind=row.kind,
        result=row.result,
        count=int(row.count),
        subjects=tuple(json.loads(row.subjects)),
        detail=detail,
    )


def _reset_in_child() -> None:
    for log in list(_LIVE_LOGS):
        log._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
