"""The tracked records as an erasure participant.

An erasure deletes a subject's records through their categories' hooks now, or *freezes*
them: records whose legal minimum has not passed stay until it does, and records under a
legal hold stay until the hold ends; either way they are then swept like any due record.
A category this process has no policy for is reported as failed and left untouched.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from piiguard.store import aware
from piiguard.subjects import Erased, ErasureStep, KeptRecords

if TYPE_CHECKING:
    from piiguard.retention.schedule import Retention

__all__ = ["RecordsParticipant"]

_OPEN = ("pending", "failed", "running", "frozen")


class RecordsParticipant:
    """Erase and export one subject's tracked records (``participant == "records"``)."""

    participant = "records"

    def __init__(self, retention: Retention) -> None:
        self._retention = retention

    def _open_records(self, scope: str) -> dict[str, list[Any]]:
        table = self._retention._tables.retention
        with self._retention._store.engine.connect() as connection:
            rows = connection.execute(
                select(table).where(table.c.subject == scope, table.c.status.in_(_OPEN))
            ).all()
        groups: dict[str, list[Any]] = {}
        for row in rows:
            groups.setdefault(row.category, []).append(row)
        return groups

    def erase_subject(self, subject: str, now: datetime) -> Erased:
        """Delete, freeze or keep each category's records of the subject."""
        retention = self._retention
        scope = retention._pseudonym(subject)
        held = retention._held_records(scope, now)
        steps: list[ErasureStep] = []
        kept: list[KeptRecords] = []
        for category, rows in sorted(self._open_records(scope).items()):
            policy = retention._policies.get(category)
            if policy is None:
                steps.append(ErasureStep("records", category, "failed", "NoPolicyInThisProcess"))
                continue

            goes_at = functools.partial(_goes_at, legal_minimum=policy.legal_minimum, now=now)

            on_hold = [row for row in rows if (category, row.record_id) in held]
            if on_hold:
                until = max(goes_at(row) for row in on_hold)
                self._freeze(category, on_hold, goes_at)
                kept.append(KeptRecords(category, len(on_hold), until, "legal hold"))
                steps.append(
                    ErasureStep("records", category, "frozen", f"{len(on_hold)} under a hold")
                )
            free = [row for row in rows if (category, row.record_id) not in held]
            if not free:
                continue
            until = max(goes_at(row) for row in free)
            if until > now:
                self._freeze(category, free, goes_at)
                kept.append(
                    KeptRecords(category, len(free), until, "legal minimum retention period")
                )
                steps.append(ErasureStep("records", category, "frozen", f"until {until.date()}"))
                continue
            ids = [row.record_id for row in free]
            claimed, error = retention._delete_now(category, ids, now)
            busy = len(ids) - len(claimed)
            if error is not None:
                steps.append(ErasureStep("records", category, "failed", error))
            elif busy:
                detail = f"{len(claimed)} deleted, {busy} being deleted by a sweep"
                steps.append(ErasureStep("records", category, "deferred", detail))
            else:
                steps.append(ErasureStep("records", category, "done", f"{len(ids)} deleted"))
        return Erased(tuple(steps), tuple(kept))

    def _freeze(self, category: str, rows: list[Any], goes_at: Callable[[Any], datetime]) -> None:
        """Frozen: processed no more until ``goes_at`` (and any hold) passes, then swept."""
        table = self._retention._tables.retention
        with self._retention._store.transaction() as connection:
            for row in rows:
                connection.execute(
                    update(table)
                    .where(table.c.category == category, table.c.record_id == row.record_id)
                    .values(status="frozen", due_at=goes_at(row))
                )

    def export_subject(self, subject: str) -> dict[str, Any]:
        """Each category's exporter view of the subject's open records (None without one)."""
        scope = self._retention._pseudonym(subject)
        return {
            category: self._retention._export_category(category, [row.record_id for row in rows])
            for category, rows in sorted(self._open_records(scope).items())
        }


def _goes_at(row: Any, *, legal_minimum: bool, now: datetime) -> datetime:
    """When an erased record may go: at its legal minimum's end if that is later, else now."""
    due = aware(row.due_at)
    return due if legal_minimum and due > now else now
