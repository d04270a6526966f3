"""The one exception tree of piiguard.

Every error piiguard raises on purpose derives from :class:`PiiGuardError`, so an
application can catch the whole family with one ``except``::

    PiiGuardError
    ├── InvalidPII (ValueError)          a value is not a valid value of its kind
    ├── UnknownKind (LookupError)        no PII kind of that name is registered
    ├── PolicyViolation                  a masking policy or rule is misused
    │   ├── UnknownRole (LookupError)    a MaskingPolicy has no rules for that role
    │   └── ShareRefused                 a share breaks a recipient's terms or lacks consent
    ├── DecryptionError                  a ciphertext does not open: one error for every cause
    │   └── KeyDestroyed                 its data key was shredded (erasure)
    ├── KeyNotFound (LookupError)        no key with that id is known to the keyring or store
    ├── ConsentRequired (PermissionError)  a subject lacks consent: names the missing purposes
    ├── AccessDenied (PermissionError)   a reveal without an actor, or not for a registered
    │                                    purpose that covers the kind: nothing was revealed
    ├── UnknownPurpose (LookupError)     no purpose of that name is registered
    ├── TokenNotFound (LookupError)      no vault entry for that token (or it was deleted)
    │   └── TokenExpired                 the vault entry's time to live has passed
    ├── UnknownNotice (LookupError)      a grant names a notice version never published
    ├── KeyProviderError                 a KEK (file, HSM, KMS) refused or failed to wrap/unwrap
    │   └── WrappedKeyInvalid            a wrapped key does not authenticate: a damaged row
    ├── InsecureKeyFile                  a local key file is readable by group or others
    ├── InvalidArgument (ValueError, TypeError)  a bad argument: wrong type, empty, too long,
    │                                    not valid Unicode, a NUL PostgreSQL cannot store
    ├── EventNotRecorded                 the event sink failed: the reveal did not happen
    ├── AuditLogBroken                   the audit log does not verify: nothing pruned or signed
    └── StoreError                       the store cannot be opened, read or written: ``reason``
        └── StoreBusy                    another connection held a lock past the busy timeout

Programming errors made while *building* configuration objects are the built-in ``TypeError``
and ``ValueError``, raised before any data is touched, and are not part of the tree:
``PIIKind(...)``, ``Purpose(...)``, ``RetentionPolicy(...)``, ``MaskingPolicy(...)`` and the
masking rules' parameters, ``PIIModel`` subclasses that turn off its settings, decorators given
no purpose or a missing parameter, and pickling a key holder. Everything a call meets at run time
is a :class:`PiiGuardError`: the public calls translate foreign errors at their boundary, and hand
back errors without the frames below them (which hold the caller's values).

Messages are fixed templates: they name the kind, the rule or the role, never the value
that was refused, so an error can go to a log or an error tracker as it is.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "AccessDenied",
    "AuditLogBroken",
    "ConsentRequired",
    "DecryptionError",
    "EventNotRecorded",
    "InsecureKeyFile",
    "InvalidArgument",
    "InvalidPII",
    "KeyDestroyed",
    "KeyNotFound",
    "KeyProviderError",
    "PiiGuardError",
    "PolicyViolation",
    "ShareRefused",
    "StoreBusy",
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
    """Base class of every error piiguard raises on purpose.

    Every one pickles to itself (message and attributes), whatever its ``__init__`` takes: a
    worker process's error must reach the parent (``multiprocessing`` hangs on an error it
    cannot rebuild).
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(kind: type[PiiGuardError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = kind.__new__(kind, *args)  # BaseException.__new__ keeps args; no __init__ runs
    error.args = args
    error.__dict__.update(state)
    return error


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


class ShareRefused(PolicyViolation):
    """A share was refused and nothing left the shop: the recipient is not registered, may
    not receive data for the purpose, its assessment or contract has expired, or the subject
    has not given the consent the share needs (PIPL Art. 23, 39).

    Attributes:
        reason: ``unknown_recipient``, ``purpose_not_allowed``, ``assessment_expired``,
            ``contract_expired``, ``consent_required``, ``not_separate``,
            ``cross_border_consent``, ``no_assessment``, ``field_refused`` (a field the
            terms name holds a nested record, or personal information of no declared kind).
        missing: for ``consent_required`` and ``cross_border_consent``, the purposes whose
            consent is missing.
    """

    def __init__(self, reason: str, message: str, missing: tuple[str, ...] = ()) -> None:
        self.reason = reason
        self.missing = missing
        super().__init__(message)


class DecryptionError(PiiGuardError):
    """A ciphertext does not open: tampered, moved to another context, or under a wrong key.

    Deliberately one error with one message for every cause, so that no answer tells an
    attacker which byte or which check failed.
    """

    def __init__(self, message: str = "the ciphertext cannot be decrypted in this context") -> None:
        super().__init__(message)


class ContextMismatch(DecryptionError):
    """The ciphertext was bound to a context with other keys than the ones given (a wrong
    field or table name, a key missing or extra): a mistake in the calling code rather than
    tampering. Told apart by a fingerprint of the context's keys in the ciphertext's header
    (format version 2), which names only schema names, never a value; a ciphertext whose
    keys match and still does not open is a plain :class:`DecryptionError`."""

    def __init__(self) -> None:
        super().__init__(
            "the ciphertext was bound to a context with other keys (a wrong field or table "
            "name?), or its header was altered"
        )


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


class WrongKEK(KeyProviderError):
    """The KEK (or epoch-key holder) a Guard was opened with does not open the store's keys:
    another instance's key file, a KEK rotated away, or a holder left out. Raised by
    ``Guard.open`` at start-up, before any request, and never for a damaged row alone."""


class InsecureKeyFile(PiiGuardError):
    """A key file is readable or writable by group or others (it must be mode 0600)."""


class StoreError(PiiGuardError):
    """The store cannot be opened, read or written, or its schema is newer than this piiguard.

    Attributes:
        reason: a stable, machine-readable cause: ``refused`` (nothing listens),
            ``authentication`` (credentials refused), ``missing_database``, ``corrupted`` (the
            file or a row is not what piiguard wrote), ``cannot_open`` (a file that cannot be
            opened), ``busy`` (see :class:`StoreBusy`), ``newer_schema``, ``unavailable``
            (any other failure of the database), ``conflict`` (a concurrent write won a
            unique key; retrying is safe), ``unusable_url`` (a URL that cannot be read
            or whose driver is not installed), ``closed`` (a call after
            ``guard.close()``). Messages never hold credentials or SQL parameters.
    """

    def __init__(self, message: str, reason: str = "unavailable") -> None:
        super().__init__(message)
        self.reason = reason


class StoreBusy(StoreError):
    """Another connection held a lock past the busy timeout (SQLite's "database is locked"),
    or a write would wait on a lock the caller's own bound transaction holds."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "the store stayed locked by another connection past the busy timeout (if it "
            "is the application's own transaction on the same SQLite file, bind piiguard to "
            "it with guard.bind)",
            "busy",
        )


class InvalidArgument(PiiGuardError, ValueError, TypeError):
    """A call got an argument it cannot take: the wrong type, empty, too long, not valid
    Unicode, a NUL PostgreSQL cannot store. Also a ``ValueError`` and a ``TypeError``, so code
    that caught the built-in errors keeps working. The message names the argument, never its
    value."""


class EventNotRecorded(PiiGuardError):
    """The event sink failed to record a reveal, so nothing was revealed (fail closed)."""

    def __init__(self, cause: BaseException) -> None:
        # piiguard's own errors say nothing of values: their message helps; others' may not
        why = f": {cause}" if isinstance(cause, PiiGuardError) else ""
        super().__init__(
            f"the event sink failed ({type(cause).__name__}{why}): nothing was revealed"
        )


class AuditLogBroken(PiiGuardError):
    """The audit log does not verify where an operation needs it to (a prune, a
    checkpoint): nothing was deleted or signed, so the damage stays for
    ``guard.audit.verify()`` to report.

    Attributes:
        first_bad: the sequence number of the first event that does not verify.
        reason: what is wrong there, in words (never a value).
    """

    def __init__(self, first_bad: int | None, reason: str | None) -> None:
        self.first_bad = first_bad
        self.reason = reason
        super().__init__(
            f"the audit log does not verify at event {first_bad} ({reason}): "
            "nothing was pruned or signed"
        )


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


class AccessDenied(PiiGuardError, PermissionError):
    """A reveal was refused, so nothing was revealed: it named no actor, or no purpose, or a
    purpose that is not registered or does not cover the kind revealed.

    Attributes:
        reason: ``no_actor``, ``no_purpose``, ``unknown_purpose`` or ``kind_not_covered``
            (later parts add their own), never a value.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)

    @classmethod
    def unknown_purpose(cls, purpose: object) -> AccessDenied:
        """The purpose named is not registered (named only if it looks like a name)."""
        return cls(
            "unknown_purpose",
            f"purpose {_printable_name(purpose)} is not a registered processing purpose: "
            "register it with guard.consent.register(pg.Purpose(...)) first",
        )

    @classmethod
    def kind_not_covered(cls, purpose: object, kind: object) -> AccessDenied:
        """The purpose does not cover the kind revealed."""
        return cls(
            "kind_not_covered",
            f"purpose {_printable_name(purpose)} does not cover the kind {_printable_name(kind)}",
        )


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


def require_subject(subject: object) -> str | InvalidArgument:
    """The one subject check: a data subject is a non-empty ``str``, exactly (a subclass could
    name someone else in its ``__str__``). Returns the error rather than raising it, so the
    caller drops the value from its frame first."""
    if type(subject) is str and subject:
        return subject
    return InvalidArgument("subject is a non-empty str")


P = ParamSpec("P")
R = TypeVar("R")


def contract_error(error: Exception) -> Exception:
    """``error`` as the tree has it, without the frames below (they hold the caller's values).

    A PiiGuardError is kept (its context dropped; an explicit cause kept, except under store
    and argument errors, whose causes are the drivers' errors); a foreign error
    that says an argument was wrong becomes :class:`InvalidArgument` naming only its type (its
    message could carry the value). Anything else is the application's own (a hook, a holder,
    an exporter that failed) and is handed back as it is, without the frames below."""
    if isinstance(error, PiiGuardError):
        error.__context__ = None
        if isinstance(error, StoreError | InvalidArgument):
            error.__cause__ = None  # the driver's error it came from holds the SQL parameters
        return error.with_traceback(None)
    if isinstance(error, UnicodeError):
        return InvalidArgument("a text is not valid Unicode (it holds a lone surrogate)")
    if isinstance(error, ValueError | TypeError | OverflowError | AttributeError):
        return InvalidArgument(f"an argument has the wrong type or value ({type(error).__name__})")
    error.__context__ = None
    return error.with_traceback(None)


def boundary(function: Callable[P, R]) -> Callable[P, R]:
    """Make ``function`` a public boundary: every error it lets out is in the tree and holds
    no frame below this one (error trackers record every frame's locals)."""
    if inspect.isgeneratorfunction(function):
        return _generator_boundary(function)  # type: ignore[return-value]

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except Exception as error:
            failure = _binding_error(function, error) or contract_error(error)
        del args, kwargs
        raise failure

    return call


def _binding_error(function: Callable[..., Any], error: Exception) -> InvalidArgument | None:
    """A call that did not match the signature (a missing or unknown argument) failed in the
    boundary's own frame: reported as :func:`binding_error` says."""
    traceback = error.__traceback__
    if type(error) is TypeError and traceback is not None and traceback.tb_next is None:
        return binding_error(function, error)
    return None


def binding_error(function: Callable[..., Any], error: TypeError) -> InvalidArgument:
    """The error for a call that does not fit ``function``'s signature. Python's message names
    parameters, and for an unexpected keyword the caller's keyword, which could be anything
    (a value used as a key): the message is kept only when every name it quotes is one of the
    function's parameters."""
    message = str(error)
    parameters = inspect.signature(function, follow_wrapped=False).parameters
    if all(name in parameters for name in re.findall(r"'([^']*)'", message)):
        name = function.__qualname__
        return InvalidArgument(message if message.startswith(name) else f"{name}(): {message}")
    return InvalidArgument(f"{function.__qualname__}() got an argument it does not take")


def _generator_boundary(function: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Iterator[Any]:
        iterator = function(*args, **kwargs)
        del args, kwargs
        try:
            yield from iterator
        except Exception as error:
            failure = contract_error(error)
        else:
            return
        del iterator
        raise failure

    return call
