"""mask(), mask_many() and mask_model(): the application-facing masking calls."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from piiguard.errors import InvalidArgument, PiiGuardError
from piiguard.kinds import BUILTIN_KINDS, PIIKind, get_kind
from piiguard.masking._defaults import DEFAULT_RULES
from piiguard.masking._layout import MASK, mask_whole
from piiguard.masking._shapes import SHAPES
from piiguard.masking.policy import MaskingPolicy
from piiguard.masking.rules import MaskRule, Replace

__all__ = ["mask", "mask_many", "mask_model", "masker_for"]


def _shape_guarded(shape: Callable[[str], bool], rule: MaskRule) -> MaskRule:
    def masker(value: str) -> str:
        # a masked character stands where a digit or letter stood: "1****X" is ID-shaped
        return rule(value) if shape(value.replace(MASK, "0")) else mask_whole(value)

    return masker


def _build_masker(kind: str | PIIKind, rule: MaskRule | None) -> MaskRule:
    resolved = get_kind(kind)
    builtin = BUILTIN_KINDS.get(resolved.name) is resolved
    if rule is None:
        rule = resolved.default_mask or (DEFAULT_RULES[resolved.name] if builtin else Replace())
    shape = SHAPES.get(resolved.name) if builtin else None
    if shape is None or getattr(rule, "checks_shape", False):
        return rule
    return _shape_guarded(shape, rule)


_GENERAL_PHONE = DEFAULT_RULES["phone"]


def _fast_cn_mobile(value: str) -> str:
    """The default phone rule, with the common 11-digit mobile inlined (same output)."""
    if len(value) == 11 and value.isdigit() and value[0] == "1":
        return value[:3] + "****" + value[7:]
    if not isinstance(value, str):
        raise InvalidArgument("masking takes text")  # mask() turns this into its own clean error
    return _GENERAL_PHONE(value)


_GENERAL_CN_RESIDENT_ID = _build_masker("cn_resident_id", None)


_ID_LAST_CHARS = frozenset("0123456789Xx")


def _fast_cn_resident_id(value: str) -> str:
    """The default ID rule, with the common 18-character number inlined (same output)."""
    if len(value) == 18 and value[:17].isdigit() and value[17] in _ID_LAST_CHARS:
        return f"{value[0]}****************{value[17]}"
    return _GENERAL_CN_RESIDENT_ID(value)


#: Built-in kind name -> its default masker; the hot path of mask().
_DEFAULT_MASKERS: Mapping[str, MaskRule] = {
    **{name: _build_masker(name, None) for name in BUILTIN_KINDS},
    "phone": _fast_cn_mobile,
    "cn_resident_id": _fast_cn_resident_id,
}


def masker_for(kind: str | PIIKind, rule: MaskRule | None = None) -> MaskRule:
    """Return the function that masks values of ``kind`` with ``rule`` (default: the kind's).

    Resolve once, call many times: in a hot loop this skips the per-call look-up of
    :func:`mask`. For built-in kinds the rule only sees values of the kind's shape; anything
    else is masked whole, so ``KeepEnds(1, 1)`` never shows two characters of a stray note.

    Examples:
        >>> mask_id = masker_for("cn_resident_id")
        >>> mask_id("11010519491231002X")
        '1****************X'

    Raises:
        UnknownKind: ``kind`` names no built-in kind.
    """
    if rule is None:
        name = kind.name if isinstance(kind, PIIKind) else kind
        default = _DEFAULT_MASKERS.get(name) if isinstance(name, str) else None
        if default is not None and BUILTIN_KINDS.get(name) is get_kind(kind):
            return default
    return _build_masker(kind, rule)


def _not_text(value: object) -> InvalidArgument:
    return InvalidArgument(f"masking takes text, not {type(value).__name__}")


def _resolve(
    kind: str | PIIKind,
    rule: MaskRule | None,
    policy: MaskingPolicy | None = None,
    role: str | None = None,
) -> MaskRule | PiiGuardError:
    """The masker, or the error unraised and without the frames that held ``kind``.

    A kind name is code, not data, but arguments passed the wrong way round would put the
    value there: ``mask("phone", "13812345678")``.
    """
    try:
        return masker_for(kind, _chosen(kind, rule, policy, role))
    except PiiGuardError as error:
        return error.with_traceback(None)


def _chosen(
    kind: str | PIIKind,
    rule: MaskRule | None,
    policy: MaskingPolicy | None,
    role: str | None,
) -> MaskRule | None:
    """The rule ``mask`` applies: ``rule``, else the policy's rule for ``role``, else None
    (the kind's default). One rule, one source: a rule and a policy together are refused."""
    if policy is None:
        if role is not None:
            raise InvalidArgument("a role needs a policy")
        return rule
    if rule is not None:
        raise InvalidArgument("give a rule or a policy, not both")
    if not isinstance(policy, MaskingPolicy):
        raise InvalidArgument("policy is a MaskingPolicy")
    return policy.rule_for(get_kind(kind), role)


def mask(
    value: str,
    kind: str | PIIKind,
    *,
    rule: MaskRule | None = None,
    policy: MaskingPolicy | None = None,
    role: str | None = None,
) -> str:
    """Mask one value of ``kind`` for display; irreversible.

    Args:
        value: the text to mask.
        kind: a built-in kind's name (``"phone"``, ``"cn_resident_id"``, ...) or a PIIKind.
        rule: a rule to use instead of the kind's default.
        policy: rules per role, as :func:`mask_model` takes (not with ``rule``).
        role: the role whose rules apply (needs ``policy``).

    Returns:
        The masked text. Input that does not have the kind's shape is masked whole.

    Raises:
        UnknownKind: ``kind`` names no built-in kind.
        UnknownRole: ``policy`` does not define ``role``.
        InvalidArgument: ``value`` is not text (also a TypeError), or ``rule``, ``policy``
            and ``role`` do not go together.

    Examples:
        >>> mask("13812345678", "phone")
        '138****5678'
    """
    if rule is None and policy is None and role is None:
        # The hot path: a built-in kind's name and text. try is free in CPython 3.11+ when
        # nothing raises; a PIIKind, an unknown name or a value that is not text falls
        # through to the checked path below, which raises a clean error.
        try:
            return _DEFAULT_MASKERS[kind](value)  # type: ignore[index]
        except (KeyError, TypeError, AttributeError):
            pass
    resolved = _resolve(kind, rule, policy, role)
    if isinstance(resolved, PiiGuardError) or not isinstance(value, str):
        error = resolved if isinstance(resolved, PiiGuardError) else _not_text(value)
        del value, kind
        raise error
    return resolved(value)


def mask_many(
    values: Iterable[str],
    kind: str | PIIKind,
    *,
    rule: MaskRule | None = None,
    policy: MaskingPolicy | None = None,
    role: str | None = None,
) -> list[str]:
    """Mask many values of one kind, resolving the rule once (arguments as :func:`mask`).

    Raises:
        UnknownKind: ``kind`` names no built-in kind.
        UnknownRole: ``policy`` does not define ``role``.
        InvalidArgument: a value is not text (nothing is returned; also a TypeError).
    """
    plain = rule is None and policy is None and role is None and isinstance(kind, str)
    default = _DEFAULT_MASKERS.get(kind) if plain else None  # type: ignore[arg-type]
    masker = default if default is not None else _resolve(kind, rule, policy, role)
    batch = values if isinstance(values, list) else list(values)
    del values
    if isinstance(masker, PiiGuardError) or not all(isinstance(value, str) for value in batch):
        error = (
            masker if isinstance(masker, PiiGuardError) else InvalidArgument("masking takes text")
        )
        del batch, kind
        raise error
    return list(map(masker, batch))


def mask_model(
    model: BaseModel, *, policy: MaskingPolicy | None = None, role: str | None = None
) -> dict[str, Any]:
    """Return a model's fields as a dict, every PII value masked by its kind.

    PII values are those of the typed fields (:class:`~piiguard.PIIStr` and its
    subclasses), found also inside nested models, lists, tuples, sets and dict values.
    Other fields are returned as they are.

    Args:
        model: any pydantic model, usually a :class:`~piiguard.PIIModel`.
        policy: rules per role; without one, each kind's default rule.
        role: the role whose rules apply (needs ``policy``).

    Raises:
        UnknownRole: ``policy`` does not define ``role``.
    """
    if role is not None and policy is None:
        raise InvalidArgument("a role needs a policy")
    maskers: dict[PIIKind, MaskRule] = {}

    def masked(value: Any) -> Any:
        kind = getattr(type(value), "pii_kind", None)
        if isinstance(kind, PIIKind):
            masker = maskers.get(kind)
            if masker is None:
                chosen = policy.rule_for(kind, role) if policy is not None else None
                masker = maskers[kind] = masker_for(kind, chosen)
            return masker(value)
        if isinstance(value, BaseModel):
            return {name: masked(getattr(value, name)) for name in type(value).model_fields}
        if isinstance(value, list | tuple | set | frozenset):
            return [masked(item) for item in value]
        if isinstance(value, dict):
            return {key: masked(item) for key, item in value.items()}
        return value

    result: dict[str, Any] = masked(model)
    return result
