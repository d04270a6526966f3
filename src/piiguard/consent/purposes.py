"""Purposes of processing: what a consent is *for*, with its legal basis (PIPL Art. 13)."""

from __future__ import annotations

import json
from collections.abc import Set
from dataclasses import dataclass, field
from typing import Literal

from piiguard.errors import PolicyViolation
from piiguard.kinds import get_kind, sensitive_kinds

__all__ = ["BASES", "BASIS_ARTICLES", "Basis", "Purpose"]

Basis = Literal[
    "consent",
    "contract",
    "human_resources",
    "legal_obligation",
    "vital_interest",
    "news_reporting",
    "public_disclosed",
    "other_law",
]
#: Where each basis stands in PIPL Art. 13 (paragraph 1, items 1-7), in the law's words.
BASIS_ARTICLES: dict[str, str] = {
    "consent": "PIPL Art. 13(1)(1): the individual's consent",
    "contract": "PIPL Art. 13(1)(2): concluding or performing a contract the individual is a "
    "party to",
    "human_resources": "PIPL Art. 13(1)(2): human resources management under labour rules "
    "and collective contracts made according to law",
    "legal_obligation": "PIPL Art. 13(1)(3): performing statutory duties or obligations",
    "vital_interest": "PIPL Art. 13(1)(4): responding to a public health emergency, or "
    "protecting life, health and property in an emergency",
    "news_reporting": "PIPL Art. 13(1)(5): news reporting and supervision by public opinion "
    "in the public interest, within a reasonable scope",
    "public_disclosed": "PIPL Art. 13(1)(6): information the individual disclosed, or that "
    "was lawfully disclosed, within a reasonable scope",
    "other_law": "PIPL Art. 13(1)(7): other circumstances that laws and administrative "
    "regulations provide",
}
#: The legal bases of PIPL Art. 13; only ``consent`` needs a grant. There is no general
#: "public interest" basis: item 5 is news reporting and supervision by public opinion.
BASES: frozenset[str] = frozenset(Basis.__args__)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Purpose:
    """One purpose of processing.

    Args:
        name: a lower-case identifier, e.g. ``"marketing_sms"``.
        basis: its legal basis, one item of PIPL Art. 13 (see :data:`BASIS_ARTICLES`);
            anything but ``consent`` needs no grant.
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
        if self.basis == "public_interest":  # type: ignore[comparison-overlap]
            raise ValueError(
                "PIPL Art. 13 has no general public-interest basis: item 5 is "
                "'news_reporting', item 7 'other_law' (name the law in the description)"
            )
        if self.basis not in BASES:
            raise ValueError(f"basis must be one of {sorted(BASES)}")
        kinds = frozenset(get_kind(kind).name for kind in self.kinds)
        object.__setattr__(self, "kinds", kinds)
        sensitive = sorted(self.sensitive_kinds)
        if sensitive and not self.separate:
            raise PolicyViolation(
                f"purpose {self.name!r} processes sensitive PI ({', '.join(sensitive)}): "
                "it needs separate=True (PIPL Art. 29)"
            )

    @property
    def sensitive_kinds(self) -> frozenset[str]:
        """The sensitive kinds it covers (PIPL Art. 28)."""
        return sensitive_kinds(self.kinds)

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
