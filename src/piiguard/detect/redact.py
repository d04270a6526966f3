"""redact(): every finding of scan() replaced by its masked form; irreversible."""

from __future__ import annotations

from collections.abc import Iterable

from piiguard.detect.scan import DEFAULT_MIN_SCORE, scan
from piiguard.errors import InvalidArgument, boundary
from piiguard.masking import MaskingPolicy, MaskRule, masker_for

__all__ = ["redact", "redact_many"]


@boundary
def redact(
    text: str,
    policy: MaskingPolicy | None = None,
    *,
    role: str | None = None,
    kinds: Iterable[str] | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
) -> str:
    """Return ``text`` with each piece of PII found by :func:`scan` masked by its kind.

    By default it masks what a careful reviewer would: every kind, and likely values too
    (a mistyped ID number, a name or an address found by the words around it).

    Args:
        text: free text, such as an order note or a customer-service chat line.
        policy: rules per role; without one, each kind's default rule.
        role: the role whose rules apply (needs ``policy``).
        kinds: mask only these kinds (default: every kind scan() reports).
        min_score: leave unmasked findings less sure than this (as for scan()).

    Examples:
        >>> redact("call 13812345678")
        'call 138****5678'
    """
    if role is not None and policy is None:  # refused whatever the text holds
        raise InvalidArgument("a role needs a policy")
    if policy is not None and not isinstance(policy, MaskingPolicy):
        raise InvalidArgument(f"policy is a MaskingPolicy, not {type(policy).__name__}")
    findings = scan(text, kinds=kinds, min_score=min_score)
    if not findings:
        return text
    maskers: dict[str, MaskRule] = {}
    pieces = []
    position = 0
    for finding in findings:
        masker = maskers.get(finding.kind)
        if masker is None:
            rule = policy.rule_for(finding.kind, role) if policy is not None else None
            masker = maskers[finding.kind] = masker_for(finding.kind, rule)
        pieces.append(text[position : finding.start])
        pieces.append(masker(text[finding.start : finding.end]))
        position = finding.end
    pieces.append(text[position:])
    return "".join(pieces)


@boundary
def redact_many(
    texts: Iterable[str],
    policy: MaskingPolicy | None = None,
    *,
    role: str | None = None,
    kinds: Iterable[str] | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
) -> list[str]:
    """Redact each text; the same as ``[redact(text, policy, role=role, ...) for text in
    texts]``."""
    if isinstance(texts, str):
        raise InvalidArgument("redact_many takes a list of texts, not one str: use redact()")
    if kinds is not None and not isinstance(kinds, str):
        kinds = list(kinds)  # read once: an iterator would be spent by the first text
    return [redact(text, policy, role=role, kinds=kinds, min_score=min_score) for text in texts]
