"""piiguard: protect customers' personal information in e-commerce backends.

Typed PII fields on pydantic models, validators for Chinese and international formats,
layout-preserving masking and detection in free text; envelope encryption with key epochs,
tokenization, consent, retention and erasure through one ``Guard``; the audit log, sharing and
the ORM follow (see the documentation).

    >>> import piiguard as pg
    >>> pg.mask("13812345678", "phone")
    '138****5678'
    >>> pg.redact("call 13812345678")
    'call 138****5678'
"""

from piiguard import keys, tokens
from piiguard.consent import Purpose
from piiguard.detect import Finding, redact, redact_many, scan, scan_many
from piiguard.errors import (
    ConsentRequired,
    DecryptionError,
    EventNotRecorded,
    InsecureKeyFile,
    InvalidArgument,
    InvalidPII,
    KeyDestroyed,
    KeyNotFound,
    KeyProviderError,
    PiiGuardError,
    PolicyViolation,
    StoreBusy,
    StoreError,
    TokenExpired,
    TokenNotFound,
    UnknownKind,
    UnknownNotice,
    UnknownPurpose,
    UnknownRole,
    WrappedKeyInvalid,
)
from piiguard.events import AccessEvent, EventSink
from piiguard.fields import (
    Address,
    BankCard,
    CNLicensePlate,
    CNPassport,
    CNResidentID,
    DateOfBirth,
    Email,
    FieldSpec,
    IPv4,
    IPv6,
    PersonName,
    Phone,
    PIIModel,
    PIIStr,
    inventory,
)
from piiguard.guard import Guard
from piiguard.kinds import BUILTIN_KINDS, Category, PIIKind, get_kind, is_valid, normalise
from piiguard.masking import (
    ALL_KINDS,
    AddressMask,
    DateOfBirthMask,
    EmailMask,
    IPv4Mask,
    IPv6Mask,
    KeepEnds,
    MaskAll,
    MaskingPolicy,
    MaskRule,
    PersonNameMask,
    PhoneMask,
    Replace,
    mask,
    mask_many,
    mask_model,
    masker_for,
)
from piiguard.retention import RetentionPolicy
from piiguard.subjects import ErasureReceipt

__version__ = "0.1.0.dev0"

__all__ = [
    "ALL_KINDS",
    "BUILTIN_KINDS",
    "AccessEvent",
    "Address",
    "AddressMask",
    "BankCard",
    "CNLicensePlate",
    "CNPassport",
    "CNResidentID",
    "Category",
    "ConsentRequired",
    "DateOfBirth",
    "DateOfBirthMask",
    "DecryptionError",
    "Email",
    "EmailMask",
    "ErasureReceipt",
    "EventNotRecorded",
    "EventSink",
    "FieldSpec",
    "Finding",
    "Guard",
    "IPv4",
    "IPv4Mask",
    "IPv6",
    "IPv6Mask",
    "InsecureKeyFile",
    "InvalidArgument",
    "InvalidPII",
    "KeepEnds",
    "KeyDestroyed",
    "KeyNotFound",
    "KeyProviderError",
    "MaskAll",
    "MaskRule",
    "MaskingPolicy",
    "PIIKind",
    "PIIModel",
    "PIIStr",
    "PersonName",
    "PersonNameMask",
    "Phone",
    "PhoneMask",
    "PiiGuardError",
    "PolicyViolation",
    "Purpose",
    "Replace",
    "RetentionPolicy",
    "StoreBusy",
    "StoreError",
    "TokenExpired",
    "TokenNotFound",
    "UnknownKind",
    "UnknownNotice",
    "UnknownPurpose",
    "UnknownRole",
    "WrappedKeyInvalid",
    "__version__",
    "get_kind",
    "inventory",
    "is_valid",
    "keys",
    "mask",
    "mask_many",
    "mask_model",
    "masker_for",
    "normalise",
    "redact",
    "redact_many",
    "scan",
    "scan_many",
    "tokens",
]
