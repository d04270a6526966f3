"""Typed PII fields for pydantic models, and the inventory of a model's PII.

A PII field is a :class:`PIIStr`: a ``str`` holding the checked, normalised value (so it
goes to a database driver, a template or ``guard.encrypt`` as it is), whose ``repr()`` is
masked. :class:`PIIModel` is a pydantic model whose validation errors never hold the input.

    >>> class Customer(PIIModel):
    ...     name: PersonName
    ...     phone: Phone
    >>> Customer(name="张三丰", phone="138 1234 5678")
    Customer(name=PersonName('张**'), phone=Phone('+86138****5678'))
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic import ValidationError as PydanticValidationError
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from piiguard.errors import InvalidArgument, InvalidPII, PolicyViolation
from piiguard.kinds import Category, PIIKind, get_kind
from piiguard.masking import masker_for

__all__ = [
    "Address",
    "BankCard",
    "CNLicensePlate",
    "CNPassport",
    "CNResidentID",
    "DateOfBirth",
    "Email",
    "FieldSpec",
    "IPv4",
    "IPv6",
    "PIIModel",
    "PIIStr",
    "PersonName",
    "Phone",
    "inventory",
]

#: What validation errors of a PIIModel show in place of the input.
REDACTED_INPUT = "<redacted>"


class PIIStr(str):
    """Text that is personal information: checked, normalised, masked in ``repr()``.

    Subclass it with a kind to type an application's own PII::

        class Diagnosis(PIIStr, kind="health"): ...

    ``str(value)``, f-strings and ``==`` see the full value: it is the value. Only
    ``repr()`` (and so the repr of models, lists and log events that use it) is masked.

    Raises:
        InvalidPII: on construction, when the value is not valid for the kind.
    """

    __slots__ = ()
    pii_kind: ClassVar[PIIKind] = get_kind("personal_info")
    _masker: ClassVar[Callable[[str], str]] = masker_for(pii_kind)
    _check: ClassVar[Callable[[object], str | InvalidPII]] = staticmethod(pii_kind.check)

    def __init_subclass__(cls, *, kind: str | PIIKind | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls.pii_kind = get_kind(kind)
            cls._masker = masker_for(cls.pii_kind)
            cls._check = staticmethod(cls.pii_kind.check)

    def __new__(cls, value: object) -> Self:
        if type(value) is cls:
            return value
        result = cls._check(value)
        if isinstance(result, str):
            return str.__new__(cls, result)
        del value
        raise result

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self)._masker(self)!r})"

    def masked(self) -> str:
        """Return the value masked by its kind's default rule."""
        return type(self)._masker(self)

    def __reduce__(self) -> tuple[type[Self], tuple[str]]:
        return (type(self), (str(self),))

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(_pydantic_validator(cls))

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "format": cls.pii_kind.name, "x-pii-kind": cls.pii_kind.name}


def _pydantic_validator(cls: type[PIIStr]) -> Callable[[Any], PIIStr]:
    """The function pydantic calls per value: the class's check, errors as pydantic errors.

    Built per class with everything bound to locals: it runs once per field per record.
    """
    check = cls._check
    new = str.__new__

    def validate(value: Any) -> PIIStr:
        if type(value) is cls:
            return value
        result = check(value)
        if type(result) is str:
            return new(cls, result)
        if isinstance(result, InvalidPII):
            raise PydanticCustomError(
                "invalid_pii",
                f"invalid {result.kind}: {result.message}",
                {"kind": result.kind, "reason": result.code},
            )
        return new(cls, result)

    return validate


class Phone(PIIStr, kind="phone"):
    """A phone number, normalised to E.164 (``+8613812345678``); default region CN."""

    __slots__ = ()


class Email(PIIStr, kind="email"):
    """An e-mail address, syntax-checked (no DNS), domain lower-cased."""

    __slots__ = ()


class PersonName(PIIStr, kind="person_name"):
    """A person's name, spaces collapsed."""

    __slots__ = ()


class Address(PIIStr, kind="address"):
    """A postal address, full-width digits made ASCII and spaces collapsed."""

    __slots__ = ()


class DateOfBirth(PIIStr, kind="date_of_birth"):
    """A birth date as ISO ``YYYY-MM-DD``; accepts a ``datetime.date`` too."""

    __slots__ = ()


