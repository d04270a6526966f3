"""The event ledger: consent events appended, never updated, ordered by ledger sequence.

It stores and reads events; it does not judge them (that is ``rules.holds``). Subjects are
keyed pseudonyms; evidence arrives sealed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from piiguard.store import Store, aware

__all__ = ["ConsentEvent", "EventLedger", "StoredEvent"]


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One ledger entry (evidence is kept sealed; see :meth:`ConsentLedger.proof`)."""

    purpose: str
    action: str
    notice: str | None
    purpose_version: int
    at: datetime


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as stored: its public part, and its sealed evidence."""

    event: ConsentEvent
    evidence: str | None


class EventLedger:
    """Appends and reads ``piiguard_consent_events``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._events = store.tables.consent_events

    def append(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append events inside the caller's (changing) transaction."""
        if rows:
            connection.execute(self._events.insert(), list(rows))

    def last(
        self, connection: Connection, pseudonym: str, purpose: str, *, action: str | None = None
    ) -> StoredEvent | None:
        """The subject's latest event for the purpose (of that action, if given)."""
        events = self._events
        query = select(events).where(events.c.subject == pseudonym, events.c.purpose == purpose)
        if action is not None:
            query = query.where(events.c.action == action)
        row = connection.execute(query.order_by(events.c.event_id.desc()).limit(1)).first()
        return None if row is None else _stored(row)

    def latest_per_subject(
        self, connection: Connection, purpose: str
    ) -> Iterator[tuple[str, ConsentEvent]]:
        """(pseudonym, event) of every subject's latest event for the purpose, streamed in
        one pass in ledger order (a later event of a subject replaces its earlier one)."""
        events = self._events
        latest: dict[str, ConsentEvent] = {}
        rows = connection.execution_options(stream_results=True, yield_per=10_000).execute(
            select(
                events.c.subject,
                events.c.purpose,
                events.c.action,
                events.c.notice,
                events.c.purpose_version,
                events.c.at,
            )
            .where(events.c.purpose == purpose)
            .order_by(events.c.event_id)
        )
        for subject, name, action, notice, version, at in rows:
            latest[subject] = ConsentEvent(name, action, notice, int(version), at)
        yield from latest.items()

    def history(self, pseudonym: str) -> list[ConsentEvent]:
        """Every event of the subject, in ledger order."""
        events = self._events
        with self._store.reading() as connection:
            rows = connection.execute(
                select(events).where(events.c.subject == pseudonym).order_by(events.c.event_id)
            ).all()
        return [_stored(row).event for row in rows]


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(
        ConsentEvent(row.purpose, row.action, row.notice, int(row.purpose_version), aware(row.at)),
        row.evidence,
    )
