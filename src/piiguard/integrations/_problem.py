"""The RFC 9457 problem document for a refusal for want of consent."""

from __future__ import annotations

from typing import Any

from piiguard.errors import ConsentRequired

__all__ = ["PROBLEM_TYPE", "consent_problem"]

#: The problem type URI (RFC 9457 section 3.1.1); a URN, so it needs no web page to resolve.
PROBLEM_TYPE = "urn:piiguard:problem:consent-required"
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
