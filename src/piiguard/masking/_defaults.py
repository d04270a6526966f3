"""The default rule of each built-in kind (DESIGN §4)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from piiguard.masking.rules import (
    AddressMask,
    DateOfBirthMask,
    EmailMask,
    IPv4Mask,
    IPv6Mask,
    KeepEnds,
    MaskRule,
    PersonNameMask,
    PhoneMask,
    Replace,
)

__all__ = ["DEFAULT_RULES"]

#: Kind name -> the rule used when no policy or rule says otherwise.
DEFAULT_RULES: Mapping[str, MaskRule] = MappingProxyType(
    {
        "phone": PhoneMask(),
        "email": EmailMask(),
        "cn_resident_id": KeepEnds(first=1, last=1),  # never the birth date or the sex digit
        "bank_card": KeepEnds(first=0, last=4),  # PCI DSS: at most BIN + last 4
        "person_name": PersonNameMask(),
        "address": AddressMask(),
        "date_of_birth": DateOfBirthMask(),
        "ipv4": IPv4Mask(),
        "ipv6": IPv6Mask(),
        "cn_passport": KeepEnds(first=1, last=2),
        "cn_license_plate": KeepEnds(first=2, last=1),
        "personal_info": Replace(),
        "biometric": Replace(),
        "health": Replace(),
        "location": Replace(),
        "religion": Replace(),
        "specific_identity": Replace(),
    }
)
