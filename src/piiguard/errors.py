"""The one exception tree of piiguard.

Every error piiguard raises on purpose derives from :class:`PiiGuardError`, so an
application can catch the whole family with one ``except``::

    PiiGuardError
    ├── InvalidPII (ValueError)          a value is not a valid value of its kind
    ├── UnknownKind (LookupError)        no PII kind of that name is registered
    ├── PolicyViolation                  a masking policy or rule is misused
    │   └── UnknownRole (LookupError)    a MaskingPolicy has no rules for that role
    ├── DecryptionError                  a ciphertext does not open: one error for every cause
    │   └── KeyDestroyed                 its data key was shredded (erasure)
    ├── KeyNotFound (LookupError)        no key with that id is known to the keyring or store
    ├── ConsentRequired (PermissionError)  a subject lacks consent: names the missing purposes
    ├── UnknownPurpose (LookupError)     no purpose of that name is registered
    ├── TokenNotFound (LookupError)      no vault entry for that token (or it was deleted)
    │   └── TokenExpired                 the vault entry's time to live has passed
    ├── KeyProviderError                 a KEK (file, HSM, KMS) refused or failed to wrap/unwrap
    ├── InsecureKeyFile                  a local key file is readable by group or others
    └── StoreError                       the storage layer cannot be opened or migrated

Messages are fixed templates: they name the kind, the rule or the role, never the value
that was refused, so an error can go to a log or an error tracker as it is.
"""

from __future__ import annotations

import re

__all__ = [
    "ConsentRequired",
    "DecryptionError",
    "InsecureKeyFile",
    "InvalidPII",
    "KeyDestroyed",
    "KeyNotFound",
    "KeyProviderError",
    "PiiGuardError",
    "PolicyViolation",
    "StoreError",
    "TokenExpired",
    "TokenNotFound",
    "UnknownKind",
    "UnknownNotice",
    "UnknownPurpose",
    "UnknownRole",
    "WrappedKeyInvalid",
]


_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _printable_name(name: object) -> str:
    """Echo a caller's kind or role name only when it looks like one.

    Arguments passed in the wrong order (``mask("phone", "13812345678")``) must not put the
    value into the error message.
    """
    if isinstance(name, str) and _NAME.fullmatch(name):
        return repr(name)
    return "<not a valid name>"


class PiiGuardError(Exception):
    """Base class of every error piiguard raises on purpose."""


class InvalidPII(PiiGuardError, ValueError):
    """A value is not a valid value of its PII kind.

    Attributes:
        kind: the PII kind that was checked, e.g. ``"cn_resident_id"``.
        code: a stable, machine-readable reason, e.g. ``"checksum"``.
    """

    def __init__(self, kind: str, code: str, message: str) -> None:
        super().__init__(f"invalid {kind}: {message}")
        self.kind = kind
        self.code = code
        self.message = message


class UnknownKind(PiiGuardError, LookupError):
    """No PII kind of that name is registered."""

    def __init__(self, kind: object) -> None:
        super().__init__(f"unknown PII kind {_printable_name(kind)}")


class PolicyViolation(PiiGuardError):
    """A masking rule or policy is misused (a rule built with bad parameters, say)."""


class UnknownRole(PolicyViolation, LookupError):
    """A MaskingPolicy has no rules for the role asked for (least privilege: no fallback)."""

    def __init__(self, role: object) -> None:
        super().__init__(f"masking policy has no rules for role {_printable_name(role)}")


class DecryptionError(PiiGuardError):
    """A ciphertext does not open: tampered, moved to another context, or under a wrong key.

    Deliberately one error with one message for every cause, so that no answer tells an
    attacker which byte or which check failed.
    """

    def __init__(self, message: str = "the ciphertext cannot be decrypted in this context") -> None:
        super().__init__(message)


class KeyDestroyed(DecryptionError):
    """The data key of this ciphertext was destroyed (its subject was erased)."""

    def __init__(self) -> None:
        super().__init__("the data key of this ciphertext was destroyed")


class KeyNotFound(PiiGuardError, LookupError):
    """No key with this id is known."""

    def __init__(self, key_id: object) -> None:
        shown = key_id if isinstance(key_id, int) else _printable_name(key_id)
        super().__init__(f"no key with id {shown}")
        self.key_id = key_id


class KeyProviderError(PiiGuardError):
    """A key-encryption key refused or failed to wrap or unwrap a data key."""


class WrappedKeyInvalid(KeyProviderError):
    """A wrapped key does not authenticate under the key meant to open it: the row is
    damaged (or moved), not the provider unavailable. Epoch advances and KEK rotations report
    such rows and go on; any other KeyProviderError (an outage, a throttle) stops them."""


class InsecureKeyFile(PiiGuardError):
    """A key file is readable or writable by group or others (it must be mode 0600)."""


class StoreError(PiiGuardError):
    """The storage layer cannot be opened, or its schema is newer than this piiguard."""


class TokenNotFound(PiiGuardError, LookupError):
    """No vault entry for this token: never issued, or deleted with its subject."""

    def __init__(self) -> None:
        super().__init__("no vault entry for this token")


class TokenExpired(TokenNotFound):
    """The vault entry's time to live has passed."""

    def __init__(self) -> None:
        PiiGuardError.__init__(self, "the vault entry for this token has expired")


class ConsentRequired(PiiGuardError, PermissionError):
    """The subject has not (or no longer) consented to every purpose the call needs.

    Attributes:
        missing: the purposes without valid consent, sorted.
    """

    def __init__(self, missing: frozenset[str] | set[str]) -> None:
        self.missing = tuple(sorted(missing))
        super().__init__(f"consent required for: {', '.join(self.missing)}")


class UnknownPurpose(PiiGuardError, LookupError):
    """No purpose of this name is registered."""

    def __init__(self, purpose: object) -> None:
        super().__init__(f"unknown purpose {_printable_name(purpose)}")


class UnknownNotice(PiiGuardError, LookupError):
    """A grant names a notice version that was never published."""

    def __init__(self, version: object) -> None:
        super().__init__(
            f"notice {_printable_name(version)} is not published: publish it first "
            "(guard.consent.publish_notice)"
        )
