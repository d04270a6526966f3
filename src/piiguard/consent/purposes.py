"""Purposes of processing: what a consent is *for*, with its legal basis (PIPL Art. 13)."""

from __future__ import annotations

import json
from collections.abc import Set
from dataclasses import dataclass, field
from typing import Literal

from piiguard.errors import PolicyViolation
from piiguard.kinds import get_kind

__all__ = ["BASES", "Basis", "Purpose"]

Basis = Literal[
    "consent",
    "contract",
    "legal_obligation",
    "vital_interest",
    "public_interest",
    "news_reporting",
    "public_disclosed",
]
#: The legal bases of PIPL Art. 13; only ``consent`` needs a grant.
BASES: frozenset[str] = frozenset(Basis.__args__)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Purpose:
    """One purpose of processing.

    Args:
        name: a lower-case identifier, e.g. ``"marketing_sms"``.
        basis: its legal basis (PIPL Art. 13); anything but ``consent`` needs no grant.
        kinds: the PII kinds it processes (names of built-in kinds).
        separate: whether it needs separate consent (PIPL Art. 29, 23, 25, 39): required when
            any kind is sensitive; such a purpose is never granted in a bundle.
        essential: whether the service cannot work without it (PIPL Art. 16: declining a
            non-essential purpose never blocks an essential one).
        description: what the subject is told.

    Raises:
        PolicyViolation: sensitive kinds without ``separate=True``.
        ValueError: a bad name or basis.
        UnknownKind: an unknown kind.
    """

    name: str
    basis: Basis = "consent"
    kinds: Set[str] = field(default_factory=frozenset)  # kept as a frozenset
    separate: bool = False
    essential: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.name, str) and self.name.isidentifier() and self.name.islower()):
            raise ValueError("a purpose's name is a lower-case identifier")
        if len(self.name) > 64:
            raise ValueError("a purpose's name is at most 64 characters")
        if self.basis not in BASES:
            raise ValueError(f"basis must be one of {sorted(BASES)}")
        kinds = frozenset(get_kind(kind).name for kind in self.kinds)
        object.__setattr__(self, "kinds", kinds)
        sensitive = sorted(kind for kind in kinds if get_kind(kind).sensitive)
        if sensitive and not self.separate:
            raise PolicyViolation(
                f"purpose {self.name!r} processes sensitive PI ({', '.join(sensitive)}): "
                "it needs separate=True (PIPL Art. 29)"
            )

    @property
    def needs_grant(self) -> bool:
        """Whether a subject must grant it before processing (basis ``consent``)."""
        return self.basis == "consent"

    def definition(self) -> str:
        """Canonical JSON of everything the subject consents to (a change needs new consent)."""
        return json.dumps(
            {
                "basis": self.basis,
                "kinds": sorted(self.kinds),
                "separate": self.separate,
                "essential": self.essential,
                "description": self.description,
            },
            sort_keys=True,
            ensure_ascii=False,
        )

    @classmethod
    def from_definition(cls, name: str, definition: str) -> Purpose:
        """Rebuild a purpose stored by :meth:`definition`."""
        data = json.loads(definition)
        return cls(
            name,
            basis=data["basis"],
            kinds=frozenset(data["kinds"]),
            separate=data["separate"],
            essential=data["essential"],
            description=data["description"],
        )
