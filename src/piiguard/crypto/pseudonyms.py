"""The subject pseudonymizer: one keyed name per data subject, which every part uses.

The key table, the vault, the consent ledger, retention and receipts name a subject only by
``subject:`` + the first 40 hex digits of an HMAC of its id under the ``pseudonym`` root key,
so no table names anyone and the same subject has the same name everywhere.
"""

from __future__ import annotations

import functools
import hmac as hmac_module
from collections.abc import Callable

from piiguard.crypto.hazmat.mac import hmac_digest
from piiguard.crypto.roots import RootKeys
from piiguard.crypto.suites import Suite
from piiguard.errors import InvalidArgument, require_subject

try:  # CPython's OpenSSL binding: what hmac.digest calls for a named digest
    from _hashlib import hmac_digest as _one_shot_hmac
except ImportError:  # pragma: no cover - a Python without OpenSSL's one-shot HMAC
    _one_shot_hmac = hmac_module.digest  # type: ignore[assignment]

__all__ = ["Pseudonymizer"]


class Pseudonymizer:
    """Subject id -> scope name, cached for the ids seen most recently."""

    def __init__(self, roots: RootKeys, suite: Suite) -> None:
        self._roots = roots
        self._suite = suite
        self._scopes: dict[str, str] = {}

    def subject_scope(self, subject: str) -> str:
        """The scope of a data subject: a keyed pseudonym, so the key table names no one."""
        scope = self._scopes.get(subject)
        if scope is None:
            refused = require_subject(subject)
            if isinstance(refused, InvalidArgument):
                del subject
                raise refused
            _, root = self._roots.root_key("pseudonym")
            scope = (
                "subject:"
                + hmac_digest(
                    self._suite.mac, root, subject.encode("utf-8", "surrogatepass")
                ).hex()[:40]
            )
            if len(self._scopes) >= 65536:
                self._scopes.clear()
            self._scopes[subject] = scope
        return scope

    def subject_scope_function(self) -> Callable[[str], str]:
        """The same mapping as :meth:`subject_scope`, uncached and with the key bound once:
        for streaming millions of distinct subjects (campaign filters)."""
        _, root = self._roots.root_key(
            "pseudonym"
        )  # SecretBytes: a frame holding it shows no bytes
        mac = self._suite.mac
        if mac == "sha256":
            # OpenSSL's one-shot HMAC, without hmac.digest's Python-level dispatch (a tenth of
            # the time per subject over millions); the same function hmac.digest calls
            digest = functools.partial(_one_shot_hmac, root)
            return lambda subject: (
                "subject:" + digest(subject.encode("utf-8", "surrogatepass"), "sha256").hex()[:40]
            )
        keyed = functools.partial(hmac_digest, mac, root)
        return lambda subject: (
            "subject:" + keyed(subject.encode("utf-8", "surrogatepass")).hex()[:40]
        )
