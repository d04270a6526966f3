"""Chinese mainland Resident Identity Card numbers (GB 11643-1999).

An 18-character number: a 6-digit region code, an 8-digit birth date, a 3-digit sequence
number whose last digit is odd for men and even for women, and an ISO 7064 MOD 11-2 check
character (``0``-``9`` or ``X``).

The region check is deliberately coarse: the first two digits must be a province-level
code, municipalities (11, 12, 31, 50) have only the city codes 01 and 02, and the Hong Kong,
Macau and Taiwan residence-permit prefixes (81, 82, 83) are followed by 0000. County codes
are not checked against GB/T 2260: they change every year and cards issued under withdrawn
codes stay valid for life, which a full table check would wrongly refuse.

Legacy 15-digit numbers (first-generation cards, invalid since 2013-01-01) are refused with
the code ``legacy``; :func:`upgrade_legacy_cn_id` converts one to its 18-character form.
"""

from __future__ import annotations

from datetime import date

from piiguard.errors import InvalidPII
from piiguard.validate.text import TODAY, to_halfwidth

__all__ = [
    "check_cn_resident_id",
    "cn_resident_id_birth_date",
    "cn_resident_id_check_char",
    "shaped_like_cn_resident_id",
    "upgrade_legacy_cn_id",
]

KIND = "cn_resident_id"
_CHECK_CHARS = "10X98765432"
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
    "50 51 52 53 54 61 62 63 64 65 81 82 83".split()
)
_MUNICIPALITIES = frozenset({"11", "12", "31", "50"})
_PERMIT_PREFIXES = frozenset({"81", "82", "83"})
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
#: Every ``MMDD`` of a leap year; Feb 29 is checked against the year separately.
_MONTH_DAYS = frozenset(
    f"{month:02d}{day:02d}"
    for month, days in enumerate(_DAYS_IN_MONTH, start=1)
    for day in range(1, days + 1)
)
_MONTH_DAYS_NOT_0229 = _MONTH_DAYS - {"0229"}
_EARLIEST_YEAR = "1850"
#: Province + city codes that pass the region check (residence permits need 6 digits).
_COMMON_REGIONS = frozenset(
    province + city
    for province in _PROVINCES - _PERMIT_PREFIXES
    for city in (
        ("01", "02") if province in _MUNICIPALITIES else map("{:02d}".format, range(1, 100))
    )
)


def cn_resident_id_check_char(first17: str) -> str:
    """Return the ISO 7064 MOD 11-2 check character for 17 ASCII digits.

    The weights are 2^(17-i) mod 11; since 13 = 2 (mod 11), reading the digits as a base-13
    number sums them with exactly those powers of two, in C rather than in a Python loop.
    """
    return _CHECK_CHARS[(2 * int(first17, 13)) % 11]


def _date_error(birth: str, today: date | None) -> InvalidPII | None:
    """Check ``YYYYMMDD`` text: a calendar date, not in the future, not before 1850."""
    month_day = birth[4:]
    if month_day not in _MONTH_DAYS or (month_day == "0229" and not _leap(int(birth[:4]))):
        return InvalidPII(KIND, "birth_date", "the birth date is not a calendar date")
    not_future = birth <= today.strftime("%Y%m%d") if today else TODAY.not_after(birth)
    if birth[:4] < _EARLIEST_YEAR or not not_future:
        return InvalidPII(KIND, "birth_date", "the birth date is in the future or implausibly old")
    return None


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _region_error(number: str) -> InvalidPII | None:
    province, city = number[:2], number[2:4]
    if province not in _PROVINCES:
        return InvalidPII(KIND, "region", "the region code is not a province-level code")
    if province in _PERMIT_PREFIXES:
        ok = number[2:6] == "0000"
    elif province in _MUNICIPALITIES:
        ok = city in ("01", "02")
    else:
        ok = city != "00"
    return None if ok else InvalidPII(KIND, "region", "the region code does not exist")


def shaped_like_cn_resident_id(number: str) -> bool:
    """Whether 18 characters have an ID number's shape, whatever their check character: 17
    digits of a region that exists and a calendar birth date, then a digit or X. What a
    mistyped ID still is (detection masks it as a likely ID, never reports it as a card)."""
    first17 = number[:17]
    return (
        len(number) == 18
        and first17.isascii()
        and first17.isdigit()
        and number[17] in "0123456789Xx"
        and _region_error(number) is None
        and _date_error(number[6:14], None) is None
    )


def check_cn_resident_id(value: object, today: date | None = None) -> str | InvalidPII:
    """Normalise an ID number, or return (not raise) why it is invalid.

    Returns the 18-character form with an upper-case ``X``; surrounding spaces and
    full-width characters are accepted. The common case, a clean number of an ordinary
    province with an unremarkable birth date, is decided inline; anything else takes the
    full path with its specific error.
    """
    if type(value) is str and len(value) == 18 and value.isascii():
        number = value
    elif isinstance(value, str):
        number = to_halfwidth(value).strip()
    else:
        return InvalidPII(KIND, "type", "expected text")
    if len(number) != 18:
        if len(number) == 15 and number.isascii() and number.isdigit():
            return InvalidPII(KIND, "legacy", "15-digit numbers are no longer valid; upgrade them")
        return InvalidPII(KIND, "length", "expected 18 characters")
    first17, last = number[:17], number[17]
    if not (first17.isascii() and first17.isdigit()) or last not in "0123456789Xx":
        return InvalidPII(KIND, "format", "expected 17 digits and a digit or X")
    if last == "x":
        number = first17 + "X"
        last = "X"
    if _CHECK_CHARS[(2 * int(first17, 13)) % 11] != last:
        return InvalidPII(KIND, "checksum", "the check character does not match")
    birth = number[6:14]
    if (
        today is None
        and number[:4] in _COMMON_REGIONS
        and birth[4:] in _MONTH_DAYS_NOT_0229
        and _EARLIEST_YEAR <= birth <= TODAY.digits
    ):
        return number
    return _region_error(number) or _date_error(birth, today) or number


def cn_resident_id_birth_date(number: str) -> date:
    """Return the birth date of a number that :func:`check_cn_resident_id` accepted."""
    return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def upgrade_legacy_cn_id(value: object, today: date | None = None) -> str:
    """Convert a 15-digit first-generation number to its 18-character form.

    The 15-digit form has a two-digit birth year, always 19xx, and no check character.

    Raises:
        InvalidPII: the value is not 15 digits, or the result is not a valid number.
    """
    number = to_halfwidth(value).strip() if isinstance(value, str) else ""
    del value
    if len(number) != 15 or not (number.isascii() and number.isdigit()):
        del number
        raise InvalidPII(KIND, "length", "expected a 15-digit legacy number")
    first17 = number[:6] + "19" + number[6:]
    result = check_cn_resident_id(first17 + cn_resident_id_check_char(first17), today)
    if isinstance(result, str):
        return result
    del number, first17
    raise result
