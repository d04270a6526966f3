"""What a recipient receives of a record: only the fields it names, each as its rule says.

One function, :func:`plan`, decides what goes out (which field, of which kind, by which
rule) before anything is made; :func:`payload` then makes it (masking, tokens). A field the
recipient does not name never leaves; a field of no known kind is never sent in clear by
accident of a rule: ``masked`` hides it whole and ``token`` refuses it.
"""

from __future__ import annotations

import math
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
#: Kinds whose valid values are the personal information they hold, and nothing else: the
#: others (an address, a name, a category's free text) are read for other PI in clear.
_SELF_EVIDENT = frozenset(
    {"phone", "email", "cn_resident_id", "bank_card", "ipv4", "ipv6", "cn_passport"}
    | {"cn_license_plate"}
)
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
        raw = _unwrapped(value)
        if not _finite(raw):
            raise InvalidArgument(f"field {path!r} is not a finite number (JSON has no NaN)")
        if isinstance(value, PIIStr):
            kind = type(value).pii_kind.name
        else:
            # a plain value under a declared kind (kinds=, a union such as str | Phone, an
            # int): that kind only if it is a valid value of it, else of no known kind
            kind = kind or given.get(path)
            if kind is not None and not isinstance(get_kind(kind).check(raw), str):
                kind = None
        # a value of no known kind, or free text (an address, a name) going out in clear,
        # is read for personal information its kind does not explain (an ID number in an
        # address field would leave in clear as an "address")
        unexplained = kind is None or (rule == "clear" and kind not in _SELF_EVIDENT)
        if raw is not None and rule != "masked" and unexplained and _holds_pii(raw, holds_pii):
            raise PolicyViolation(
                f"field {path!r} holds personal information its declared kind does not "
                "explain: declare its type on the model, or pass kinds={...}"
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


def _finite(value: Any) -> bool:
    """False for NaN and infinities, which strict JSON parsers refuse."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Decimal):
        return value.is_finite()
    return True


def _unwrapped(value: Any) -> Any:
    """An Enum member's value (its value's, for an Enum of Enums); any other value as is."""
    while isinstance(value, Enum):
        value = value.value
    return value


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
