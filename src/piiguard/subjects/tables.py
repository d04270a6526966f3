"""The application's own tables as participants: ``@guard.subjects.eraser("customers")``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

__all__ = ["ApplicationTable"]

Eraser = Callable[[str], object]
Exporter = Callable[[str], Any]
Corrector = Callable[[str, Mapping[str, Any]], object]


class NoEraserRegistered(Exception):
    """A table has an exporter but no eraser: its data cannot be erased from here."""


class ApplicationTable:
    """One table the application owns, with the functions it registered for it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self.eraser: Eraser | None = None
        self.exporter: Exporter | None = None
        self.corrector: Corrector | None = None

    @property
    def participant(self) -> str:
        return self._name

    def erase_subject(self, subject: str, now: datetime) -> str:
        """Call the table's eraser with the subject id; a count it returns is reported."""
        if self.eraser is None:
            raise NoEraserRegistered
        result = self.eraser(subject)
        return f"{result} erased" if isinstance(result, int) else "erased"

    def export_subject(self, subject: str) -> object:
        """What the table's exporter returns, or None without one."""
        return self.exporter(subject) if self.exporter is not None else None