class CNResidentID(PIIStr, kind="cn_resident_id"):
    """A Chinese resident ID number: 18 characters, MOD 11-2 check, real birth date; x -> X."""

    __slots__ = ()


class CNPassport(PIIStr, kind="cn_passport"):
    """A Chinese passport number, upper-cased."""

    __slots__ = ()


class BankCard(PIIStr, kind="bank_card"):
    """A bank-card number, Luhn-checked, digits only."""

    __slots__ = ()


class CNLicensePlate(PIIStr, kind="cn_license_plate"):
    """A Chinese vehicle licence plate, without separators."""

    __slots__ = ()


class IPv4(PIIStr, kind="ipv4"):
    """An IPv4 address in dotted-quad form."""

    __slots__ = ()


class IPv6(PIIStr, kind="ipv6"):
    """An IPv6 address in compressed lower-case form."""

    __slots__ = ()


def _safe_context(line: Any) -> dict[str, str] | None:
    """The context of a piiguard error (its kind and reason code: no value); other errors'
    contexts are dropped, as they may quote the input (``value_error`` holds the exception)."""
    context = line.get("ctx")
    if line["type"] != "invalid_pii" or not context:
        return None
    return {"kind": str(context["kind"]), "reason": str(context["reason"])}


def _without_inputs(error: PydanticValidationError) -> PydanticValidationError:
    """The same errors with every input replaced, so no value survives in ``errors()``."""
    return PydanticValidationError.from_exception_data(
        error.title,
        [
            {
                "type": PydanticCustomError(line["type"], line["msg"], _safe_context(line)),
                "loc": line["loc"],
                "input": REDACTED_INPUT,
            }
            for line in error.errors(include_url=False, include_input=False)
        ],
        hide_input=True,
    )


