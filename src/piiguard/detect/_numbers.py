"""Numbers in text: which kind a run of digit groups is, and the valid parts of a run that
ran into its neighbours.

A candidate is digits with short separators between them (``138 1234 5678``,
``+86 (0)138-1234-5678``, ``5368 3473 4801 4127 2件``). It is cut into groups at its
separators and judged whole; when it is not valid whole, shorter runs of its groups are tried
(longest first, from the left), so a number followed by a quantity, a room number or a second
number is still found, and so is that second number.

Grouping matters: a mobile is written 11, 3-4-4 or 4-4-3; an ID 18, 6-8-4 or 6-4-4-4; a card
whole, in fours (the last group shorter), 4-6-5 or 4-6-4. A run of digits grouped any other
way is two numbers, or none.
"""

from __future__ import annotations

import re

import phonenumbers

from piiguard.validate import (
    card_scheme,
    check_cn_resident_id,
    is_cn_mobile,
    luhn_valid,
    shaped_like_cn_resident_id,
)

__all__ = ["LIKELY", "judge_number"]

#: The score of an 18-character ID-shaped number whose check character does not match: a
#: mistyped ID, masked as one (never reported as a card).
LIKELY = 0.6
_GROUP = re.compile(r"\+?[0-9]+(?:[Xx](?![0-9]))?")
_MOBILE_SHAPES = frozenset({(11,), (3, 4, 4), (4, 4, 3), (3, 8), (7, 4)})
_ID_SHAPES = frozenset({(18,), (6, 8, 4), (6, 4, 4, 4), (6, 12), (4, 4, 4, 4, 2), (6, 4, 2, 2, 4)})
_CARD_SHAPES = frozenset({(4, 6, 5), (4, 6, 4), (6, 13), (6, 12)})
#: Area codes of the mainland's fixed lines: 010 and 02x take 8-digit numbers, the others
#: (0 and three digits) 7 or 8.
_AREA_2 = frozenset({"10", "20", "21", "22", "23", "24", "25", "27", "28", "29"})
_MAX_GROUPS = 8
#: The sizes of a number of any kind: 8 digits (the shortest +CC number) to 19 (cards), and
#: its first group (3 digits or more, or 86, or a +CC).
_FEWEST_DIGITS, _MOST_DIGITS, _SHORTEST_HEAD = 7, 19, 3

Verdict = tuple[str, float]


def _card_shape(shape: tuple[int, ...]) -> bool:
    if len(shape) == 1 or shape in _CARD_SHAPES:
        return True
    return len(shape) >= 3 and all(size == 4 for size in shape[:-1]) and 1 <= shape[-1] <= 4


def _mobile(digits: str, shape: tuple[int, ...]) -> bool:
    return shape in _MOBILE_SHAPES and is_cn_mobile(digits)


def _landline(digits: str, shape: tuple[int, ...]) -> bool:
    """A mainland fixed line with its area code, optionally an extension after it."""
    if not digits.startswith("0") or digits.startswith("00"):
        return False
    area = 3 if digits[1:3] in _AREA_2 else 4
    if len(shape) == 1:
        local = digits[area:]
        return local[:1] in "2345678" and len(local) in ((8,) if area == 3 else (7, 8))
    if shape[0] != area or len(shape) > 3:
        return False
    local = digits[area : area + shape[1]]
    sizes = (8,) if area == 3 else (7, 8)
    if len(local) not in sizes and not (len(shape) == 3 and shape[1] + shape[2] in sizes):
        return False
    return local[:1] in "2345678"


def _international(digits: str) -> bool:
    try:
        parsed = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed)


def _verdict(groups: list[str]) -> Verdict | None:
    """The kind of one run of groups, or None."""
    plus = groups[0].startswith("+")
    digits = "".join(groups).lstrip("+")
    shape = tuple(len(group.lstrip("+")) for group in groups)
    last = digits[-1]
    if last in "Xx":
        if len(digits) != 18 or shape not in _ID_SHAPES:
            return None
        if isinstance(check_cn_resident_id(digits), str):
            return "cn_resident_id", 1.0
        return ("cn_resident_id", LIKELY) if shaped_like_cn_resident_id(digits) else None
    if plus:
        if digits.startswith("86") and is_cn_mobile(digits[2:]):
            return "phone", 1.0
        return ("phone", 1.0) if 8 <= len(digits) <= 15 and _international(digits) else None
    size = len(digits)
    if digits.startswith("0086") and size == 15 and is_cn_mobile(digits[4:]):
        return "phone", 1.0
    if size == 11 and _mobile(digits, shape):
        return "phone", 1.0
    if size == 13 and digits.startswith("86") and shape[0] in (2, 13):
        rest = shape[1:] if shape[0] == 2 else (11,)
        if _mobile(digits[2:], rest):
            return "phone", 1.0
    if size == 18 and shape in _ID_SHAPES:
        if isinstance(check_cn_resident_id(digits), str):
            return "cn_resident_id", 1.0
        if shaped_like_cn_resident_id(digits):
            return "cn_resident_id", LIKELY
    if 12 <= size <= 19 and _card_shape(shape) and luhn_valid(digits) and card_scheme(digits):
        return "bank_card", 1.0
    if 10 <= size <= 13 and _landline(digits, shape):
        return "phone", 1.0
    return None


def judge_number(candidate: str) -> list[tuple[str, int, int, float]]:
    """(kind, start, end, score) of each number in ``candidate``, relative to it: the whole
    when it is valid, else its valid runs of groups, longest first from the left."""
    found = [(match.start(), match.end(), match.group()) for match in _GROUP.finditer(candidate)]
    out: list[tuple[str, int, int, float]] = []
    first = 0
    digits = [0]  # digits before each group, for the size of a run without a look at it
    for _, _, text in found:
        digits.append(digits[-1] + len(text.lstrip("+")))
    while first < len(found):
        head = found[first][2]
        if len(head) < _SHORTEST_HEAD and head != "86" and not head.startswith("+"):
            first += 1  # no number begins with a group of one or two digits (but 86)
            continue
        for last in range(min(len(found), first + _MAX_GROUPS), first, -1):
            size = digits[last] - digits[first]
            if not _FEWEST_DIGITS <= size <= _MOST_DIGITS:
                continue
            run = [text for _, _, text in found[first:last]]
            if any(text.startswith("+") for text in run[1:]):
                continue  # a + begins a number: never one inside a run
            if any(text[-1] in "Xx" for text in run[:-1]):
                continue
            start, end = (0 if first == 0 else found[first][0]), found[last - 1][1]
            verdict = _verdict(run)
            if verdict is None and run[-1][-1] in "Xx" and len(run[-1]) > 1:
                verdict = _verdict([*run[:-1], run[-1][:-1]])  # an X that made no ID
                end -= 1
            if verdict is not None:
                out.append((verdict[0], _bracketed(candidate, start, end), end, verdict[1]))
                first = last
                break
        else:
            first += 1
    return out


def _bracketed(candidate: str, start: int, end: int) -> int:
    """Where a number found at ``candidate[start:end]`` starts: with the bracket before it
    when the bracket closes inside it (``(0571)34219128``), after a bracket that does not
    (``（13101054641）``: the brackets are the sentence's, not the number's)."""
    if start > 0 and candidate[start - 1] == "(" and ")" in candidate[start:end]:
        return start - 1
    if candidate[start] == "(" and ")" not in candidate[start:end]:
        return start + 1
    return start
