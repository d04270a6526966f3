"""Erasure and access requests: ``guard.erase(subject)`` and ``guard.export(subject)``.

Erasure runs every step it can and says what each did, in a receipt that holds no PII and is
persisted: records deleted through the hooks, or frozen where a legal minimum has not passed;
vault entries deleted; consents withdrawn (the ledger keeps the events, pseudonymously, as proof
that consent existed); keys shredded, or scheduled to be shredded when the last freeze ends
(frozen data must stay readable until then). A step that fails is reported as failed, never as
done, and running ``erase`` again continues where it stopped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from piiguard.retention.schedule import Retention
from piiguard.store import Store, aware

__all__ = ["Erasure", "ErasureReceipt", "ErasureStep", "KeptRecords"]


@dataclass(frozen=True, slots=True)
class ErasureStep:
    """One step of an erasure: what, where, and how it went (``done``, ``frozen``,
    ``scheduled``, ``deferred``, ``failed``)."""

    step: str
    target: str
    outcome: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class KeptRecords:
    """Records an erasure kept, until when, and why."""

    category: str
    count: int
    until: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    """The record of one erasure request."""

    receipt_id: str
    reason: str
    requested_at: datetime
    completed: bool
    steps: tuple[ErasureStep, ...]
    kept: tuple[KeptRecords, ...] = field(default=())


class Erasure:
    """Erasure and export over the parts that hold a subject's data."""

    def __init__(
        self,
        store: Store,
        retention: Retention,
        *,
        pseudonym: Callable[[str], str],
        delete_vault_entries: Callable[[str], int],
        vault_entries: Callable[[str], list[dict[str, str]]],
        withdraw_consents: Callable[[str], list[str]],
        consent_history: Callable[[str], list[Any]],
        shred: Callable[[str], int],
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._retention = retention
        self._pseudonym = pseudonym
        self._delete_vault_entries = delete_vault_entries
        self._vault_entries = vault_entries
        self._withdraw_consents = withdraw_consents
        self._consent_history = consent_history
        self._shred = shred
        self._clock = clock

    def erase(self, subject: str, reason: str = "request") -> ErasureReceipt:
        """Erase a subject everywhere piiguard knows of; see the module docstring."""
        if not isinstance(subject, str) or not subject:
            raise ValueError("subject is a non-empty str")
        if not isinstance(reason, str) or not 0 < len(reason) <= 64:
            raise ValueError("reason is a text of 1 to 64 characters")
        scope = self._pseudonym(subject)
        now = self._clock()
        steps: list[ErasureStep] = []
        kept: list[KeptRecords] = []
        held = self._retention.held_records(scope, now)
        freeze_until, failed = self._erase_records(scope, held, now, steps, kept)
        steps.append(self._step("vault", lambda: f"{self._delete_vault_entries(subject)} deleted"))
        steps.append(
            self._step("consent", lambda: f"{len(self._withdraw_consents(subject))} withdrawn")
        )
        if failed or held:
            why = "a deletion failed; run erase again" if failed else "records under a legal hold"
            steps.append(ErasureStep("keys", "subject keys", "deferred", why))
        elif freeze_until is not None:
            self._retention.schedule_shred(scope, freeze_until)
            steps.append(
                ErasureStep("keys", "subject keys", "scheduled", f"on {freeze_until.date()}")
            )
        else:
            steps.append(self._step("keys", lambda: f"{self._shred(subject)} keys destroyed"))
        completed = all(step.outcome != "failed" for step in steps)
        receipt = ErasureReceipt(
            "erasure_" + os.urandom(12).hex(), reason, now, completed, tuple(steps), tuple(kept)
        )
        self._persist(scope, receipt)
        return receipt

    def _erase_records(
        self,
        scope: str,
        held: set[tuple[str, str]],
        now: datetime,
        steps: list[ErasureStep],
        kept: list[KeptRecords],
    ) -> tuple[datetime | None, bool]:
        """Delete, freeze or keep each category's records (appending to ``steps`` and
        ``kept``); return when the last freeze ends and whether a deletion failed."""
        with self._store.engine.connect() as connection:
            records = self._retention.subject_records(scope, connection)
        groups: dict[str, list[Any]] = {}
        for row in records:
            groups.setdefault(row.category, []).append(row)
        freeze_until: datetime | None = None
        failed = False
        for category, rows in sorted(groups.items()):
            free = [row for row in rows if (category, row.record_id) not in held]
            if len(free) < len(rows):
                count = len(rows) - len(free)
                kept.append(KeptRecords(category, count, now, "legal hold"))
                steps.append(ErasureStep("records", category, "frozen", f"{count} under a hold"))
            if not free:
                continue
            due = max(aware(row.due_at) for row in free)
            ids = [row.record_id for row in free]
            if self._retention.policy_for(category).legal_minimum and due > now:
                self._retention.freeze(category, ids)
                freeze_until = due if freeze_until is None else max(freeze_until, due)
                kept.append(KeptRecords(category, len(ids), due, "legal minimum retention period"))
                steps.append(ErasureStep("records", category, "frozen", f"until {due.date()}"))
                continue
            error = self._retention.delete_now(category, ids, now)
            failed = failed or error is not None
            outcome, detail = (
                ("done", f"{len(ids)} deleted") if error is None else ("failed", error)
            )
            steps.append(ErasureStep("records", category, outcome, detail))
        return freeze_until, failed

    @staticmethod
    def _step(name: str, action: Callable[[], str]) -> ErasureStep:
        try:
            return ErasureStep(name, name, "done", action())
        except Exception as error:  # recorded by type only: messages may hold PII
            return ErasureStep(name, name, "failed", type(error).__name__)

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
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                select(table)
                .where(table.c.subject == self._pseudonym(subject))
                .order_by(table.c.requested_at)
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

    def export(self, subject: str) -> dict[str, Any]:
        """Everything piiguard can gather about a subject (PIPL Art. 45, GDPR Art. 15)."""
        scope = self._pseudonym(subject)
        records = self._retention.records_of(scope)
        return {
            "subject": subject,
            "records": {
                category: self._retention.export_category(category, ids)
                for category, ids in sorted(records.items())
            },
            "consent": [
                {
                    "purpose": e.purpose,
                    "action": e.action,
                    "notice": e.notice,
                    "at": e.at.isoformat(),
                }
                for e in self._consent_history(subject)
            ],
            "vault": self._vault_entries(subject),
        }
