"""Masking: irreversible, layout-preserving display forms of PII (DESIGN §4).

Pure functions: nothing here touches keys, storage or the network.
"""

from piiguard.masking.api import mask, mask_many, mask_model, masker_for
from piiguard.masking.policy import ALL_KINDS, MaskingPolicy
from piiguard.masking.rules import (
    AddressMask,
    DateOfBirthMask,
    EmailMask,
    IPv4Mask,
    IPv6Mask,
    KeepEnds,
    MaskAll,
    MaskRule,
    PersonNameMask,
    PhoneMask,
    Replace,
)

__all__ = [
    "ALL_KINDS",
    "AddressMask",
    "DateOfBirthMask",
    "EmailMask",
    "IPv4Mask",
    "IPv6Mask",
    "KeepEnds",
    "MaskAll",
    "MaskRule",
    "MaskingPolicy",
    "PersonNameMask",
    "PhoneMask",
    "Replace",
    "mask",
    "mask_many",
    "mask_model",
    "masker_for",
]
