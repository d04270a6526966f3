"""Cheap shape tests: is a value shaped like its kind, so that a rule may reveal part of it?

These are not validators (no check digits): masking runs at display time on values the
application already holds. They only stop a rule such as ``KeepEnds(1, 1)`` from revealing
parts of text that is not an ID number at all, which is then masked whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from piiguard.validate.documents import CN_PLATE_FIRST_CHARS
from piiguard.validate.text import strip_separators

__all__ = ["SHAPES"]

_PHONE_CHARS = frozenset("0123456789 -.()+\u00a0")


def _cn_resident_id(value: str) -> bool:
    if len(value) == 18:
        return value[:17].isdigit() and value[17] in "0123456789Xx"
    return len(value) == 15 and value.isdigit()


def _digit_run(low: int, high: int) -> Callable[[str], bool]:
    def shaped(value: str) -> bool:
        digits = strip_separators(value)
        return digits.isdigit() and low <= len(digits) <= high

    return shaped


def _phone(value: str) -> bool:
    return _PHONE_CHARS.issuperset(value) and 7 <= sum(char.isdigit() for char in value) <= 15


def _cn_passport(value: str) -> bool:
    # every format is one or two letters, then digits, the last seven always digits
    return 8 <= len(value) <= 9 and value[0].isalpha() and value.isalnum() and value[-7:].isdigit()


def _cn_license_plate(value: str) -> bool:
    compact = strip_separators(value).replace("·", "")
    return 7 <= len(compact) <= 8 and compact[0] in CN_PLATE_FIRST_CHARS and compact.isalnum()


#: Kind name -> shape test, for the kinds where a partial reveal of a non-value would leak.
SHAPES: Mapping[str, Callable[[str], bool]] = MappingProxyType(
    {
        "cn_resident_id": _cn_resident_id,
        "bank_card": _digit_run(12, 19),
        "phone": _phone,
        "cn_passport": _cn_passport,
        "cn_license_plate": _cn_license_plate,
    }
)
