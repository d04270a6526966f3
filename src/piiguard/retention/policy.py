"""Retention policies: how long a category of records is kept after its triggering event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

__all__ = ["Action", "RetentionPolicy"]

Action = Literal["delete", "anonymize", "shred"]


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Keep records of ``category`` for ``keep`` after their ``after`` event, then act.

    Args:
        category: the application's name for a kind of record (``"orders"``).
        keep: how long after the event the records are kept.
        after: the name of the triggering event (``"completed"``, ``"closed"``): documentation
            for people reading the policy; the event itself comes with ``track(at=...)``.
        action: ``delete`` or ``anonymize`` call the category's hook; ``shred`` destroys the
            subject's keys (piiguard's own data) and calls the hook if one is registered.
        legal_minimum: ``keep`` is a minimum the law sets (E-commerce Law Art. 31: a
            platform operator keeps goods, service and transaction information 3 years from
            completion; Cybersecurity Law Art. 21: network logs 6 months). An erasure request
            before it passes freezes the records instead of deleting them.

    Raises:
        ValueError: a bad category, a non-positive period or an unknown action.
    """

    category: str
    keep: timedelta
    after: str = "created"
    action: Action = "delete"
    legal_minimum: bool = False

    def __post_init__(self) -> None:
        if not (
            isinstance(self.category, str)
            and self.category.isidentifier()
            and len(self.category) <= 64
        ):
            raise ValueError("a category is an identifier of at most 64 characters")
        if not isinstance(self.keep, timedelta) or self.keep <= timedelta(0):
            raise ValueError("keep is a positive timedelta")
        if self.action not in ("delete", "anonymize", "shred"):
            raise ValueError("action is delete, anonymize or shred")
