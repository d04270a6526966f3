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
import functools
import re
import types
import typing
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
from piiguard.fields import PIIStr
from piiguard.masking import masker_for

__all__ = ["Shown", "show"]

#: How deep a model or mapping may nest (a cycle ends here with an error, not a crash).
_DEPTH = 32
#: Values shown as they are: they hold no text a role could be denied.
_PLAIN = (bool, type(None), datetime, date, time, timedelta, UUID)
#: Six digits in a row: a key that cannot stand in a field path, a number worth scanning.
_DIGIT_RUN = re.compile(r"[0-9]{6}")
_ABSENT = object()
#: How much a view hides, least first: of several kinds a value may be, the most hiding wins.
_HIDING = {"clear": 0, "masked": 1, "absent": 2}


#: A class with named fields, with the type arguments it was declared with (``Box[Phone]``).
_Shape = tuple[type, tuple[Any, ...]]


class _Declared:
    """What a declared type says of the values under it: the kinds of text (and numbers)
    right here, what it says of a mapping's keys and of a collection's items (or a
    mapping's values), and the classes (models, dataclasses, TypedDicts, NamedTuples) whose
    fields a mapping found here stands for. ``dict[Phone, CNResidentID]`` declares keys
    phones and values IDs; ``customer: Customer`` holding a dict declares its keys' kinds."""

    __slots__ = ("_every", "items", "keys", "kinds", "shapes")

    def __init__(
        self,
        kinds: frozenset[str] = frozenset(),
        keys: _Declared | None = None,
        items: _Declared | None = None,
        shapes: tuple[_Shape, ...] = (),
    ) -> None:
        self.kinds = kinds
        self.keys = keys
        self.items = items
        self.shapes = shapes
        self._every: frozenset[str] | None = None

    def field(self, name: object) -> tuple[bool, _Declared | None]:
        """Whether a declared class has a field ``name`` (by name or alias), and what the
        classes say of it."""
        known, found = False, None
        for shape in self.shapes:
            fields = _class_fields(shape)
            if fields is not None and isinstance(name, str) and name in fields:
                known, found = True, _merged(found, fields[name])
        return known, found

    def every_kind(self) -> frozenset[str]:
        """Every kind declared here or anywhere under it: what text found where the type
        says a collection or a model (a plain str where ``list[PersonName]`` was declared)
        may be, of which the most hidden is shown. Walked whole from here each time it is
        first asked (recursive models included), so no partial answer is ever kept."""
        if self._every is None:
            found: set[str] = set()
            seen: set[int] = set()
            waiting: list[_Declared] = [self]
            while waiting:
                here = waiting.pop()
                if id(here) in seen:
                    continue
                seen.add(id(here))
                found |= here.kinds
                waiting += [d for d in (here.keys, here.items) if d is not None]
                for shape in here.shapes:
                    waiting += [d for d in (_class_fields(shape) or {}).values() if d is not None]
            self._every = frozenset(found)
        return self._every

    def inner(self) -> _Declared | None:
        """What it says of the items or values under it; a kind declared for a value holds
        for whatever is found in its place (``name: PersonName`` holding a list)."""
        return self.items if self.items is not None or not self.kinds else self

    def key_kinds(self) -> _Declared | None:
        """What it says of a mapping's keys, by the same rule."""
        return self.keys if self.keys is not None or not self.kinds else self


def _merged(left: _Declared | None, right: _Declared | None) -> _Declared | None:
    """What either of two types declares (``Phone | list[Email]``)."""
    if left is None or right is None:
        return left or right
    return _Declared(
        left.kinds | right.kinds,
        _merged(left.keys, right.keys),
        _merged(left.items, right.items),
        tuple(dict.fromkeys(left.shapes + right.shapes)),
    )


def _all(annotations: Iterable[Any], depth: int) -> _Declared | None:
    found: _Declared | None = None
    for annotation in annotations:
        found = _merged(found, _declared(annotation, depth + 1))
    return found


