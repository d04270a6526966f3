"""The RFC 9457 problem documents for a refusal for want of consent, or of access."""

from __future__ import annotations

from typing import Any

from piiguard.errors import AccessDenied, ConsentRequired

__all__ = ["ACCESS_PROBLEM_TYPE", "PROBLEM_TYPE", "access_problem", "consent_problem"]

#: The problem type URI (RFC 9457 section 3.1.1); a URN, so it needs no web page to resolve.
PROBLEM_TYPE = "urn:piiguard:problem:consent-required"
ACCESS_PROBLEM_TYPE = "urn:piiguard:problem:access-denied"
MEDIA_TYPE = "application/problem+json"


def consent_problem(error: ConsentRequired) -> dict[str, Any]:
    """The problem body: type, title, status, detail, and the purposes lacking consent."""
    return {
        "type": PROBLEM_TYPE,
        "title": "Consent required",
        "status": 403,
        "detail": str(error),
        "missing_purposes": list(error.missing),
    }


def access_problem(error: AccessDenied) -> dict[str, Any]:
    """The problem body of a refused reveal: type, title, status, detail, and the reason."""
    return {
        "type": ACCESS_PROBLEM_TYPE,
        "title": "Access denied",
        "status": 403,
        "detail": str(error),
        "reason": error.reason,
    }
