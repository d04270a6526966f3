"""Sharing with third parties: recipients and their terms, minimised encrypted shares (JWE),
the record of every share and the yearly cross-border report."""

from piiguard.sharing.recipients import Contract, CrossBorder, Recipient
from piiguard.sharing.registry import (
    ASSESSMENT_SCOPES,
    CrossBorderReport,
    CrossBorderThresholds,
    ShareRecord,
    Sharing,
    requirements,
)

__all__ = [
    "ASSESSMENT_SCOPES",
    "Contract",
    "CrossBorder",
    "CrossBorderReport",
    "CrossBorderThresholds",
    "Recipient",
    "ShareRecord",
    "Sharing",
    "requirements",
]
