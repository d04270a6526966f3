"""Consent: purposes with their legal basis, notices, an append-only ledger, and checks."""

from piiguard.consent.catalog import Notice, PurposeCatalog
from piiguard.consent.decorator import SubjectSource, requires_consent
from piiguard.consent.events import ConsentEvent
from piiguard.consent.ledger import ConsentLedger, ConsentProof
from piiguard.consent.purposes import BASES, BASIS_ARTICLES, Basis, Purpose

__all__ = [
    "BASES",
    "BASIS_ARTICLES",
    "Basis",
    "ConsentEvent",
    "ConsentLedger",
    "ConsentProof",
    "Notice",
    "Purpose",
    "PurposeCatalog",
    "SubjectSource",
    "requires_consent",
]
