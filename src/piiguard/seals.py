"""What vouches for a record piiguard keeps in the store (a grant, a recipient, an impact
assessment): a MAC of its values under a key the KEK wraps, so whoever can write the database
but cannot use the KEK can neither forge a record nor change one.

The one encoding every sealed record and every audit chain link uses: length-prefixed values,
None distinct from the empty string, so no two records encode alike.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from typing import Protocol

__all__ = ["Digest", "Names", "Sealing", "encode", "seal", "sealed"]

_SEAL_DOMAIN = b"piiguard-record-seal-v1"
_NONE = b"\xff\xff\xff\xff"


class Names(Protocol):
    """A keyed hash handle (the keyring's ``KeyedHash``): names many values fast."""

    def names(
        self, prefix: bytes, texts: Sequence[str] | Sequence[bytes], *, chars: int, tag: str = ""
    ) -> list[str]:
        """``tag`` and the digest's first ``chars`` hex characters, per text."""


class Sealing(Protocol):
    """An AEAD handle (the keyring's ``Sealer``): seals and opens, never shows its key."""

    key_id: int

    def seal(self, data: bytes, aad: bytes) -> bytes:
        """A fresh nonce and the ciphertext of ``data`` bound to ``aad``."""

    def open(self, sealed: bytes, aad: bytes) -> bytes | None:
        """What :meth:`seal` sealed, or None."""


class Digest(Protocol):
    """A keyed MAC handle (the keyring's ``Mac``): computes, never shows its key."""

    def digest(self, data: bytes) -> bytes:
        """The MAC of ``data``."""

    def digest_many(self, items: Sequence[bytes]) -> list[bytes]:
        """The MAC of each of ``items``."""

    def keyed_hash(self) -> Names | None:
        """A faster keyed hash under a key derived from this one, where the suite has one."""


def encode(value: object) -> bytes:
    """One value, length-prefixed (None as a length no value has)."""
    if value is None:
        return _NONE
    data = str(value).encode("utf-8", "surrogatepass")
    return len(data).to_bytes(4, "big") + data


def seal(mac: Digest, kind: str, values: Iterable[object]) -> bytes:
    """What vouches for a stored record of ``kind``: the MAC of its values."""
    return mac.digest(_SEAL_DOMAIN + encode(kind) + b"".join(encode(v) for v in values))


def sealed(mac: Digest, kind: str, values: Iterable[object], stored: object) -> bool:
    """Whether ``stored`` is the seal of these values (compared in constant time); a
    missing seal is not one."""
    if not isinstance(stored, bytes | bytearray | memoryview):
        return False
    return hmac.compare_digest(seal(mac, kind, values), bytes(stored))
