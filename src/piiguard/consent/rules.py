"""The rules of consent, as pure functions: one decision, one function.

Every answer the ledger gives (``check``, ``missing``, ``filter``, ``proof``) comes from
:func:`holds` over facts the store hands back unjudged; no rule is written in SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from piiguard.errors import InvalidArgument, InvalidPII, PolicyViolation
from piiguard.validate import check_cn_resident_id, cn_resident_id_birth_date

__all__ = [
    "EXPIRE",
    "GRANT",
    "WITHDRAW",
    "LastEvent",
    "Terms",
    "check_evidence",
    "guardian_needed",
    "holds",
    "material_floor",
    "refuse_bundle",
    "refuse_uncovered",
]

GRANT, WITHDRAW, EXPIRE = "grant", "withdraw", "expire"
_MAX_EVIDENCE = 16
_MAX_EVIDENCE_VALUE = 512
_GUARDIAN_AGE = 14  # PIPL Art. 31


@dataclass(frozen=True, slots=True)
class Terms:
    """What a grant for one purpose must meet now.

    Attributes:
        version: the purpose's current definition version (PIPL Art. 14: a changed
            purpose needs new consent).
        needs_grant: whether its basis is consent (other bases of Art. 13 need none).
        floor: the publication order of the latest *material* notice covering the purpose
            (0 if none): a grant given under an earlier notice no longer holds.
    """

    version: int
    needs_grant: bool
    floor: int


@dataclass(frozen=True, slots=True)
class LastEvent:
    """A subject's latest ledger event for one purpose (by ledger sequence).

    ``notice_order`` is the publication order of the notice it was given under (None for
    withdrawals and expiries, which name no notice).
    """

    action: str
    purpose_version: int
    notice_order: int | None


def holds(terms: Terms, last: LastEvent | None) -> bool:
    """Whether consent to the purpose holds: the one validity rule of the ledger.

    It holds when the purpose needs no grant, or when the latest event is a grant of the
    current definition, given under a notice no material notice for the purpose followed.
    """
    if not terms.needs_grant:
        return True
    return (
        last is not None
        and last.action == GRANT
        and last.purpose_version == terms.version
        and last.notice_order is not None
        and last.notice_order >= terms.floor
    )


def material_floor(notices: Iterable[tuple[int, bool]]) -> int:
    """The floor of :class:`Terms` from the (order, material) of the notices covering a
    purpose."""
    return max((order for order, material in notices if material), default=0)


def check_evidence(evidence: Mapping[str, str] | None) -> dict[str, str]:
    """Evidence of how consent was given: at most 16 identifier -> short str entries.

    Raises:
        ValueError: anything else (the message names no value).
    """
    if evidence is None:
        return {}
    if not isinstance(evidence, Mapping) or len(evidence) > _MAX_EVIDENCE:
        raise InvalidArgument("evidence is a mapping of at most 16 str -> str entries")
    for key, value in evidence.items():
        if not (isinstance(key, str) and key.isidentifier()) or not isinstance(value, str):
            raise InvalidArgument("evidence keys are identifiers and values are str")
        if len(value) > _MAX_EVIDENCE_VALUE:
            raise InvalidArgument("evidence values are at most 512 characters")
    return dict(evidence)


def guardian_needed(born: date | None, id_number: str | None, today: date) -> bool:
    """Whether the subject is under 14, from a birth date or a CN resident ID (PIPL Art. 31).

    Raises:
        InvalidPII: ``id_number`` is not a valid resident ID.
    """
    if born is not None and not isinstance(born, date):
        raise InvalidArgument("born is a datetime.date")
    if id_number is not None:
        checked = check_cn_resident_id(id_number)
        if isinstance(checked, InvalidPII):
            del id_number
            raise checked
        born = cn_resident_id_birth_date(checked)
    if born is None:
        return False
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return age < _GUARDIAN_AGE


def refuse_bundle(separate: Iterable[str]) -> None:
    """PIPL Art. 29, 23, 25, 39: separate consent is never given in a bundle.

    Raises:
        PolicyViolation: naming the purposes to grant on their own.
    """
    names = sorted(separate)
    if names:
        raise PolicyViolation(
            f"separate consent is never bundled: grant {', '.join(names)} on its own"
        )


def refuse_uncovered(notice: str, uncovered: Iterable[str]) -> None:
    """PIPL Art. 17: consent is informed only by a notice that describes the purpose.

    Raises:
        PolicyViolation: naming the purposes the notice does not describe.
    """
    names = sorted(uncovered)
    if names:
        raise PolicyViolation(f"notice {notice!r} does not describe {', '.join(names)}")
