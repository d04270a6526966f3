"""Subject requests: ``guard.erase(subject)`` and ``guard.export(subject)`` over every participant.

Erasure walks every participant (the retention schedule's records first, then the
application's tables, the vault and the consent ledger), records what each did, and then
decides the subject's keys in one place:

- a participant failed: the shred is *deferred* (run ``erase`` again; it resumes);
- something must stay readable (a legal hold on the subject, records frozen for a legal
  minimum or held): the shred is *scheduled*, and the sweeper runs it by itself once nothing
  blocks it any more, re-checking holds placed after the erasure;
- otherwise the keys are shredded now.

The receipt is persisted, holds no PII, is ``completed`` only when the keys are gone and no
step failed (a scheduled shred completes it later), and names what still links to the
subject: artefacts made under store-wide keys (keyed tokens, blind indexes, FPE tokens,
deterministic ciphertexts without ``subject=``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from piiguard.errors import InvalidArgument, KeyDestroyed, require_subject
from piiguard.store import Store, aware
from piiguard.subjects.protocol import (
    Erased,
    ErasureStep,
    KeptRecords,
    Participant,
    ShredRule,
    SubjectKeys,
)
from piiguard.subjects.tables import ApplicationTable, Corrector, Eraser, Exporter

__all__ = ["EXPORT_FORMAT", "EXPORT_VERSION", "ErasureReceipt", "Subjects"]

#: The export's format and version (PIPL Art. 45 portability): stable keys, JSON-serialisable.
#: Version 1: ``format``, ``version``, ``subject``, one key per participant, ``keys``,
#: ``destroyed``, ``unavailable``.
EXPORT_FORMAT = "piiguard.export"
EXPORT_VERSION = 1
#: Export keys that are not participants' names.
_RESERVED = frozenset({"format", "version", "subject", "keys", "destroyed", "unavailable"})


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    """The record of one erasure request.

    Attributes:
        completed: True only when every step is done and the subject's keys are destroyed.
        steps: what each participant did, then the keys.
        kept: records kept (a legal minimum, a hold), until when and why.
        linking: artefacts that may still link the subject's values across records: keyed
            ``token``, blind ``index``, ``deterministic`` ciphertexts and ``fpe`` tokens made
            under store-wide keys (those made with ``subject=`` were erased with the keys).
    """

    receipt_id: str
    reason: str
    requested_at: datetime
    completed: bool
    steps: tuple[ErasureStep, ...]
    kept: tuple[KeptRecords, ...] = field(default=())
    linking: tuple[str, ...] = field(default=())


class Subjects:
    """Erasure and access requests over the registered participants (``guard.subjects``)."""

    def __init__(
        self,
        store: Store,
        *,
        keys: SubjectKeys,
        rule: ShredRule,
        records: Participant,
        parts: Sequence[Participant],
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._keys = keys
        self._rule = rule
        self._records = records
        self._parts = tuple(parts)
        self._tables: dict[str, ApplicationTable] = {}
        self._clock = clock

    # -- registration ----------------------------------------------------------------------

    def eraser(self, table: str) -> Callable[[Eraser], Eraser]:
        """Register the function that erases a subject from one of the application's tables.

        It is called with the subject id on every ``guard.erase``, tracked records or not;
        it must be idempotent and may raise (the erasure then defers the key shred).
        """

        self._check_name(table)

        def register(function: Eraser) -> Eraser:
            self._table(table).eraser = function
            return function

        return register

    def exporter(self, table: str) -> Callable[[Exporter], Exporter]:
        """Register the function that returns a subject's rows of one of the application's
        tables for an access request (JSON-serialisable); called with the subject id."""

        self._check_name(table)

        def register(function: Exporter) -> Exporter:
            self._table(table).exporter = function
            return function

        return register

    def corrector(self, table: str) -> Callable[[Corrector], Corrector]:
        """Register the function that corrects a subject's rows of one of the application's
        tables (PIPL Art. 46): called with the subject id and the changes a correction
        request carries for that table; returns how many rows it changed."""

        self._check_name(table)

        def register(function: Corrector) -> Corrector:
            self._table(table).corrector = function
            return function

        return register

    def correct(self, subject: str, changes: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
        """Apply ``changes`` (table -> what to change there) through each table's corrector;
        table -> the count it reported. Every table is checked before any is called.

        Raises:
            InvalidArgument: no changes, or a table without a corrector.
        """
        if not isinstance(changes, Mapping) or not changes:
            raise InvalidArgument("a correction names table -> changes")
        functions = {}
        for table, change in changes.items():
            found = self._tables.get(table) if isinstance(table, str) else None
            if found is None or found.corrector is None or not isinstance(change, Mapping):
                raise InvalidArgument(
                    "a correction names only tables with a corrector, each with a mapping "
                    "of changes (@guard.subjects.corrector)"
                )
            functions[table] = found.corrector
        done = {}
        for table, function in functions.items():
            result = function(subject, changes[table])
            done[table] = result if isinstance(result, int) else 1
        return done

    def _check_name(self, name: object) -> None:
        if not isinstance(name, str) or not 0 < len(name) <= 64:
            raise InvalidArgument("a table name is a text of 1 to 64 characters")
        if name in _RESERVED or name in {p.participant for p in (self._records, *self._parts)}:
            raise InvalidArgument(f"{name!r} is a name piiguard uses; choose another")

    def _table(self, name: str) -> ApplicationTable:
        found = self._tables.get(name)
        if found is None:
            found = self._tables[name] = ApplicationTable(name)
        return found

    def _participants(self) -> list[Participant]:
        return [self._records, *self._tables.values(), *self._parts]

    # -- erasure ---------------------------------------------------------------------------

    def erase(self, subject: str, reason: str = "request") -> ErasureReceipt:
        """Erase a subject from every participant; see the module docstring."""
        refused = require_subject(subject)
        if isinstance(refused, InvalidArgument):
            del subject
            raise refused
        if not isinstance(reason, str) or not 0 < len(reason) <= 64:
            del subject
            raise InvalidArgument("reason is a text of 1 to 64 characters")
        scope = self._keys.subject_scope(subject)
        now = self._clock()
        steps: list[ErasureStep] = []
        kept: list[KeptRecords] = []
        for participant in self._participants():
            erased = _run(participant, subject, now)
            steps.extend(erased.steps)
            kept.extend(erased.kept)
        keys = self._keys_step(scope, now, failed=any(s.outcome == "failed" for s in steps))
        steps.append(keys)
        receipt = ErasureReceipt(
            "erasure_" + os.urandom(12).hex(),
            reason,
            now,
            completed=keys.outcome == "done" and all(s.outcome != "failed" for s in steps),
            steps=tuple(steps),
            kept=tuple(kept),
            linking=self._keys.linking_purposes(),
        )
        self._persist(scope, receipt)
        return receipt

    def _keys_step(self, scope: str, now: datetime, *, failed: bool) -> ErasureStep:
        if failed:
            return ErasureStep("keys", "subject keys", "deferred", "a step failed; run erase again")
        try:
            blocked, destroyed = self._shred_unless_blocked(scope, now, schedule=True)
        except Exception as error:  # recorded by type only: messages may hold PII
            return ErasureStep("keys", "subject keys", "failed", type(error).__name__)
        if blocked is not None:
            return ErasureStep("keys", "subject keys", "scheduled", blocked)
        return ErasureStep("keys", "subject keys", "done", f"{destroyed} destroyed")

    def _shred_unless_blocked(
        self, scope: str, now: datetime, *, schedule: bool, asked: datetime | None = None
    ) -> tuple[str | None, int]:
        """Decide and shred in one transaction, under the lock every hold takes too, so no
        hold (on the subject, a category or a record) lands between the decision and the
        shred. Returns why it is blocked (or None) and how many keys were destroyed: those
        made by ``asked`` (a deferred shred spares a subject who came back since). A blocked
        shred is scheduled when ``schedule``."""
        table = self._store.tables.scheduled_shreds
        with self._store.transaction() as connection:
            self._store.serialize_holds(connection)
            blocked = self._rule.shred_blocked(scope, now, connection=connection)
            if blocked is None:
                return None, self._keys.shred(scope, connection, made_by=asked)
            if schedule:  # due_at: the latest request, whose keys the shred will take
                self._keys.retire(scope, connection)  # new data gets keys the shred spares
                asked_before = connection.execute(
                    select(table.c.due_at).where(table.c.scope == scope)
                ).scalar_one_or_none()
                if asked_before is None:
                    connection.execute(table.insert().values(scope=scope, due_at=now))
                elif aware(asked_before) < now:
                    connection.execute(
                        update(table).where(table.c.scope == scope).values(due_at=now)
                    )
            return blocked, 0

    def run_deferred(self, now: datetime) -> int:
        """Shred every scheduled subject that nothing blocks any more (the sweeper calls it);
        their open receipts become completed. Return how many subjects were shredded."""
        table = self._store.tables.scheduled_shreds
        with self._store.engine.connect() as connection:
            scheduled = connection.execute(
                select(table.c.scope, table.c.due_at).where(table.c.due_at <= now)
            ).all()
        shredded = 0
        for scope, asked in scheduled:
            blocked, destroyed = self._shred_unless_blocked(
                scope, now, schedule=False, asked=aware(asked)
            )
            if blocked is not None:
                continue
            with self._store.transaction() as connection:
                connection.execute(delete(table).where(table.c.scope == scope))
                self._complete(connection, scope, destroyed)
            shredded += 1
        return shredded

    def _complete(self, connection: Any, scope: str, destroyed: int) -> None:
        receipts = self._store.tables.receipts
        rows = connection.execute(
            select(receipts.c.receipt_id, receipts.c.steps).where(
                receipts.c.subject == scope, receipts.c.completed.is_(False)
            )
        ).all()
        for row in rows:
            steps = json.loads(row.steps)
            if any(step["outcome"] == "failed" for step in steps):
                continue
            steps.append(
                asdict(ErasureStep("keys", "subject keys", "done", f"{destroyed} destroyed"))
            )
            connection.execute(
                update(receipts)
                .where(receipts.c.receipt_id == row.receipt_id)
                .values(completed=True, steps=json.dumps(steps, ensure_ascii=False))
            )

    def _persist(self, scope: str, receipt: ErasureReceipt) -> None:
        steps = [asdict(step) for step in receipt.steps] + [
            {
                "step": "kept",
                "target": k.category,
                "outcome": k.reason,
                "detail": f"{k.count} until {k.until.isoformat()}",
            }
            for k in receipt.kept
        ]
        steps += [
            {"step": "linking", "target": name, "outcome": "links", "detail": ""}
            for name in receipt.linking
        ]
        with self._store.transaction() as connection:
            connection.execute(
                self._store.tables.receipts.insert().values(
                    receipt_id=receipt.receipt_id,
                    subject=scope,
                    reason=receipt.reason,
                    requested_at=receipt.requested_at,
                    completed=receipt.completed,
                    steps=json.dumps(steps, ensure_ascii=False),
                )
            )

    def receipts(self, subject: str) -> list[Mapping[str, Any]]:
        """The persisted receipts of a subject's erasure requests, oldest first."""
        table = self._store.tables.receipts
        scope = self._keys.subject_scope(subject)
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                select(table).where(table.c.subject == scope).order_by(table.c.requested_at)
            ).all()
        return [
            {
                "receipt_id": row.receipt_id,
                "reason": row.reason,
                "completed": bool(row.completed),
                "steps": json.loads(row.steps),
            }
            for row in rows
        ]

    # -- access ----------------------------------------------------------------------------

    def export(self, subject: str) -> dict[str, Any]:
        """Everything every participant holds on a subject (PIPL Art. 45, GDPR Art. 15).

        A part whose data is under destroyed keys is exported as None and named in
        ``destroyed``; a part that fails is None and named, with the error's type, in
        ``unavailable``; ``keys`` counts the subject's keys by status.
        """
        refused = require_subject(subject)
        if isinstance(refused, InvalidArgument):
            del subject
            raise refused
        out: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "subject": subject,
        }
        destroyed: list[str] = []
        unavailable: list[dict[str, str]] = []
        for participant in self._participants():
            name = participant.participant
            try:
                out[name] = participant.export_subject(subject)
            except KeyDestroyed:
                out[name] = None
                destroyed.append(name)
            except Exception as error:  # named by type only: messages may hold PII
                out[name] = None
                unavailable.append({"part": name, "error": type(error).__name__})
        out["keys"] = dict(self._keys.scope_key_counts(self._keys.subject_scope(subject)))
        out["destroyed"] = destroyed
        out["unavailable"] = unavailable
        return out


def _run(participant: Participant, subject: str, now: datetime) -> Erased:
    """A participant's erasure, with a failure recorded as a failed step (by type only)."""
    name = participant.participant
    try:
        result = participant.erase_subject(subject, now)
    except Exception as error:  # recorded by type only: messages may hold PII
        return Erased((ErasureStep(_step_name(participant), name, "failed", type(error).__name__),))
    if isinstance(result, Erased):
        return result
    return Erased((ErasureStep(_step_name(participant), name, "done", result),))


def _step_name(participant: Participant) -> str:
    return "table" if isinstance(participant, ApplicationTable) else participant.participant
