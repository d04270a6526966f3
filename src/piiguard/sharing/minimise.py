"""What a recipient receives of a record: only the fields it names, each as its rule says.

One function, :func:`plan`, decides what goes out (which field, of which kind, by which
rule) before anything is made; :func:`payload` then makes it (masking, tokens). A field the
recipient does not name never leaves; a field of no known kind is never sent in clear by
accident of a rule: ``masked`` hides it whole and ``token`` refuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from piiguard.errors import InvalidArgument, PolicyViolation
from piiguard.fields import PIIStr, pii_field_kinds
from piiguard.kinds import get_kind
from piiguard.masking import masker_for

__all__ = ["Planned", "payload", "plan"]

_MISSING = object()
#: What a shared field may hold: one value, never a record or a collection.
_LEAVES = (str, int, float, Decimal, bool, date, time, UUID, type(None), Enum)


@dataclass(frozen=True, slots=True)
class Planned:
    """One field that goes out: its path, its kind (None: not known), its rule, its value."""

    path: str
    kind: str | None
    rule: str
    value: Any


def _step(container: Any, name: str) -> tuple[Any, str | None]:
    """The value of ``name`` in a model or a mapping, and the kind its declaration gives."""
    if isinstance(container, BaseModel):
        if name not in type(container).model_fields:
            return _MISSING, None
        declared = pii_field_kinds(type(container)).get(name)
        return getattr(container, name, _MISSING), None if declared is None else declared.name
    if isinstance(container, Mapping):
        return container.get(name, _MISSING), None
    return _MISSING, None


def _find(record: Any, path: str) -> tuple[Any, str | None]:
    value, kind = record, None
    for name in path.split("."):
        value, kind = _step(value, name)
        if value is _MISSING:
            return _MISSING, None
    return value, kind


def plan(
    record: Any,
    fields: Mapping[str, str],
    kinds: Mapping[str, str] | None,
    holds_pii: Callable[[str], bool],
) -> list[Planned]:
    """The fields of ``record`` (a pydantic model or a mapping) that ``fields`` names, with
    their kinds: a typed value's own, else its field's declared type, else ``kinds``. A
    field the record does not have is left out; None is sent as None.

    Raises:
        InvalidArgument: the record is neither a model nor a mapping.
        PolicyViolation: a ``token`` field whose kind is not known.
    """
    if not isinstance(record, BaseModel | Mapping):
        raise InvalidArgument("a share takes a pydantic model or a mapping")
    given = dict(kinds or {})
    planned: list[Planned] = []
    for path, rule in fields.items():
        value, kind = _find(record, path)
        if value is _MISSING:
            continue
        if not isinstance(value, _LEAVES):
            # a model, a mapping, a list: its insides would leave whole, unchecked
            raise PolicyViolation(
                f"field {path!r} holds a nested record or a collection: a recipient names "
                "the single values it receives (order.phone, not order)"
            )
        if isinstance(value, PIIStr):
            kind = type(value).pii_kind.name
        kind = kind or given.get(path)
        if kind is not None and isinstance(value, str) and not isinstance(value, PIIStr):
            # plain text under a declared kind (a union such as str | Phone): that kind only
            # if it is a valid value of it, else of no known kind (and so read for PII)
            kind = kind if isinstance(get_kind(kind).check(value), str) else None
        if kind is None and value is not None and rule != "masked" and _holds_pii(value, holds_pii):
            raise PolicyViolation(
                f"field {path!r} holds personal information of no declared kind: declare "
                "its type on the model, or pass kinds={...}"
            )
        if rule == "token" and value is not None:
            if kind is None:
                raise PolicyViolation(
                    f"field {path!r} is shared as a token but its kind is not known: declare "
                    "its type on the model, or pass kinds={...}"
                )
            invalid = get_kind(kind).check(str(value))
            if not isinstance(invalid, str):  # refused now, before any token is made
                raise invalid
        planned.append(Planned(path, kind, rule, value))
    return planned


def _holds_pii(value: Any, rule: Callable[[str], bool]) -> bool:
    """Whether a value of no declared kind holds personal information by ``rule`` (the audit
    log's reading of text, which normalises grouping, fillers and other scripts' digits);
    a number is read as its digits."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return False
    text = str(value)
    try:
        if isinstance(value, float | Decimal) and value == int(value):
            text = str(int(value))
    except (ValueError, OverflowError, ArithmeticError):  # NaN, infinity
        pass
    return rule(text)


def payload(planned: list[Planned], tokenize: Callable[[str, str], str]) -> dict[str, Any]:
    """The fields as they go out: clear as they are (JSON-ready), masked by the kind's rule
    (every character when no kind is known), tokens made by ``tokenize(value, kind)``."""
    out: dict[str, Any] = {}
    for item in planned:
        value = item.value
        if value is None:
            out[item.path] = None
        elif item.rule == "clear":
            out[item.path] = str(value) if isinstance(value, str) else to_jsonable_python(value)
        elif item.rule == "masked":
            text = str(value) if isinstance(value, str) else str(to_jsonable_python(value))
            out[item.path] = "*" * len(text) if item.kind is None else masker_for(item.kind)(text)
        else:
            out[item.path] = tokenize(str(value), item.kind or "")
    return out