def _declared(annotation: Any, depth: int = 0) -> _Declared | None:
    """What an annotation declares of the values under it (None: nothing known). Aliases,
    NewTypes and type variables declare what they stand for."""
    if depth > _DEPTH:
        return None  # an alias of itself: nothing more is learnt
    if isinstance(annotation, typing.TypeVar) or hasattr(annotation, "__constraints__"):
        bound = getattr(annotation, "__bound__", None)
        return _all([bound, *getattr(annotation, "__constraints__", ())], depth)
    for wrapped in ("__supertype__", "__value__"):  # NewType; a type alias (PEP 695)
        if hasattr(annotation, wrapped) and not isinstance(annotation, type):
            return _declared(getattr(annotation, wrapped), depth + 1)
    if isinstance(annotation, type):
        if issubclass(annotation, PIIStr):
            return _Declared(frozenset({annotation.pii_kind.name}))
        if _shaped(annotation):  # its fields are read when a mapping is found under it
            return _Declared(shapes=((annotation, ()),))
        return None  # str, int, ...: no kind
    origin = typing.get_origin(annotation)
    arguments = [a for a in typing.get_args(annotation) if a is not Ellipsis]
    if origin is typing.Annotated:
        return _declared(arguments[0], depth + 1)
    if origin is typing.Union or origin is types.UnionType:
        return _all(arguments, depth)
    if not isinstance(origin, type) or not arguments:
        return None  # Literal, a bare list: nothing declared
    if _shaped(origin):  # a generic dataclass, TypedDict, ...: its fields, arguments given
        return _Declared(shapes=((origin, tuple(arguments)),))
    if issubclass(origin, Mapping) and len(arguments) == 2:
        keys, items = _declared(arguments[0], depth + 1), _declared(arguments[1], depth + 1)
        return None if keys is None and items is None else _Declared(keys=keys, items=items)
    if issubclass(origin, Iterable):
        items = _all(arguments, depth)
        return None if items is None else _Declared(items=items)
    return None


def _everywhere(kind: str) -> _Declared:
    """A kind a caller declares for a path (``kinds=``): its text, items and values."""
    found = _Declared(frozenset({kind}))
    found.items = found
    return found


def _shaped(cls: type) -> bool:
    """Whether a class declares named fields: a model, a dataclass, a TypedDict or a
    NamedTuple."""
    return (
        issubclass(cls, BaseModel)
        or dataclasses.is_dataclass(cls)
        or (issubclass(cls, dict) and hasattr(cls, "__required_keys__"))  # a TypedDict
        or (issubclass(cls, tuple) and hasattr(cls, "_fields"))  # a NamedTuple
    )


def _fields_of(shape: _Shape) -> Mapping[str, _Declared | None] | None:
    """A model's, dataclass's, TypedDict's or NamedTuple's field name (and a model field's
    aliases) -> what its declared type says, the class's type variables read as the
    arguments given (string annotations resolved; one that cannot be resolved declares
    nothing); None for any other class."""
    cls, arguments = shape
    if not _shaped(cls):
        return None
    given = dict(zip(getattr(cls, "__parameters__", ()), arguments, strict=False))
    if issubclass(cls, BaseModel):
        fields: dict[str, _Declared | None] = {}
        for name, info in cls.model_fields.items():
            declared = _declared(_given(info.annotation, given))
            aliases = (info.alias, info.serialization_alias, info.validation_alias)
            for key in (name, *(a for a in aliases if isinstance(a, str))):
                fields[key] = declared
        return fields
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls)]
    else:
        names = list(getattr(cls, "__annotations__", {}))
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception:  # a forward reference that does not resolve
        hints = dict(getattr(cls, "__annotations__", {}))
    return {name: _declared(_given(hints.get(name), given)) for name in names}


def _given(annotation: Any, given: Mapping[Any, Any]) -> Any:
    """``annotation`` with the class's type variables replaced by the arguments given."""
    if not given:
        return annotation
    if annotation in given:
        return given[annotation]
    parameters = getattr(annotation, "__parameters__", ())
    if parameters and all(p in given for p in parameters):
        try:
            return annotation[tuple(given[p] for p in parameters)]
        except TypeError:  # an annotation that cannot be subscripted
            return annotation
    return annotation


#: Read once per class and arguments.
_class_fields: Callable[[_Shape], Mapping[str, _Declared | None] | None] = functools.lru_cache(
    maxsize=1024
)(_fields_of)


