"""Names, postal addresses and birth dates: free text with a few hard limits.

These kinds have no check digits, so validation guards only against what is certainly not a
name or an address (control characters, digits in a name, absurd lengths) and normalises
spacing; it does not judge whether a name is real.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from piiguard.errors import InvalidPII
from piiguard.validate.text import to_halfwidth

__all__ = [
    "check_address",
    "check_date_of_birth",
    "check_person_name",
]

_NAME_PUNCTUATION = frozenset(" ·•.'’-")
_MAX_NAME = 100
_MAX_ADDRESS = 500
_DATE = re.compile(r"([0-9]{4})[-/.]?([0-9]{2})[-/.]?([0-9]{2})")
_EARLIEST_YEAR = 1850


def _name_char_ok(char: str) -> bool:
    return char.isalpha() or char in _NAME_PUNCTUATION or unicodedata.category(char)[0] == "M"


def check_person_name(value: object) -> str | InvalidPII:
    """Normalise a person's name (spaces collapsed), or return (not raise) why it is invalid."""
    if not isinstance(value, str):
        return InvalidPII("person_name", "type", "expected text")
    name = to_halfwidth(value)
    if not name.isalpha():  # the common case, a name with no spaces, needs none of this
        name = " ".join(name.split())
    if not name or len(name) > _MAX_NAME:
        return InvalidPII("person_name", "length", "expected 1 to 100 characters")
    if not name.isalpha() and not all(map(_name_char_ok, name)):
        return InvalidPII("person_name", "format", "names hold letters and name punctuation only")
    return name


def check_address(value: object) -> str | InvalidPII:
    """Normalise a postal address (full-width digits to ASCII, spaces collapsed)."""
    if not isinstance(value, str):
        return InvalidPII("address", "type", "expected text")
    address = to_halfwidth(value)
    if not address.isprintable() or "  " in address or address != address.strip():
        address = " ".join(address.split())
    if len(address) < 2 or len(address) > _MAX_ADDRESS:
        return InvalidPII("address", "length", "expected 2 to 500 characters")
    if not address.isprintable():
        return InvalidPII("address", "format", "control characters are not allowed")
    return address


def check_date_of_birth(value: object, today: date | None = None) -> str | InvalidPII:
    """Normalise a birth date to ISO ``YYYY-MM-DD``, or return (not raise) why it is invalid.

    Accepts a :class:`datetime.date` or text as ``YYYY-MM-DD``, ``YYYY/MM/DD``, ``YYYY.MM.DD``
    or ``YYYYMMDD``. The date may not be in the future or before 1850.
    """
    if isinstance(value, date):
        born = value
    elif isinstance(value, str) and (match := _DATE.fullmatch(to_halfwidth(value).strip())):
        try:
            born = date(*map(int, match.groups()))
        except ValueError:
            return InvalidPII("date_of_birth", "date", "not a calendar date")
    else:
        return InvalidPII("date_of_birth", "format", "expected a date as YYYY-MM-DD")
    if born.year < _EARLIEST_YEAR or born > (today or date.today()):
        return InvalidPII("date_of_birth", "range", "in the future or implausibly old")
    return born.isoformat()
