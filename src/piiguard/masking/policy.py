"""MaskingPolicy: which rule each role sees for each kind (least privilege, typed up front)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from piiguard.errors import UnknownRole
from piiguard.kinds import PIIKind, get_kind
from piiguard.masking.rules import MaskRule

__all__ = ["ALL_KINDS", "MaskingPolicy"]

#: Key of a role's table that applies to every kind the table does not name.
ALL_KINDS = "*"

RuleTable = Mapping["str | PIIKind", MaskRule]


def _freeze(table: RuleTable) -> Mapping[str, MaskRule]:
    if not isinstance(table, Mapping):
        raise TypeError("a policy's rules are a mapping of kind -> rule")
    frozen: dict[str, MaskRule] = {}
    for kind, rule in table.items():
        name = ALL_KINDS if kind == ALL_KINDS else get_kind(kind).name
        if not callable(rule):
            raise TypeError("a masking rule must be callable: str -> str")
        frozen[name] = rule
    return MappingProxyType(frozen)


class MaskingPolicy:
    """Rules per role and kind, checked when the policy is built.

    Args:
        roles: role name -> {kind -> rule}. A kind is a built-in kind's name, a
            :class:`~piiguard.PIIKind`, or ``"*"`` for every kind the table does not name.
        default: {kind -> rule} used when no role is given, and for kinds a role's table
            does not cover. Kinds in neither fall back to their own default rule.

    Asking for a role the policy does not define raises :class:`~piiguard.UnknownRole`:
    an unknown role gets no rules of another role by accident.

    Examples:
        >>> from piiguard import MaskingPolicy, KeepEnds, MaskAll, mask
        >>> policy = MaskingPolicy(
        ...     {"courier": {"phone": KeepEnds(0, 4)}, "analyst": {"*": MaskAll()}}
        ... )
        >>> mask("13812345678", "phone", policy=policy, role="courier")
        '*******5678'
    """

    __slots__ = ("_default", "_roles")

    def __init__(
        self, roles: Mapping[str, RuleTable] | None = None, *, default: RuleTable | None = None
    ) -> None:
        roles = roles or {}
        if not isinstance(roles, Mapping) or not all(isinstance(role, str) for role in roles):
            raise TypeError("roles is a mapping of role name -> rules")
        self._roles = MappingProxyType({role: _freeze(table) for role, table in roles.items()})
        self._default = _freeze(default or {})

    @property
    def roles(self) -> frozenset[str]:
        """The roles this policy defines."""
        return frozenset(self._roles)

    def rule_for(self, kind: str | PIIKind, role: str | None = None) -> MaskRule | None:
        """Return the rule for ``kind`` as seen by ``role``, or None for the kind's default.

        Raises:
            UnknownRole: the policy does not define ``role``.
            UnknownKind: ``kind`` names no built-in kind.
        """
        name = get_kind(kind).name
        if role is not None:
            table = self._roles.get(role)
            if table is None:
                error = UnknownRole(role)
                del role  # a role is a name, but never keep a misplaced value in the locals
                raise error
            rule = table.get(name) or table.get(ALL_KINDS)
            if rule is not None:
                return rule
        return self._default.get(name) or self._default.get(ALL_KINDS)

    def __repr__(self) -> str:
        return f"MaskingPolicy(roles={sorted(self._roles)})"