def _number_text(value: int | float | Decimal) -> str:
    """A number's digits as a phone or an ID number kept as a number would read."""
    try:
        if value == int(value):
            return str(int(value))
    except (ValueError, OverflowError, ArithmeticError):  # NaN, infinity, a signalling NaN
        pass
    return str(value)


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
        "masked",
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
        self._declared = {path: _everywhere(kind) for path, kind in declared.items()}
        self._masking = masking
        self._seen: dict[str, View] = {}
        self._maskers: dict[str, Callable[[str], str]] = {}
        self.clear: list[tuple[str, str]] = []
        self.masked: list[tuple[str, str]] = []
        self.value: Any = None

    def _view(self, kind: str) -> View:
        found = self._seen.get(kind)
        if found is None:
            found = self._seen[kind] = view(self._role, kind, self._purpose_kinds)
        return found

    def _masked(self, kind: str, text: str, path: str) -> str:
        self.masked.append((path, kind))
        rule = self._maskers.get(kind)
        if rule is None:
            made = self._masking(kind) if self._masking is not None else masker_for(kind)
            rule = self._maskers[kind] = made
        return rule(text)

    def _typed(self, value: str, kinds: Iterable[str], path: str) -> Any:
        """Text of a declared kind (of several, the one the role sees least of)."""
        kind = max(sorted(kinds), key=lambda k: _HIDING[self._view(k)])
        seeing = self._view(kind)
        if seeing == "clear":
            self.clear.append((path, kind))
            return value
        return self._masked(kind, value, path) if seeing == "masked" else _ABSENT

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
                parts.append(self._masked(finding.kind, piece, path))
            else:
                parts.append("*" * len(piece))
            at = finding.end
        parts.append(text[at:])
        return "".join(parts)

    def walk(self, value: Any, path: str, depth: int, declared: _Declared | None = None) -> Any:
        """The visible copy of ``value`` found at ``path``; _ABSENT when nothing shows.
        ``declared`` is what its field's type (or ``kinds=``) says: plain text and numbers
        under a declared kind are that kind, whatever they look like."""
        if depth > _DEPTH:
            raise InvalidArgument("a revealed model or mapping nests too deep")
        declared = self._declared.get(path, declared)
        kinds = frozenset() if declared is None else declared.every_kind()
        inner = None if declared is None else declared.inner()
        if isinstance(value, PIIStr):
            return self._typed(value, (type(value).pii_kind.name,), path)
        if isinstance(value, str):
            return self._typed(value, kinds, path) if kinds else self._free(value, path)
        found = _class_fields((type(value), ()))
        if found is not None and not isinstance(value, Mapping):  # a model, a dataclass, ...
            # a model's own field names (``found`` also holds their aliases, for mappings)
            named = list(type(value).model_fields) if isinstance(value, BaseModel) else found
            items = (
                (name, getattr(value, name), self._field(declared, name, found[name]))
                for name in named
            )
            return self._fields(items, path, depth, None)
        if isinstance(value, Mapping):  # a TypedDict, or a model's fields as a plain dict
            keys = None if declared is None else declared.key_kinds()
            pairs = value.items()
            if declared is not None and declared.shapes:
                shaped = ((k, v, declared.field(k)) for k, v in pairs)
                # a key no declared class has is not shown: nothing says what it holds
                items = ((k, v, _merged(inner, d)) for k, v, (known, d) in shaped if known)
                return self._fields(items, path, depth, keys)
            return self._fields(((k, v, inner) for k, v in pairs), path, depth, keys)
        if isinstance(value, list | tuple | set | frozenset):
            shown = (self.walk(item, path, depth + 1, inner) for item in value)
            return [item for item in shown if item is not _ABSENT]
        if isinstance(value, Enum):
            return self.walk(value.value, path, depth + 1, declared)
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return self._number(value, kinds, path)
        if isinstance(value, _PLAIN):
            return value
        return _ABSENT  # what the walk cannot read (bytes, an object), it does not show

    @staticmethod
    def _field(declared: _Declared | None, name: str, own: _Declared | None) -> _Declared | None:
        """What an object's field holds: its class's declaration, what the place it was
        found in declares of that field (``Box[Phone]`` for a ``Box`` whose ``item: T``),
        and a kind declared for the place itself, which holds for whatever is found there
        (``name: PersonName`` holding a NamedTuple of its parts)."""
        if declared is None:
            return own
        if declared.shapes:
            own = _merged(own, declared.field(name)[1])
        return _merged(own, declared.inner()) if declared.kinds else own

    def _number(self, value: int | float | Decimal, kinds: frozenset[str], path: str) -> Any:
        """A number: of a declared kind, shown as that kind (a phone kept as a number is
        still a phone); long enough to be a phone, a card or an ID number, scanned."""
        text = _number_text(value)
        if kinds:
            shown = self._typed(text, kinds, path)
            return value if shown is text else shown
        if _DIGIT_RUN.search(text) is None:
            return value
        scanned = self._free(text, path)
        return value if scanned == text else scanned

    def _fields(
        self,
        items: Iterable[tuple[Any, Any, _Declared | None]],
        path: str,
        depth: int,
        keys: _Declared | None,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, item, declared in items:
            key = self._key(name, path, keys)
            part = name if _plain_name(name) else "__key__"  # no value in a recorded path
            result = self.walk(item, f"{path}.{part}" if path else part, depth + 1, declared)
            if result is not _ABSENT:
                out[key] = result
        return out

    def _key(self, name: object, path: str, declared: _Declared | None) -> str:
        """A mapping's key as the role may see it: a typed key (or one of a declared kind)
        by its kind, hidden whole where the kind is absent; any other scanned like free
        text."""
        where = f"{path}.__key__" if path else "__key__"
        text = str(name)
        if isinstance(name, PIIStr):
            kinds: Iterable[str] = (type(name).pii_kind.name,)
        elif declared is not None and declared.every_kind() and not isinstance(name, bool):
            kinds = declared.every_kind()  # a tuple key of (name, city): the least seen part
        else:
            return self._free(text, where)
        shown = self._typed(text, kinds, where)
        return "*" * len(text) if shown is _ABSENT else str(shown)


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