class PIIModel(BaseModel):
    """A pydantic model for records holding PII.

    Its validation errors (``str()``, ``repr()`` and ``errors()``) never hold an input, and
    the locals of its validating frames are cleared before an error leaves them. Its repr
    shows PII fields masked. Every way a value gets in is validated, so a PII field never
    holds a plain ``str``: construction, assignment (``c.phone = ...``),
    ``model_copy(update=...)`` and ``model_construct``. Disabling ``hide_input_in_errors``
    or ``validate_assignment`` in a subclass is refused.
    """

    model_config = ConfigDict(
        hide_input_in_errors=True, validate_assignment=True, validate_default=True
    )
    #: The purposes the model is collected for (``class Checkout(pg.PIIModel, purposes=...)``).
    __pii_purposes__: ClassVar[tuple[Any, ...]] = ()
    #: Whether this model or a base declared ``purposes=`` (even empty): then it is checked.
    __pii_declared__: ClassVar[bool] = False

    def __init_subclass__(cls, *, purposes: Iterable[Any] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if purposes is not None:
            if isinstance(purposes, str) or not all(
                isinstance(getattr(p, "name", None), str) and hasattr(p, "kinds") for p in purposes
            ):
                raise InvalidArgument("purposes= takes pg.Purpose objects (name and kinds)")
            cls.__pii_purposes__ = tuple(purposes)
            cls.__pii_declared__ = True  # purposes=() too: then no PII field may be collected

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if not cls.model_config.get("hide_input_in_errors", False):
            raise TypeError("a PIIModel must keep hide_input_in_errors=True")
        if not cls.model_config.get("validate_assignment", False):
            raise TypeError("a PIIModel must keep validate_assignment=True")
        if cls.__pii_declared__:
            if not cls.__pydantic_complete__:  # a forward reference: its kinds are unknown
                raise PolicyViolation(
                    "a model declared with purposes= must be complete when defined: declare "
                    "the models it holds before it (forward references are not checked)"
                )
            _minimal(cls)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy, as pydantic's ``model_copy``, whose ``update`` values are validated (each
        assigned as ``c.name = value`` is), so no PII field ends up a plain str."""
        copied = super().model_copy(deep=deep)
        error = None
        try:
            for name, value in (update or {}).items():
                setattr(copied, name, value)
        except PydanticValidationError as exc:
            error = _without_inputs(exc)
        if error is None:
            return copied
        del copied, update, name, value  # the inputs, and values already applied
        raise error

    @classmethod
    def model_construct(cls, _fields_set: set[str] | None = None, **values: Any) -> Self:  # type: ignore[override]
        """Validated, unlike pydantic's: skipping validation would leave PII fields plain
        strings, shown whole in reprs and logs."""
        error = None
        try:
            return cls.model_validate(values)
        except PydanticValidationError as exc:
            error = exc
        values.clear()
        raise error

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """The fields for ``repr()`` and ``str()``, with any plain ``str`` under a PII field
        masked: a container field mutated in place (``m.phones.append("...")``) is not
        validated, and must not show a value whole for it."""
        kinds = pii_field_kinds(type(self))
        for name, value in super().__repr_args__():
            pii = name is not None and name in kinds
            yield name, _mask_plain(value, kinds[name]) if pii else value  # type: ignore[index]

    def __init__(self, /, **data: Any) -> None:
        # BaseModel.__init__ is this one call; calling the validator directly saves a frame
        # on every record and lets the error leave from a frame whose locals we clear.
        error = None
        try:
            self.__pydantic_validator__.validate_python(data, self_instance=self)
        except PydanticValidationError as exc:
            error = _without_inputs(exc)
        if error is not None:
            data.clear()
            raise error

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        """Validate an object, as pydantic's ``model_validate``, with inputs kept out of errors."""
        error = None
        try:
            return super().model_validate(obj, **kwargs)
        except PydanticValidationError as exc:
            error = _without_inputs(exc)
        del obj
        raise error

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
        """Validate JSON, as pydantic's ``model_validate_json``, with inputs kept out of errors."""
        error = None
        try:
            return super().model_validate_json(json_data, **kwargs)
        except PydanticValidationError as exc:
            error = _without_inputs(exc)
        del json_data
        raise error

    @classmethod
    def model_validate_strings(cls, obj: Any, **kwargs: Any) -> Self:
        """Validate string data, as pydantic's ``model_validate_strings``, inputs kept out."""
        error = None
        try:
            return super().model_validate_strings(obj, **kwargs)
        except PydanticValidationError as exc:
            error = _without_inputs(exc)
        del obj
        raise error

    def __setattr__(self, name: str, value: Any) -> None:
        error = None
        try:
            super().__setattr__(name, value)
        except PydanticValidationError as exc:
            error = _without_inputs(exc)
        else:
            return
        del value
        raise error


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One PII field of a model, as :func:`inventory` reports it.

    Attributes:
        name: the field's name; a nested model's fields are ``outer.inner``.
        kind: the PII kind's name.
        category: its GB/T 35273 category.
        sensitive: whether it is sensitive (PIPL Art. 28, or GB/T 35273-2020 Annex B).
        purposes: the model's purposes (``purposes=``) whose kinds include this one.
    """

    name: str
    kind: str
    category: Category
    sensitive: bool
    purposes: tuple[str, ...] = ()


#: How deep an annotation is looked through (an alias of itself ends here).
_DEPTH = 32


def _pii_types(annotation: Any, depth: int = 0) -> Iterator[type]:
    """Every PIIStr subclass and class with named fields (a model, a dataclass, a TypedDict,
    a NamedTuple) inside an annotation: Optional, list, Annotated, a NewType, a type alias
    and a type variable's bound are looked through."""
    if depth > _DEPTH:
        return
    if isinstance(annotation, typing.TypeVar):
        for inner in (annotation.__bound__, *annotation.__constraints__):
            yield from _pii_types(inner, depth + 1)
        return
    for wrapped in ("__supertype__", "__value__"):  # NewType; a type alias (PEP 695)
        if hasattr(annotation, wrapped) and not isinstance(annotation, type):
            yield from _pii_types(getattr(annotation, wrapped), depth + 1)
            return
    if isinstance(annotation, type) and (
        issubclass(annotation, PIIStr) or _fields_of(annotation) is not None
    ):
        yield annotation
        return
    validator = getattr(annotation, "func", None)  # AfterValidator(pg.CNResidentID), ...
    if isinstance(validator, type) and issubclass(validator, PIIStr):
        yield validator
        return
    origin = typing.get_origin(annotation)
    if isinstance(origin, type) and _fields_of(origin) is not None:
        yield origin  # a generic dataclass or TypedDict: its own fields too (Holder[int])
    for argument in typing.get_args(annotation):
        if not isinstance(argument, types.EllipsisType):
            yield from _pii_types(argument, depth + 1)


