"""The participant protocol: every part that holds a subject's data erases and exports it.

A part (the vault, the consent ledger, the retention schedule, the application's own tables)
is a participant by having these two methods; :mod:`piiguard.subjects` never imports it, and
``guard.erase`` / ``guard.export`` walk every participant, whether or not a record was tracked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from sqlalchemy import Connection

__all__ = ["Erased", "ErasureStep", "KeptRecords", "Participant", "ShredRule", "SubjectKeys"]


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
class Erased:
    """What one participant did for an erasure: its steps, and the records it kept."""

    steps: tuple[ErasureStep, ...]
    kept: tuple[KeptRecords, ...] = field(default=())


@runtime_checkable
class Participant(Protocol):
    """A part holding subject data. ``participant`` names it in receipts and exports."""

    @property
    def participant(self) -> str:
        """The part's name (``vault``, ``consent``, ``records``, a table name)."""
        ...

    def erase_subject(self, subject: str, now: datetime) -> Erased | str:
        """Erase the subject's data; return the steps, or a one-line detail of one done step.

        Raises whatever stops it: the erasure records the error's type (never its message),
        defers the key shred, and ``erase`` run again resumes.
        """
        ...

    def export_subject(self, subject: str) -> object:
        """The subject's data, JSON-serialisable, for an access request."""
        ...


class SubjectKeys(Protocol):
    """What erasure needs of the key layer (the keyring is one): the subject's pseudonym,
    its shred, its key counts, and which store-wide artefacts still link."""

    def subject_scope(self, subject: str) -> str:
        """The subject's keyed pseudonym (its key scope)."""
        ...

    def shred(
        self,
        scope: str,
        connection: Connection | None = None,
        *,
        made_by: datetime | None = None,
    ) -> int:
        """Destroy the scope's keys (those made by ``made_by``), in ``connection``'s
        transaction when given."""
        ...

    def retire(self, scope: str, connection: Connection) -> None:
        """Stop encrypting under the scope's keys (they still decrypt)."""
        ...

    def scope_key_counts(self, scope: str) -> Mapping[str, int]:
        """The scope's keys by status."""
        ...

    def linking_purposes(self) -> tuple[str, ...]:
        """Store-wide artefact kinds made so far (they link equal values)."""
        ...


class ShredRule(Protocol):
    """The one rule on when a subject's keys may go (retention is the one)."""

    def shred_blocked(
        self,
        scope: str,
        now: datetime,
        *,
        claimed: tuple[str, list[str]] | None = None,
        connection: Connection | None = None,
    ) -> str | None:
        """Why the keys must stay for now, or None."""
        ...
