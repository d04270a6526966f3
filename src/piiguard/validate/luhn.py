"""Bank-card numbers: 12 to 19 digits with a Luhn (ISO/IEC 7812-1 mod 10) check digit."""

from __future__ import annotations

from piiguard.errors import InvalidPII
from piiguard.validate.text import strip_separators, to_halfwidth

__all__ = ["check_bank_card", "luhn_valid"]

KIND = "bank_card"
_DOUBLED = str.maketrans("0123456789", "0246813579")  # digit sum of 2*d, as a digit


def luhn_valid(digits: str) -> bool:
    """Return whether a string of ASCII digits passes the Luhn check.

    Digit sums come from ``sum()`` over the encoded bytes, which runs in C.
    """
    undoubled = digits[-1::-2].encode()
    doubled = digits[-2::-2].translate(_DOUBLED).encode()
    return (sum(undoubled) + sum(doubled) - 48 * len(digits)) % 10 == 0


def check_bank_card(value: object) -> str | InvalidPII:
    """Normalise a card number to digits only, or return (not raise) why it is invalid."""
    if not isinstance(value, str):
        return InvalidPII(KIND, "type", "expected text")
    digits = strip_separators(to_halfwidth(value))
    if not (digits.isascii() and digits.isdigit()):
        return InvalidPII(KIND, "format", "expected digits, spaces or hyphens")
    if not 12 <= len(digits) <= 19:
        return InvalidPII(KIND, "length", "expected 12 to 19 digits")
    if not luhn_valid(digits):
        return InvalidPII(KIND, "checksum", "the Luhn check digit does not match")
    return digits
