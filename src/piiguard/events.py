"""Access events: what revealing parts report, and the sink Protocol they report to.

Parts that reveal data (decrypt with an actor, vault detokenize, sharing) build an
:class:`AccessEvent` and hand it to an :class:`EventSink`. The audit part implements a sink
that persists events in a hash chain; the Guard wires them together, so no revealing part
imports audit. An event holds identifiers (actor, purpose, context, key id), never a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

__all__ = ["AccessEvent", "EventSink", "ListSink", "NullSink"]


@dataclass(frozen=True, slots=True)
class AccessEvent:
    """One reveal of personal information.

    Attributes:
        action: what happened, e.g. ``"decrypt"``.
        actor: who asked (a staff id, a service name).
        purpose: why (a registered purpose, e.g. ``"after_sales"``).
        at: when, from the Guard's clock.
        context: where the value lives (table, field, row id): identifiers, not values.
        key_id: the data key used.
        count: how many values were revealed by this one call (batches).
    """

    action: str
    actor: str
    purpose: str
    at: datetime
    context: Mapping[str, str] = field(default_factory=dict)
    key_id: int | None = None
    count: int = 1


class EventSink(Protocol):
    """Receives access events; must not raise for an event it cannot keep (log instead)."""

    def record(self, event: AccessEvent) -> None:
        """Keep one event."""


class NullSink:
    """Drops every event: the default until an audit log is configured."""

    __slots__ = ()

    def record(self, event: AccessEvent) -> None:
        """Drop the event."""


class ListSink:
    """Keeps events in a list, for tests and for small tools."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[AccessEvent] = []

    def record(self, event: AccessEvent) -> None:
        """Append the event."""
        self.events.append(event)
