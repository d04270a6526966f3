"""scan(): find PII in free text, validated, in one pass; scan_many() for batches."""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from piiguard.detect._addresses import find_addresses
from piiguard.detect._names import find_names
from piiguard.detect._numbers import judge_number
from piiguard.detect._pattern import CANDIDATES, IPV4
from piiguard.detect._view import View, view_of
from piiguard.errors import InvalidArgument, boundary
from piiguard.validate import check_cn_license_plate

__all__ = ["DETECTED_KINDS", "PATTERN_KINDS", "Finding", "scan", "scan_many"]

#: The kinds scan() reports.
DETECTED_KINDS = (
    "phone",
    "email",
    "cn_resident_id",
    "bank_card",
    "ipv4",
    "ipv6",
    "cn_passport",
    "cn_license_plate",
    "person_name",
    "address",
)
#: Kinds found by the words around them, not by a pattern and a check: each has its own pass.
_BY_CONTEXT = {"address": find_addresses, "person_name": find_names}
#: The fewest characters a cut name or address keeps to be reported as one.
_SHORTEST = {"address": 4, "person_name": 2}
#: The kinds a pattern and a check find (all but names and addresses): what to pass as
#: ``kinds=`` for the fastest scan, or where only values of certain shape matter.
PATTERN_KINDS = tuple(kind for kind in DETECTED_KINDS if kind not in _BY_CONTEXT)


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of PII found in a text: its kind, where it stands (``text[start:end]``), and
    how sure detection is (``score``: 1.0 when a check digit, checksum or numbering plan
    confirms it; less for a likely value, such as an ID number with a wrong check character).

    A finding holds no copy of the value, so findings can be logged and stored as they are.
    """

    kind: str
    start: int
    end: int
    score: float = 1.0


#: The score below which scan() and redact() leave a finding out unless asked.
DEFAULT_MIN_SCORE = 0.5


def _classify_ipv6(candidate: str) -> str | None:
    if sum(1 for group in candidate.split(":") if group) < 2:
        return None  # "::1", or a word followed by colons
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return None
    return "ipv6"


def _found(view: View) -> list[Finding]:
    """Every finding in the view, in the original text's positions."""
    text = view.text
    findings: list[Finding] = []
    position = 0
    search = CANDIDATES.search
    while (match := search(text, position)) is not None:
        group, start, end = match.lastgroup, match.start(), match.end()
        position = end
        if group == "number":
            judged = judge_number(match.group())
            if not judged and "." in match.group():
                # no number; an IP address may be inside ("200 175.183.135.125": digits
                # with separators swallowed it): looked for once, so the scan stays linear
                inside = IPV4.search(text, start, end)
                whole = IPV4.match(text, inside.start()) if inside is not None else None
                if whole is not None:  # the search stopped at the candidate's end: recheck
                    findings.append(Finding("ipv4", *view.span(*whole.span())))
            for kind, first, last, score in judged:
                findings.append(Finding(kind, *view.span(start + first, start + last), score))
                # what follows the last number found is looked at again: a long run may have
                # been cut by the pattern's length limit in the middle of the next number
                position = start + last
            continue
        # email, ipv4, cn_passport: the pattern is the whole check
        if group in ("ipv6", "ipv6_mapped"):
            found = _classify_ipv6(match.group())
        elif group == "cn_license_plate":
            found = group if isinstance(check_cn_license_plate(match.group()), str) else None
        else:
            found = group
        if found is not None:
            findings.append(Finding(found, *view.span(start, end)))
    return findings


