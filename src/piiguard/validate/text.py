"""Text normalisation shared by the validators and by the parts that read PII text (masking,
detection, tokens): full-width forms and separators, applied the same way everywhere."""

from __future__ import annotations

import unicodedata
from datetime import date

__all__ = ["SEPARATORS", "TODAY", "strip_separators", "to_halfwidth"]

# U+FF01..U+FF5E are the full-width forms of ASCII '!'..'~'; U+3000 is the ideographic space.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

#: Characters people put between the digits of phone and card numbers.
SEPARATORS = " -.()\u00a0"
_DROP_SEPARATORS = str.maketrans("", "", SEPARATORS)


def to_halfwidth(value: str) -> str:
    """Map full-width letters, digits and the ideographic space to ASCII.

    Text already in NFKC form has no full-width forms (NFKC maps them to ASCII), and that test
    runs in C, so the common case costs no per-character Python work.
    """
    if value.isascii() or unicodedata.is_normalized("NFKC", value):
        return value
    return value.translate(_FULLWIDTH)


def strip_separators(value: str) -> str:
    """Drop the separators people type between digit groups."""
    return value.translate(_DROP_SEPARATORS)


class _Today:
    """Today's local date as ``YYYYMMDD`` text, for "not in the future" checks.

    ``date.today()`` costs about half a microsecond, so the last answer is kept: time only
    moves forward, so a date not after the kept one is not after today either, and only a
    date after it (rare: a birth date of today) makes :meth:`not_after` look again.
    """

    __slots__ = ("digits",)

    def __init__(self) -> None:
        self.digits = date.today().strftime("%Y%m%d")

    def not_after(self, digits: str) -> bool:
        """Return whether ``YYYYMMDD`` text is today or earlier."""
        if digits <= self.digits:
            return True
        self.digits = date.today().strftime("%Y%m%d")
        return digits <= self.digits


#: The process-wide view of today's date.
TODAY = _Today()
