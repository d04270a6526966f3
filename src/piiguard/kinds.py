"""The kinds of personal information piiguard knows, with their PIPL category.

A :class:`PIIKind` names a kind of personal information, says which category of GB/T
35273-2020 Annex A it belongs to, whether it is *sensitive* (so that processing it needs
separate consent) and which text says so (PIPL Art. 28, or GB/T 35273-2020 Annex B where the
standard lists more than the law), and how to check and normalise a value of it.

Built-in kinds are looked up by name with :func:`get_kind`. An application's own kinds are
plain :class:`PIIKind` values passed where a kind is expected; there is no global registry
to mutate.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from piiguard.errors import InvalidPII, UnknownKind
from piiguard.validate import (
    check_address,
    check_bank_card,
    check_cn_license_plate,
    check_cn_passport,
    check_cn_resident_id,
    check_date_of_birth,
    check_email,
    check_ipv4,
    check_ipv6,
    check_person_name,
    check_phone,
)

__all__ = [
    "BUILTIN_KINDS",
    "GBT_35273_ANNEX_B",
    "PIPL_ART_28",
    "Category",
    "PIIKind",
    "get_kind",
    "is_valid",
    "normalise",
    "sensitive_kinds",
]

#: A check returns the normalised value, or the error (not raised) that says why not.
Check = Callable[[object], "str | InvalidPII"]


class Category(enum.StrEnum):
    """Categories of personal information after GB/T 35273-2020 Annex A."""

    BASIC = "basic"  # name, birth date, address
    CONTACT = "contact"  # phone, e-mail
    IDENTITY = "identity"  # ID card, passport
    FINANCIAL = "financial"  # bank cards and accounts
    PROPERTY = "property"  # what a subject owns or uses: vehicles, real estate
    DEVICE = "device"  # IP addresses, device identifiers
    BIOMETRIC = "biometric"
    HEALTH = "health"
    LOCATION = "location"  # whereabouts, precise location
    RELIGION = "religion"
    SPECIFIC_IDENTITY = "specific_identity"  # e.g. membership of a protected group


#: PIPL Art. 28: biometrics, religious belief, specific identity, medical health, financial
#: accounts, whereabouts, and the PI of minors under 14.
PIPL_ART_28 = "PIPL Art. 28"
#: GB/T 35273-2020 Annex B counts more as sensitive than the law does, among it identity
#: documents (ID card, passport, ...): a recommended national standard, named as such.
GBT_35273_ANNEX_B = "GB/T 35273-2020 Annex B"


def _any_text(value: object) -> str | InvalidPII:
    if isinstance(value, str):
        return value
    return InvalidPII("personal_info", "type", "expected text")


@dataclass(frozen=True, slots=True)
class PIIKind:
    """One kind of personal information.

    Args:
        name: a lower-case identifier, e.g. ``"phone"``.
        category: its GB/T 35273 category.
        sensitive: whether it is sensitive personal information.
        check: returns the normalised value or an unraised :class:`InvalidPII`; by default
            any text is accepted as it is.
        default_mask: how to mask it when no rule is given; ``None`` means the built-in
            default for a built-in kind and masking every character for any other.
        description: one line for inventories and docs.
        sensitive_by: which text makes it sensitive; defaults to ``"PIPL Art. 28"`` for a
            sensitive kind and ``""`` otherwise.
    """

    name: str
    category: Category
    sensitive: bool
    check: Check = field(default=_any_text, repr=False, compare=False)
    default_mask: Callable[[str], str] | None = field(default=None, repr=False, compare=False)
    description: str = field(default="", compare=False)
    sensitive_by: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.name, str) and self.name.isidentifier() and self.name.islower()):
            raise ValueError("a PII kind's name must be a lower-case identifier")
        if not isinstance(self.category, Category):
            raise TypeError("category must be a piiguard.Category")
        if self.sensitive and not self.sensitive_by:
            object.__setattr__(self, "sensitive_by", PIPL_ART_28)
        if not self.sensitive and self.sensitive_by:
            raise ValueError("sensitive_by names the text that makes a *sensitive* kind so")

    def normalise(self, value: object) -> str:
        """Return ``value`` checked and normalised.

        Raises:
            InvalidPII: the value is not valid for this kind. The message never contains it,
                and neither do the locals of the frame it is raised from.
        """
        result = self.check(value)
        if isinstance(result, str):
            return result
        del value
        raise result

    def is_valid(self, value: object) -> bool:
        """Return whether ``value`` is a valid value of this kind."""
        return isinstance(self.check(value), str)


def _kinds(*kinds: PIIKind) -> Mapping[str, PIIKind]:
    return MappingProxyType({kind.name: kind for kind in kinds})


#: The kinds piiguard knows by name.
BUILTIN_KINDS: Mapping[str, PIIKind] = _kinds(
    PIIKind("phone", Category.CONTACT, False, check_phone, description="phone number"),
    PIIKind("email", Category.CONTACT, False, check_email, description="e-mail address"),
    PIIKind("person_name", Category.BASIC, False, check_person_name, description="name"),
    PIIKind("address", Category.BASIC, False, check_address, description="postal address"),
    PIIKind("date_of_birth", Category.BASIC, False, check_date_of_birth, description="birth date"),
    PIIKind(
        "cn_resident_id",
        Category.IDENTITY,
        True,
        check_cn_resident_id,
        description="Chinese resident identity card number",
        sensitive_by=GBT_35273_ANNEX_B,
    ),
    PIIKind(
        "cn_passport",
        Category.IDENTITY,
        True,
        check_cn_passport,
        description="passport",
        sensitive_by=GBT_35273_ANNEX_B,
    ),
    PIIKind(
        "bank_card",
        Category.FINANCIAL,
        True,
        check_bank_card,
        description="bank card",
        sensitive_by="PIPL Art. 28 (financial accounts)",
    ),
    PIIKind(
        "cn_license_plate",
        Category.PROPERTY,
        False,
        check_cn_license_plate,
        description="vehicle licence plate",
    ),
    PIIKind("ipv4", Category.DEVICE, False, check_ipv4, description="IPv4 address"),
    PIIKind("ipv6", Category.DEVICE, False, check_ipv6, description="IPv6 address"),
    PIIKind("personal_info", Category.BASIC, False, description="other personal information"),
    PIIKind("biometric", Category.BIOMETRIC, True, description="biometric data"),
    PIIKind("health", Category.HEALTH, True, description="medical or health information"),
    PIIKind("location", Category.LOCATION, True, description="whereabouts, precise location"),
    PIIKind("religion", Category.RELIGION, True, description="religious belief"),
    PIIKind(
        "specific_identity",
        Category.SPECIFIC_IDENTITY,
        True,
        description="specific identity (PIPL Art. 28)",
    ),
)


def get_kind(kind: str | PIIKind) -> PIIKind:
    """Return the built-in kind of that name, or the kind itself when one is passed.

    Raises:
        UnknownKind: no built-in kind has that name.
    """
    if isinstance(kind, PIIKind):
        return kind
    found = BUILTIN_KINDS.get(kind) if isinstance(kind, str) else None
    if found is None:
        raise UnknownKind(kind)
    return found


def sensitive_kinds(names: Iterable[str]) -> frozenset[str]:
    """The names among ``names`` of built-in kinds that are sensitive personal information
    (PIPL Art. 28); other names are ignored. The one rule of what is sensitive."""
    return frozenset(
        name for name in names if name in BUILTIN_KINDS and BUILTIN_KINDS[name].sensitive
    )


def normalise(value: object, kind: str | PIIKind) -> str:
    """Check ``value`` as a value of ``kind`` and return its normalised form.

    Examples:
        >>> normalise("138 1234 5678", "phone")
        '+8613812345678'

    Raises:
        InvalidPII: the value is not valid; the error never holds it.
        UnknownKind: ``kind`` names no built-in kind.
    """
    result = get_kind(kind).check(value)
    if isinstance(result, str):
        return result
    del value
    raise result


def is_valid(value: object, kind: str | PIIKind) -> bool:
    """Return whether ``value`` is a valid value of ``kind``.

    Raises:
        UnknownKind: ``kind`` names no built-in kind.
    """
    return get_kind(kind).is_valid(value)