def _with_context(view: View, findings: list[Finding], wanted: frozenset[str] | None) -> None:
    """Add the names and addresses found in the view where no number, e-mail or plate is.

    A name or an address that runs into a value found before it is cut where that value
    begins (收件人：张伟浙江省..., ...文三路398号0571-88888888), never dropped: what was left
    of it would stay in clear."""
    starts = [finding.start for finding in findings]
    for kind, finder in _BY_CONTEXT.items():
        if wanted is not None and kind not in wanted:
            continue
        for first_in_view, end_in_view, score in finder(view.text):
            start, end = view.span(first_in_view, end_in_view)
            at = bisect.bisect_right(starts, start)
            if at and findings[at - 1].end > start:
                continue  # it begins inside a value found before
            if at < len(findings) and findings[at].start < end:
                end = findings[at].start  # it runs into the next value: cut it there
                if end - start < _SHORTEST[kind]:
                    continue
            findings.insert(at, Finding(kind, start, end, score))
            starts.insert(at, start)


def _kinds_wanted(kinds: Iterable[str] | None) -> frozenset[str] | None:
    if kinds is None:
        return None
    if isinstance(kinds, str):
        raise InvalidArgument("kinds is a list of kind names, not one str")
    wanted = frozenset(kinds)
    if not all(isinstance(kind, str) for kind in wanted):
        raise InvalidArgument("kinds is a list of kind names")
    unknown = wanted.difference(DETECTED_KINDS)
    if unknown:  # a misspelt kind would silently find nothing
        raise InvalidArgument(
            f"scan finds no kind named {sorted(unknown)!r}: it finds {', '.join(DETECTED_KINDS)}"
        )
    return wanted


@boundary
def scan(
    text: str, *, kinds: Iterable[str] | None = None, min_score: float = DEFAULT_MIN_SCORE
) -> list[Finding]:
    """Find phones (mobiles, landlines, +CC numbers), e-mails, ID numbers, bank cards, IP
    addresses, passports, licence plates, and Chinese names and addresses in a text.

    The text is matched in a normalised view (full-width and other scripts' digits as ASCII,
    zero-width characters and soft hyphens dropped, no-break spaces as spaces), and findings
    are spans of the original text. Candidates are then checked (ID check characters and birth
    dates, Luhn and the card schemes' issuer ranges, numbering plans); a number that ran into
    the next one is cut back to its valid part. Findings do not overlap: an 18-digit run that
    is an ID (even a mistyped one) is never a card. Names and addresses have no check: they
    are found by the words around them and the divisions they start with, and carry a score
    below 1.0 (see docs/detection.md for the measured precision and recall).

    Args:
        text: the text to scan.
        kinds: report only these kinds (default: all).
        min_score: leave out findings less sure than this (default 0.5: a mistyped ID, 0.6,
            is reported; pass 1.0 for confirmed values only).

    Examples:
        >>> scan("call 13812345678")
        [Finding(kind='phone', start=5, end=16, score=1.0)]

    Raises:
        InvalidArgument: ``text`` is not a str (also a TypeError), ``kinds`` is not a list of
            names, or ``min_score`` is not a number between 0 and 1.
    """
    if not isinstance(text, str):
        raise InvalidArgument(f"scan() takes a str, not {type(text).__name__}")
    wanted = _kinds_wanted(kinds)
    if (
        isinstance(min_score, bool)
        or not isinstance(min_score, int | float)
        or not 0.0 <= min_score <= 1.0
    ):
        raise InvalidArgument("min_score is a number between 0 and 1")
    view = view_of(text)
    findings = _found(view)
    _with_context(view, findings, wanted)
    return [
        finding
        for finding in findings
        if finding.score >= min_score and (wanted is None or finding.kind in wanted)
    ]


@boundary
def scan_many(
    texts: Iterable[str],
    *,
    kinds: Iterable[str] | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
) -> list[list[Finding]]:
    """Scan each text; the same as ``[scan(text, ...) for text in texts]``."""
    if isinstance(texts, str):
        raise InvalidArgument("scan_many takes a list of texts, not one str: use scan()")
    chosen = None if kinds is None else list(_kinds_wanted(kinds) or ())
    return [scan(text, kinds=chosen, min_score=min_score) for text in texts]