def _fields_of(cls: type, *, strict: bool = False) -> dict[str, Any] | None:
    """A class's field name -> annotation (a model's with its metadata, as ``Annotated``),
    for a model, a dataclass, a TypedDict or a NamedTuple; None for any other class. With
    ``strict``, annotations that do not resolve are refused rather than skipped."""
    if issubclass(cls, BaseModel):
        return {
            name: typing.Annotated[info.annotation, *info.metadata]
            if info.metadata
            else info.annotation
            for name, info in cls.model_fields.items()
        }
    shaped = (
        dataclasses.is_dataclass(cls)
        or (issubclass(cls, dict) and hasattr(cls, "__required_keys__"))
        or (issubclass(cls, tuple) and hasattr(cls, "_fields"))
    )
    if not shaped:
        return None
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception:  # a forward reference that does not resolve: what is known
        if strict:
            raise PolicyViolation(
                f"the fields of {cls.__name__} cannot be read (an annotation that does not "
                "resolve): a model declared with purposes= must be readable whole"
            ) from None
        return dict(getattr(cls, "__annotations__", {}))


def inventory(model: type[BaseModel] | BaseModel) -> list[FieldSpec]:
    """List the PII fields of a model class (or of an instance's class), in field order.

    Examples:
        >>> class Customer(PIIModel):
        ...     phone: Phone
        ...     id_number: CNResidentID | None = None
        >>> [(spec.name, spec.kind, spec.sensitive) for spec in inventory(Customer)]
        [('phone', 'phone', False), ('id_number', 'cn_resident_id', True)]
    """
    model_class = model if isinstance(model, type) else type(model)
    declared = getattr(model_class, "__pii_purposes__", ())
    specs = _specs(model_class, frozenset())
    if declared:
        specs = [
            replace(spec, purposes=tuple(p.name for p in declared if spec.kind in p.kinds))
            for spec in specs
        ]
    return specs


def _specs(cls: type, seen: frozenset[type], *, strict: bool = False) -> list[FieldSpec]:
    """The PII fields of a class with named fields, nested ones as ``outer.inner``; a class
    already being walked (a self-referencing model) adds nothing more."""
    specs: list[FieldSpec] = []
    for name, annotation in (_fields_of(cls, strict=strict) or {}).items():
        for found in _pii_types(annotation):
            if issubclass(found, PIIStr):
                kind = found.pii_kind
                specs.append(FieldSpec(name, kind.name, kind.category, kind.sensitive))
            elif found not in seen:
                specs.extend(
                    FieldSpec(f"{name}.{inner.name}", inner.kind, inner.category, inner.sensitive)
                    for inner in _specs(found, seen | {cls}, strict=strict)
                )
    return specs


def _minimal(model: type[BaseModel]) -> None:
    """Minimisation at collection (PIPL Art. 6, GB/T 35273-2020 §5.2): every PII field of a
    model declared with ``purposes=`` has a kind one of them names, else the class is not
    made (:class:`~piiguard.PolicyViolation`, naming the field and its kind)."""
    _specs(model, frozenset(), strict=True)  # every annotation readable, or refused
    for spec in inventory(model):
        if not spec.purposes:
            raise PolicyViolation(
                f"field {spec.name!r} holds {spec.kind!r}, which none of the model's purposes "
                "names: collect only what a purpose needs (PIPL Art. 6), or add the kind to "
                "a purpose"
            )


@functools.cache
def pii_field_kinds(model: type[BaseModel]) -> Mapping[str, PIIKind | None]:
    """Field name -> the kind of its PII values (None when several kinds share the field)."""
    kinds: dict[str, PIIKind | None] = {}
    for name, info in model.model_fields.items():
        found = {t.pii_kind for t in _pii_types(info.annotation) if issubclass(t, PIIStr)}
        if found:
            kinds[name] = found.pop() if len(found) == 1 else None
    return kinds


def _mask_plain(value: Any, kind: PIIKind | None) -> Any:
    """``value`` with every plain str inside it (not a PIIStr, whose repr masks itself)
    replaced by its mask (every character, when the kind is not known)."""
    if type(value) is str:
        return masker_for(kind)(value) if kind is not None else "*" * len(value)
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(_mask_plain(item, kind) for item in value)
    if isinstance(value, dict):
        return {key: _mask_plain(item, kind) for key, item in value.items()}
    return value
