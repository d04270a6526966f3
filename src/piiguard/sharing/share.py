"""Making shares: admitted by the recipient's terms and the subjects' consent, minimised,
audited before they are handed over, recorded, and encrypted to the recipient.

The order is the promise: nothing is made (no token, no ciphertext) for a share that
:meth:`Sharing.admit` or the access rule refuses; the audit event is committed before the
JWE is returned, and a share whose event cannot be recorded is not returned.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from piiguard.errors import InvalidArgument, InvalidPII, PolicyViolation, ShareRefused
from piiguard.events import AccessEvent, Reveals
from piiguard.kinds import sensitive_kinds
from piiguard.sharing.jwe import seal
from piiguard.sharing.minimise import Planned, payload, plan
from piiguard.sharing.recipients import Recipient
from piiguard.sharing.registry import Sharing

__all__ = ["PAYLOAD_VERSION", "make_shares"]

#: The version of the JSON a share carries: {"piiguard": "share/1", "id", "recipient",
#: "purpose", "issued_at", "fields": {field: value}}.
PAYLOAD_VERSION = "share/1"


def _sensitive(planned: Sequence[Planned]) -> bool:
    """Whether sensitive PI leaves readable: in clear, or as a token the recipient resolves
    through the shop (a masked value is not the value)."""
    readable = (i.kind for i in planned if i.kind and i.rule != "masked" and i.value is not None)
    return bool(sensitive_kinds(readable))


def place_of(recipient: Recipient) -> dict[str, str]:
    """What a share's events name of where it went: the recipient, and its country."""
    place = {"recipient": recipient.name}
    if recipient.cross_border is not None:
        place["country"] = recipient.cross_border.country
    return place


def _checked(
    records: object, subjects: object, kinds: object
) -> tuple[Sequence[Any], Sequence[str]]:
    """The batch's arguments, or the error: ordered lists of equal length, subjects that are
    non-empty str, kinds a mapping."""
    if not isinstance(records, list | tuple) or not isinstance(subjects, list | tuple):
        raise InvalidArgument("share_many takes a list of records and a list of subjects")
    if len(subjects) != len(records):
        raise InvalidArgument("share_many takes one subject per record")
    if not all(type(subject) is str and subject for subject in subjects):
        raise InvalidArgument("subject is a non-empty str")
    if kinds is not None and not isinstance(kinds, Mapping):
        raise InvalidArgument("kinds is a mapping of field names to kinds")
    return records, subjects


def _planned(
    sharing: Sharing,
    reveals: Reveals,
    who: tuple[str, str],
    *,
    to: str,
    subjects: Sequence[str],
    records: Sequence[Any],
    kinds: Mapping[str, str] | None,
    holds_pii: Callable[[str], bool],
) -> tuple[Recipient, str, list[list[Planned]]]:
    """The recipient, the purpose's basis and what goes out of each record; a refusal (of
    the terms, the consent, or what a record holds) is audited, then raised."""
    place = {"recipient": to} if isinstance(to, str) else {}
    try:
        recipient, basis = sharing.admit(to, who[1], subjects)
        place = place_of(recipient)
        plans = [plan(record, recipient.fields, kinds, holds_pii) for record in records]
    except ShareRefused as error:
        refused = error
    except PolicyViolation as error:  # what a record holds may not go
        refused = ShareRefused("field_refused", str(error))
    except InvalidPII:  # a token field's value is not of its kind (never named)
        refused = ShareRefused("field_refused", "a token field's value is not valid for its kind")
    else:
        return recipient, basis, plans
    raise reveals.refuse(who, refused, action="share", context=place)


def _sealed(
    recipient: Recipient,
    purpose: str,
    plans: list[list[Planned]],
    *,
    subjects: Sequence[str],
    tokenize: Callable[[str, str, str], str],
    issued_at: datetime,
) -> tuple[list[str], list[tuple[str, Mapping[str, str], bool]]]:
    """One JWE per record, and what the record of shares keeps of each."""
    sealed: list[str] = []
    made: list[tuple[str, Mapping[str, str], bool]] = []
    for planned, subject in zip(plans, subjects, strict=True):

        def token(value: str, kind: str, subject: str = subject) -> str:
            return tokenize(value, kind, subject)

        share_id = secrets.token_hex(16)
        body = {
            "piiguard": PAYLOAD_VERSION,
            "id": share_id,
            "recipient": recipient.name,
            "purpose": purpose,
            "issued_at": issued_at.isoformat(),
            "fields": payload(planned, token),
        }
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        sealed.append(seal(recipient, text.encode("utf-8")))
        del body, text
        rules = {item.path: item.rule for item in planned}
        made.append((share_id, rules, _sensitive(planned)))
    return sealed, made


def make_shares(
    sharing: Sharing,
    reveals: Reveals,
    tokenize: Callable[[str, str, str], str],
    records: Sequence[Any],
    *,
    to: str,
    purpose: str | None,
    subjects: Sequence[str],
    actor: str | None,
    kinds: Mapping[str, str] | None,
    holds_pii: Callable[[str], bool],
) -> list[str]:
    """One compact JWE per record, for ``subjects[i]``'s record ``records[i]``; one audit
    event for the batch. ``tokenize(value, kind, subject)`` makes a field's vault token."""
    records, subjects = _checked(records, subjects, kinds)
    who = reveals.admit(actor, purpose, action="share", count=0)  # named and registered
    if isinstance(who, Exception):
        raise who
    recipient, basis, plans = _planned(
        sharing,
        reveals,
        who,
        to=to,
        subjects=subjects,
        records=records,
        kinds=kinds,
        holds_pii=holds_pii,
    )
    shown = [item for planned in plans for item in planned if item.value is not None]
    clear_kinds = tuple(sorted({i.kind for i in shown if i.rule == "clear" and i.kind}))
    context = place_of(recipient)
    admitted = reveals.admit(
        *who, action="share", kinds=clear_kinds, context=context, count=len(shown)
    )
    if isinstance(admitted, Exception):
        raise admitted
    issued_at = reveals.now().astimezone(UTC)
    try:
        sealed, made = _sealed(
            recipient, who[1], plans, subjects=subjects, tokenize=tokenize, issued_at=issued_at
        )
    except BaseException:
        reveals.release(who, len(shown))
        raise
    rows = tuple({"field": item.path, "kind": item.kind or "", "view": item.rule} for item in shown)
    pseudonyms = sharing.pseudonyms(subjects)  # once: the event and the record name them
    named = [
        (share_id, pseudonym, rules, sensitive)
        for (share_id, rules, sensitive), pseudonym in zip(made, pseudonyms, strict=True)
    ]
    # the record first, then the event: a record that cannot be written leaves no event
    # saying the share was made; an event that cannot be written takes the record back
    try:
        sharing.record(recipient, who[1], basis, named, issued_at)
    except BaseException:
        reveals.release(who, len(shown))
        sealed.clear()
        raise
    failure = reveals.record(
        AccessEvent(
            "share",
            who[0],
            who[1],
            issued_at,
            context,
            count=len(shown),
            kind=clear_kinds[0] if len(clear_kinds) == 1 else None,
            subjects=tuple(dict.fromkeys(pseudonyms)),
            rows=rows,
        )
    )
    if failure is not None:
        sealed.clear()
        sharing.unrecord([share_id for share_id, *_ in named])
        raise failure
    return sealed
