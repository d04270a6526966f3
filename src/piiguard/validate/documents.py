"""Chinese passports and licence plates: format checks, upper-cased and without separators.

Passports: ordinary ``G`` + 8 digits (before 2012), e-passports ``E`` + 8 digits or ``E`` +
a letter (not I or O) + 7 digits; diplomatic ``DE``, service ``SE`` and public-affairs ``PE``
+ 7 digits. Plates: a province character, a letter (not I or O), then 5 letters or digits,
or 6 for new-energy vehicles (``D``/``F`` first for cars, last for large vehicles), or 4
followed by one of 挂 学 警 港 澳; embassy and consulate plates start with 使 or 领.
"""

from __future__ import annotations

import re

from piiguard.errors import InvalidPII
from piiguard.validate.text import to_halfwidth

__all__ = [
    "CN_PASSPORT_PATTERN",
    "CN_PLATE_FIRST_CHARS",
    "check_cn_license_plate",
    "check_cn_passport",
]

_LETTER = "A-HJ-NP-Z"
#: The passport numbers piiguard accepts, also used by detection.
CN_PASSPORT_PATTERN = rf"(?:[EG][0-9]{{8}}|E[{_LETTER}][0-9]{{7}}|[DSP]E[0-9]{{7}})"
_fullmatch_passport = re.compile(CN_PASSPORT_PATTERN).fullmatch
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
#: The characters a Chinese licence plate can start with: a province, or 使/领 (diplomatic).
CN_PLATE_FIRST_CHARS = frozenset(_PROVINCES + "使领")
_fullmatch_plate = re.compile(
    rf"[{_PROVINCES}][{_LETTER}](?:[{_LETTER}0-9]{{5}}|[DF][{_LETTER}0-9]{{5}}"
    rf"|[0-9]{{5}}[DF]|[{_LETTER}0-9]{{4}}[挂学警港澳])"
    rf"|[使领][0-9A-Z]{{5,6}}"
).fullmatch
_PLATE_SEPARATORS = str.maketrans("", "", " -·•・‧∙.")


def check_cn_passport(value: object) -> str | InvalidPII:
    """Normalise a passport number, or return (not raise) why it is invalid."""
    if isinstance(value, str):
        number = to_halfwidth(value).strip().upper()
        if _fullmatch_passport(number):
            return number
    return InvalidPII("cn_passport", "format", "not a Chinese passport number")


def check_cn_license_plate(value: object) -> str | InvalidPII:
    """Normalise a licence plate, or return (not raise) why it is invalid."""
    if isinstance(value, str):
        plate = to_halfwidth(value).translate(_PLATE_SEPARATORS).upper()
        if _fullmatch_plate(plate):
            return plate
    return InvalidPII("cn_license_plate", "format", "not a Chinese licence plate")
