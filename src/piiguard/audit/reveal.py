"""What a role sees of a model or a mapping: each PII value clear, masked or absent.

The walk finds every value's kind (a typed field's :class:`~piiguard.PIIStr`, or the kind a
mapping's caller declares for a key), asks :func:`~piiguard.audit.access.view` what the role
sees of it, and notes each value shown in clear for the audit event. Text whose kind is not
known (a value, a mapping's key) is scanned: what :func:`~piiguard.scan` finds in it is shown
as the role may see that kind, and hidden whole where the role may not. Numbers, dates and
the like are shown as they are; what the walk cannot read (bytes, other objects) is absent.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from piiguard.audit.access import Role, View, view
from piiguard.detect import scan
from piiguard.errors import InvalidArgument
from piiguard.fields import PIIStr, pii_field_kinds
from piiguard.kinds import PIIKind
from piiguard.masking import masker_for

__all__ = ["Shown", "show"]

#: How deep a model or mapping may nest (a cycle ends here with an error, not a crash).
_DEPTH = 32
#: Values shown as they are: they hold no text a role could be denied.
_PLAIN = (float, bool, type(None), Decimal, datetime, date, time, timedelta, UUID)
#: Numbers this long may be a phone, a card or an ID number kept as an int: scanned.
_LONG_NUMBER = 10**6
_DIGIT_RUN = re.compile(r"[0-9]{6}")
_ABSENT = object()


class Shown:
    """What a role sees of one record: the visible copy (``value``) and the (field path,
    kind) of each value shown in clear (``clear``), for the audit event."""

    __slots__ = (
        "_declared",
        "_maskers",
        "_masking",
        "_purpose_kinds",
        "_role",
        "_seen",
        "clear",
        "value",
    )

    def __init__(
        self,
        role: Role,
        purpose_kinds: frozenset[str],
        declared: Mapping[str, str],
        masking: Callable[[str], Callable[[str], str]] | None,
    ) -> None:
        self._role = role
        self._purpose_kinds = purpose_kinds
        self._declared = declared
        self._masking = masking
        self._seen: dict[str, View] = {}
        self._maskers: dict[str, Callable[[str], str]] = {}
        self.clear: list[tuple[str, str]] = []
        self.value: Any = None

    def _view(self, kind: str) -> View:
        found = self._seen.get(kind)
        if found is None:
            found = self._seen[kind] = view(self._role, kind, self._purpose_kinds)
        return found

    def _masked(self, kind: str, text: str) -> str:
        rule = self._maskers.get(kind)
        if rule is None:
            made = self._masking(kind) if self._masking is not None else masker_for(kind)
            rule = self._maskers[kind] = made
        return rule(text)

    def _typed(self, value: str, kind: str, path: str) -> Any:
        seeing = self._view(kind)
        if seeing == "clear":
            self.clear.append((path, kind))
            return value
        return self._masked(kind, value) if seeing == "masked" else _ABSENT

    def _free(self, text: str, path: str) -> str:
        """Text of no known kind: what a scan finds in it, shown as the role sees that kind
        (an absent kind hidden whole)."""
        parts: list[str] = []
        at = 0
        for finding in scan(text):
            piece = text[finding.start : finding.end]
            seeing = self._view(finding.kind)
            parts.append(text[at : finding.start])
            if seeing == "clear":
                self.clear.append((path, finding.kind))
                parts.append(piece)
            elif seeing == "masked":
                parts.append(self._masked(finding.kind, piece))
            else:
                parts.append("*" * len(piece))
            at = finding.end
        parts.append(text[at:])
        return "".join(parts)

    def walk(self, value: Any, path: str, depth: int, hint: str | None = None) -> Any:
        """The visible copy of ``value`` found at ``path``; _ABSENT when nothing shows.
        ``hint`` is the kind its field declares (by type, or by ``kinds=``): plain text and
        numbers under it are that kind, whatever they look like."""
        if depth > _DEPTH:
            raise InvalidArgument("a revealed model or mapping nests too deep")
        hint = self._declared.get(path, hint)
        if isinstance(value, PIIStr):
            return self._typed(value, type(value).pii_kind.name, path)
        if isinstance(value, str):
            return self._typed(value, hint, path) if hint is not None else self._free(value, path)
        if isinstance(value, BaseModel):
            kinds = pii_field_kinds(type(value))
            return self._fields(
                (
                    (name, getattr(value, name), kinds.get(name))
                    for name in type(value).model_fields
                ),
                path,
                depth,
            )
        if isinstance(value, Mapping):
            return self._fields(((k, v, hint) for k, v in value.items()), path, depth)
        if isinstance(value, list | tuple | set | frozenset):
            items = (self.walk(item, path, depth + 1, hint) for item in value)
            return [item for item in items if item is not _ABSENT]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = dataclasses.fields(value)
            return self._fields(
                ((f.name, getattr(value, f.name), None) for f in fields), path, depth
            )
        if isinstance(value, Enum):
            return self.walk(value.value, path, depth + 1, hint)
        if isinstance(value, int) and not isinstance(value, bool):
            if hint is not None:  # a phone kept as a number is still a phone
                return self._typed(str(value), hint, path)
            if abs(value) >= _LONG_NUMBER:  # as long as a phone, a card or an ID: scanned
                text = str(value)
                shown = self._free(text, path)
                return value if shown == text else shown
            return value
        if isinstance(value, _PLAIN):
            return value
        return _ABSENT  # what the walk cannot read (bytes, an object), it does not show

    def _fields(
        self, items: Iterable[tuple[Any, Any, Any]], path: str, depth: int
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, item, declared in items:
            key = self._key(name, path)
            part = name if _plain_name(name) else "__key__"  # no value in a recorded path
            hint = declared.name if isinstance(declared, PIIKind) else declared
            result = self.walk(item, f"{path}.{part}" if path else part, depth + 1, hint)
            if result is not _ABSENT:
                out[key] = result
        return out

    def _key(self, name: object, path: str) -> str:
        """A mapping's key as the role may see it: a typed key by its kind (hidden whole
        where the kind is absent), any other scanned like free text."""
        where = f"{path}.__key__" if path else "__key__"
        if isinstance(name, PIIStr):
            shown = self._typed(name, type(name).pii_kind.name, where)
            return "*" * len(name) if shown is _ABSENT else str(shown)
        return self._free(str(name), where)


def _plain_name(name: object) -> bool:
    """Whether a key can stand in a recorded field path: an identifier with no long run of
    digits (which a phone or an ID number would be)."""
    return (
        type(name) is str
        and name.isidentifier()
        and name.isascii()
        and _DIGIT_RUN.search(name) is None
    )


def show(
    record: object,
    role: Role,
    purpose_kinds: frozenset[str],
    *,
    kinds: Mapping[str, str] | None = None,
    masking: Callable[[str], Callable[[str], str]] | None = None,
) -> Shown:
    """What ``role`` sees of ``record`` (a pydantic model or a mapping), for a purpose whose
    registered kinds are ``purpose_kinds``.

    Args:
        kinds: field path (``"phone"``, ``"customer.phone"``) -> kind, for values that are
            plain text (a typed value's own kind wins).
        masking: kind name -> the function that masks it for this role (default: the
            kind's own rule).
    """
    if not isinstance(record, BaseModel | Mapping):
        raise InvalidArgument("reveal takes a pydantic model or a mapping")
    shown = Shown(role, purpose_kinds, dict(kinds or {}), masking)
    shown.value = shown.walk(record, "", 0)
    return shown
