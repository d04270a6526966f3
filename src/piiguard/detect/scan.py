"""scan(): find PII in free text, validated, in one pass; scan_many() for batches."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers

from piiguard.detect._pattern import CANDIDATES
from piiguard.errors import InvalidArgument, boundary
from piiguard.validate import check_cn_resident_id, is_cn_mobile, luhn_valid
from piiguard.validate.text import strip_separators

__all__ = ["Finding", "scan", "scan_many"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of PII found in a text: its kind and where it stands (``text[start:end]``).

    A finding holds no copy of the value, so findings can be logged and stored as they are.
    """

    kind: str
    start: int
    end: int


def _classify_digits(run: str) -> str | None:
    """Judge a run of 11-19 digits (maybe with a trailing X): ID, card, mobile, or nothing."""
    size = len(run)
    if size == 18 and isinstance(check_cn_resident_id(run), str):
        return "cn_resident_id"
    if run[-1] in "Xx":
        return None
    if size == 11:
        return "phone" if is_cn_mobile(run) else None
    if size == 13 and run.startswith("86") and is_cn_mobile(run[2:]):
        return "phone"
    if run[0] in "23456" and luhn_valid(run):  # issuer ranges of the card networks
        return "bank_card"
    return None


def _classify_intl(number: str) -> str | None:
    digits = strip_separators(number)
    if digits.startswith("+86") and is_cn_mobile(digits[3:]):
        return "phone"
    try:
        parsed = phonenumbers.parse(digits)
    except phonenumbers.NumberParseException:
        return None
    return "phone" if phonenumbers.is_valid_number(parsed) else None


def _classify_ipv6(candidate: str) -> str | None:
    if sum(1 for group in candidate.split(":") if group) < 2:
        return None  # "::1", or a word followed by colons
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return None
    return "ipv6"


def _classify(group: str | None, candidate: str) -> str | None:
    if group == "digits":
        return _classify_digits(candidate)
    if group == "grouped_mobile":
        return "phone" if is_cn_mobile(strip_separators(candidate)) else None
    if group == "grouped_card":
        digits = strip_separators(candidate)
        return "bank_card" if 12 <= len(digits) <= 19 and luhn_valid(digits) else None
    if group == "intl":
        return _classify_intl(candidate)
    if group == "ipv6":
        return _classify_ipv6(candidate)
    return group  # email, ipv4, cn_passport: the pattern is the whole check


@boundary
def scan(text: str) -> list[Finding]:
    """Find phones, e-mails, ID numbers, bank cards, IP addresses and passports in a text.

    One pass of one regular expression over the text; candidates are then checked (ID check
    characters and birth dates, Luhn, numbering plans), and only valid ones are reported.
    Findings do not overlap: where an 18-digit run is a valid ID it is an ID, not a card.

    Examples:
        >>> scan("call 13812345678")
        [Finding(kind='phone', start=5, end=16)]

    Raises:
        InvalidArgument: ``text`` is not a str (also a TypeError).
    """
    if not isinstance(text, str):
        raise InvalidArgument(f"scan() takes a str, not {type(text).__name__}")
    findings = []
    for match in CANDIDATES.finditer(text):
        candidate = match.group()
        kind = _classify(match.lastgroup, candidate)
        end = match.end()
        if kind is None and candidate[-1] in "Xx" and match.lastgroup == "digits":
            kind = _classify_digits(candidate[:-1])  # an X that made no ID: the digits alone
            end -= 1
        if kind is not None:
            findings.append(Finding(kind, match.start(), end))
    return findings


@boundary
def scan_many(texts: Iterable[str]) -> list[list[Finding]]:
    """Scan each text; the same as ``[scan(text) for text in texts]``."""
    return [scan(text) for text in texts]
