"""E-mail addresses: syntax only (RFC 5321/5322 dot-atom), no DNS look-up.

Internationalised local parts (RFC 6531) are refused; internationalised domains are accepted
in their ASCII (``xn--``) form. The domain is lower-cased; the local part is kept as typed,
since RFC 5321 lets a server treat it as case-sensitive.
"""

from __future__ import annotations

import re

from piiguard.errors import InvalidPII
from piiguard.validate.text import to_halfwidth

__all__ = ["EMAIL_PATTERN", "check_email"]

KIND = "email"
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
# Possessive quantifiers and look-arounds instead of nested optional groups: the same
# language (labels of 1-63 letters, digits and inner hyphens), without backtracking.
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}+(?<!-)"
_TLD = r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})"
#: The address syntax piiguard accepts, also used by detection.
EMAIL_PATTERN = rf"{_ATEXT}++(?:\.{_ATEXT}++)*+@(?:{_LABEL}\.)++{_TLD}"
_fullmatch_email = re.compile(EMAIL_PATTERN).fullmatch


def check_email(value: object) -> str | InvalidPII:
    """Normalise an address, or return (not raise) why it is invalid."""
    if not isinstance(value, str):
        return InvalidPII(KIND, "type", "expected text")
    address = to_halfwidth(value).strip()
    if len(address) > 254 or _fullmatch_email(address) is None:
        return InvalidPII(KIND, "format", "not an e-mail address")
    local, _, domain = address.rpartition("@")
    if len(local) > 64:
        return InvalidPII(KIND, "format", "the local part is longer than 64 characters")
    return f"{local}@{domain.lower()}"
