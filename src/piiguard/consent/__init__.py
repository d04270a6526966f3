"""Consent: purposes with their legal basis, notices, an append-only ledger, and checks."""

from piiguard.consent.decorator import SubjectSource, requires_consent
from piiguard.consent.ledger import ConsentEvent, ConsentLedger, ConsentProof, Notice
from piiguard.consent.purposes import BASES, Basis, Purpose

__all__ = [
    "BASES",
    "Basis",
    "ConsentEvent",
    "ConsentLedger",
    "ConsentProof",
    "Notice",
    "Purpose",
    "SubjectSource",
    "requires_consent",
]
