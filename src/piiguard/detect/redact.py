"""redact(): every finding of scan() replaced by its masked form; irreversible."""

from __future__ import annotations

from collections.abc import Iterable

from piiguard.detect.scan import scan
from piiguard.errors import InvalidArgument, boundary
from piiguard.masking import MaskingPolicy, MaskRule, masker_for

__all__ = ["redact", "redact_many"]


@boundary
def redact(text: str, policy: MaskingPolicy | None = None, *, role: str | None = None) -> str:
    """Return ``text`` with each piece of PII found by :func:`scan` masked by its kind.

    Args:
        text: free text, such as an order note or a customer-service chat line.
        policy: rules per role; without one, each kind's default rule.
        role: the role whose rules apply (needs ``policy``).

    Examples:
        >>> redact("call 13812345678")
        'call 138****5678'
    """
    findings = scan(text)
    if not findings:
        return text
    if role is not None and policy is None:
        raise InvalidArgument("a role needs a policy")
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
    texts: Iterable[str], policy: MaskingPolicy | None = None, *, role: str | None = None
) -> list[str]:
    """Redact each text; the same as ``[redact(text, policy, role=role) for text in texts]``."""
    return [redact(text, policy, role=role) for text in texts]
