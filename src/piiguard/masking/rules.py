"""Typed masking rules: each is a frozen value object, checked when built, called on text.

A rule is any callable ``rule(value: str) -> str``; the classes here are the ones piiguard
ships. Rules keep the layout of the value (separators stay where they were, masked
characters become ``*``), except where the rule says otherwise (:class:`Replace`, the
e-mail local part, the rest of an address), and never return a value whole: input that does
not have the shape a rule expects is masked whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

import phonenumbers

from piiguard.errors import InvalidArgument
from piiguard.masking._chinese import is_cjk
from piiguard.masking._layout import (
    MASK,
    is_digit_or_mask,
    is_maskable,
    mask_whole,
    reveal_positions,
)
from piiguard.validate.cn_lexicon import COMPOUND_SURNAMES, divisions

__all__ = [
    "AddressMask",
    "DateOfBirthMask",
    "EmailMask",
    "IPv4Mask",
    "IPv6Mask",
    "KeepEnds",
    "MaskAll",
    "MaskRule",
    "PersonNameMask",
    "PhoneMask",
    "Replace",
]

#: What a masking rule is: text in, masked text out.
MaskRule = Callable[[str], str]

_COUNTRY_CODES = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_PHONE_CHARS = frozenset("0123456789 -.()+\u00a0" + MASK)
_HEX_OR_MASK = frozenset("0123456789abcdefABCDEF" + MASK)


def _check_count(name: str, value: object) -> None:
    if type(value) is not int:
        raise TypeError(f"{name} must be an int")
    if not 0 <= value <= 64:
        raise ValueError(f"{name} must be between 0 and 64")


class _Rule:
    """Shared behaviour of the shipped rules: a batch form.

    ``checks_shape`` says whether the rule itself masks input of the wrong shape whole; for
    rules that do not (KeepEnds, MaskAll), ``mask()`` first applies its kind's shape test.
    """

    __slots__ = ()
    checks_shape: ClassVar[bool] = True

    def __call__(self, value: str) -> str:  # pragma: no cover - every rule overrides it
        raise NotImplementedError

    def mask_many(self, values: Iterable[str]) -> list[str]:
        """Mask each value; the same as calling the rule on each, in order."""
        return list(map(self, values))


@dataclass(frozen=True, slots=True)
class KeepEnds(_Rule):
    """Keep the first ``first`` and last ``last`` letters or digits; mask the rest.

    If the value has no more than ``first + last`` letters and digits, all are masked, so a
    rule never reveals a whole value.
    """

    first: int = 0
    last: int = 0
    checks_shape: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check_count("first", self.first)
        _check_count("last", self.last)

    def __call__(self, value: str) -> str:
        first, last = self.first, self.last
        size = len(value)
        if value.isalnum():  # no separators: slicing is enough
            if size <= first + last:
                return "*" * size
            return value[:first] + "*" * (size - first - last) + value[size - last : size]
        positions = [index for index, char in enumerate(value) if is_maskable(char)]
        if len(positions) <= first + last:
            return reveal_positions(value, ())
        return reveal_positions(value, set(positions[:first] + positions[len(positions) - last :]))


@dataclass(frozen=True, slots=True)
class MaskAll(_Rule):
    """Mask every letter and digit; keep separators (``ab-12`` -> ``**-**``)."""

    checks_shape: ClassVar[bool] = False

    def __call__(self, value: str) -> str:
        return reveal_positions(value, ())


@dataclass(frozen=True, slots=True)
class Replace(_Rule):
    """Replace the whole value by a fixed text, hiding even its length."""

    text: str = "****"

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise InvalidArgument("text must be a str")

    def __call__(self, value: str) -> str:
        if not isinstance(value, str):
            raise InvalidArgument("masking takes text")
        return self.text


@dataclass(frozen=True, slots=True)
class PhoneMask(_Rule):
    """Chinese mobiles keep ``first`` and ``last`` digits; other numbers keep the country
    code and the last ``other_last`` digits.

    ``13812345678`` -> ``138****5678``; ``+86 138-1234-5678`` -> ``+86 138-****-5678``;
    ``+1 415 555 2671`` -> ``+1 *** *** 2671``.

    ``national=True`` shows a Chinese mobile in its national form, without the country
    prefix or separators: ``+8613812345678`` and ``+86 138 1234 5678`` -> ``138****5678``
    (what a courier's waybill or a CS screen shows). Other numbers keep the default layout.
    """

    first: int = 3
    last: int = 4
    other_last: int = 4
    national: bool = False

    def __post_init__(self) -> None:
        _check_count("first", self.first)
        _check_count("last", self.last)
        _check_count("other_last", self.other_last)
        if self.first + self.last >= 11:
            raise ValueError("first + last must leave a digit of a mobile number masked")
        if type(self.national) is not bool:
            raise TypeError("national must be a bool")

    def __call__(self, value: str) -> str:
        if len(value) == 11 and value.isdigit() and value[0] == "1":
            return (
                value[: self.first] + "*" * (11 - self.first - self.last) + value[11 - self.last :]
            )
        return self._general(value)

    def _general(self, value: str) -> str:
        if not _PHONE_CHARS.issuperset(value):
            return mask_whole(value)
        positions = [index for index, char in enumerate(value) if is_digit_or_mask(char)]
        digits = "".join(value[index] for index in positions)
        if not 7 <= len(digits) <= 15:
            return mask_whole(value)
        international = value.lstrip().startswith("+")
        prefix = _cn_mobile_prefix(digits, international)
        if prefix is not None:
            if self.national:  # the 11 digits alone: no prefix, no separators
                hidden = "*" * (11 - self.first - self.last)
                return (
                    digits[prefix : prefix + self.first]
                    + hidden
                    + digits[len(digits) - self.last :]
                )
            keep = positions[: prefix + self.first] + positions[len(digits) - self.last :]
        else:
            code = _country_code_length(digits) if international else 0
            # at most half of a short subscriber number shows (+683 4002 -> +683 **02)
            tail = min(self.other_last, (len(digits) - code) // 2)
            keep = positions[:code] + positions[len(digits) - tail :] if tail else positions[:code]
        return reveal_positions(value, set(keep), maskable="digits")


def _cn_mobile_prefix(digits: str, international: bool) -> int | None:
    """Length of the country prefix before an 11-digit Chinese mobile, or None."""
    prefix = len(digits) - 11
    if digits[prefix] != "1":
        return None
    if international:
        return 2 if digits[:prefix] == "86" else None
    return prefix if digits[:prefix] in ("", "86", "0086") else None


def _country_code_length(digits: str) -> int:
    for length in (1, 2, 3):
        if digits[:length].isdigit() and int(digits[:length]) in _COUNTRY_CODES:
            return length
    return 0


@dataclass(frozen=True, slots=True)
class EmailMask(_Rule):
    """Keep the first ``first`` characters of the local part, then ``***``, then ``@domain``.

    The fixed ``***`` hides the local part's length: ``zhangsan@example.com`` ->
    ``z***@example.com``.
    """

    first: int = 1

    def __post_init__(self) -> None:
        _check_count("first", self.first)

    def __call__(self, value: str) -> str:
        local, at, domain = value.rpartition("@")
        if not (at and local and "." in domain) or any(char.isspace() for char in value):
            return mask_whole(value)
        if not local.strip(MASK):  # "*@a.au": a local part of masks hides nothing behind ***
            return mask_whole(value)
        # a shown character that is itself a mask is no character: "***@x" stays "***@x"
        shown = local[: self.first].rstrip(MASK) if len(local) > self.first else ""
        return f"{shown}***@{domain}"


@dataclass(frozen=True, slots=True)
class PersonNameMask(_Rule):
    """Chinese names keep the surname (compound surnames too), one ``*`` per other
    character; other names keep the first letter of each word.

    ``张三丰`` -> ``张**``; ``欧阳修`` -> ``欧阳*``; ``John Smith`` -> ``J*** S****``.
    """

    def __call__(self, value: str) -> str:
        if not value or any(char.isdigit() or char in "@/\\:" for char in value):
            return mask_whole(value)
        if is_cjk(value[0]):
            surname = 2 if len(value) >= 3 and value[:2] in COMPOUND_SURNAMES else 1
            if len(value) <= surname:
                return mask_whole(value)
            masked = value[:surname] + "".join(
                "*" if char.isalpha() else char for char in value[surname:]
            )
            if "*" not in masked[surname:]:  # "李·": nothing past the surname was hidden
                return mask_whole(value)
            return masked
        out = []
        previous_letter = False
        for char in value:
            letter = char.isalpha()
            out.append("*" if letter and previous_letter else char)
            previous_letter = letter
        if "*" not in out:  # initials only ("J R", "A"): keep the first, hide the others
            first = next((i for i, char in enumerate(value) if char.isalpha()), None)
            if first is None or sum(char.isalpha() for char in value) == 1:
                return mask_whole(value)
            return value[: first + 1] + "".join(
                "*" if char.isalpha() else char for char in value[first + 1 :]
            )
        return "".join(out)


@dataclass(frozen=True, slots=True)
class AddressMask(_Rule):
    """Keep a Chinese address's province, city and district (区/县/旗/县级市); replace the
    rest by ``****``. Addresses whose divisions cannot be read become ``****``.

    ``北京市朝阳区建国路88号`` -> ``北京市朝阳区****``.
    """

    def __call__(self, value: str) -> str:
        text = value.strip()
        end = divisions().prefix_end(text)
        if end == 0 or end == len(text):  # nothing past the divisions to hide
            return "****"
        return text[:end] + "****"


@dataclass(frozen=True, slots=True)
class DateOfBirthMask(_Rule):
    """Keep the year; mask the month and day digits: ``1990-05-17`` -> ``1990-**-**``."""

    def __call__(self, value: str) -> str:
        positions = [index for index, char in enumerate(value) if is_digit_or_mask(char)]
        if len(positions) != 8 or positions[3] != 3:
            return mask_whole(value)
        return reveal_positions(value, set(positions[:4]), maskable="digits")


@dataclass(frozen=True, slots=True)
class IPv4Mask(_Rule):
    """Keep the first ``keep`` octets; each other octet becomes one ``*``.

    ``192.168.1.20`` -> ``192.168.*.*``.
    """

    keep: int = 2

    def __post_init__(self) -> None:
        _check_count("keep", self.keep)
        if self.keep > 3:
            raise ValueError("keep must leave at least one octet masked")

    def __call__(self, value: str) -> str:
        octets = value.split(".")
        if len(octets) != 4 or not all(
            octet == MASK or (octet.isdigit() and len(octet) <= 3) for octet in octets
        ):
            return mask_whole(value)
        return ".".join(octets[: self.keep] + ["*"] * (4 - self.keep))


@dataclass(frozen=True, slots=True)
class IPv6Mask(_Rule):
    """Keep the first ``keep`` groups (the routing prefix); mask every other hex digit.

    ``2001:db8:85a3::8a2e:370:7334`` -> ``2001:db8:****::****:***:****``.
    """

    keep: int = 2

    def __post_init__(self) -> None:
        _check_count("keep", self.keep)
        if self.keep > 7:
            raise ValueError("keep must leave at least one group masked")

    def __call__(self, value: str) -> str:
        groups = value.split(":")
        if not 3 <= len(groups) <= 8 or not all(
            len(group) <= 4 and _HEX_OR_MASK.issuperset(group) for group in groups
        ):
            return mask_whole(value)
        filled = [index for index, group in enumerate(groups) if group]
        if not filled:  # "::" has no digit to hide
            return mask_whole(value)
        keep = min(self.keep, filled[-1])  # the last group with digits is always masked
        return ":".join(
            group if index < keep else "*" * len(group) for index, group in enumerate(groups)
        )
