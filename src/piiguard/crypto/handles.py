"""Bound primitives: what the keyring hands out instead of key bytes (Tink's keyset handles).

A :class:`Mac` computes a keyed digest under one key it never shows: no ``repr`` of it, no
attribute and no pickle gives the key, so parts outside :mod:`piiguard.crypto` and
:mod:`piiguard.keys` never hold key bytes in a local an error tracker could record.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from cryptography.exceptions import InvalidTag

from piiguard.crypto._nonces import random_nonce
from piiguard.crypto.hazmat.aead import Aead
from piiguard.crypto.hazmat.mac import hmac_digest
from piiguard.crypto.wire import NONCE_SIZE
from piiguard.keys.secret import SecretBytes

_BLOCK = 64  # SHA-256's block size, which HMAC pads its key to (RFC 2104)

#: What the keyed BLAKE2s key of a :class:`Mac` is derived from (HMAC of this label under the
#: MAC's key). No other input of the MAC's is this: every context digest holds a 0 byte.
_KEYED_HASH_LABEL = b"piiguard keyed hash/blake2s-256"

__all__ = ["KeyedHash", "Mac", "Sealer"]


class Sealer:
    """An AEAD under one key it never shows, named by the id of the root key it derives
    from: for what piiguard keeps in its own tables and reads back only itself (a batch's
    row ids in the audit log)."""

    __slots__ = ("_aead", "key_id")

    def __init__(self, key_id: int, aead: Aead) -> None:
        self.key_id = key_id
        self._aead = aead

    def seal(self, data: bytes, aad: bytes) -> bytes:
        """A fresh nonce and the ciphertext of ``data`` bound to ``aad``."""
        nonce = random_nonce()
        return nonce + self._aead.encrypt(nonce, data, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes | None:
        """What :meth:`seal` sealed, or None when ``sealed`` was not sealed so."""
        try:
            return self._aead.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], aad)
        except (InvalidTag, ValueError):
            return None

    def __repr__(self) -> str:
        return f"Sealer(key_id={self.key_id}, <redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a key handle cannot be pickled")


class KeyedHash:
    """Keyed BLAKE2s-256 (RFC 7693) under one key it never shows: a keyed digest of many
    short items at under half the cost of HMAC-SHA256 per item (the key is absorbed once;
    an item costs one copy of that state)."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        self._keyed = hashlib.blake2s(key=key)

    def names(
        self, prefix: bytes, texts: Sequence[str] | Sequence[bytes], *, chars: int, tag: str = ""
    ) -> list[str]:
        """``tag`` and the first ``chars`` hex characters of the digest of ``prefix`` and
        each text (UTF-8, lone surrogates kept): the prefix absorbed once for all."""
        out = []
        start = self._keyed.copy()
        start.update(prefix)
        new = start.copy
        for text in texts:
            state = new()
            state.update(text if type(text) is bytes else text.encode("utf-8", "surrogatepass"))  # type: ignore[union-attr]
            out.append(tag + state.hexdigest()[:chars])
        return out

    def __repr__(self) -> str:
        return "KeyedHash(<redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a key handle cannot be pickled")


class Mac:
    """HMAC under one key, identified by the id of the root key it derives from."""

    __slots__ = ("_digest", "_inner", "_keyed", "_outer", "key_id")

    def __init__(self, key_id: int, algorithm: str, key: SecretBytes) -> None:
        self.key_id = key_id
        self._digest: Callable[[bytes], bytes] = functools.partial(hmac_digest, algorithm, key)
        self._inner: Any = None
        self._outer: Any = None
        self._keyed: KeyedHash | None = None
        if algorithm == "sha256":
            # HMAC's inner and outer hash states after the padded key (RFC 2104), set up
            # once: a message then costs two state copies and its own blocks, where a fresh
            # HMAC (or a copy of OpenSSL's HMAC object) costs about twice that
            padded = bytes(key) if len(key) <= _BLOCK else hashlib.sha256(bytes(key)).digest()
            padded = padded.ljust(_BLOCK, b"\x00")
            self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in padded))
            self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in padded))
            del padded

    def digest(self, data: bytes) -> bytes:
        """The full-length MAC of ``data``."""
        if self._inner is None:
            return self._digest(data)
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()  # type: ignore[no-any-return]

    def digest_many(self, items: Sequence[bytes]) -> list[bytes]:
        """The MAC of each of ``items`` (a batch: no call of ours per item)."""
        if self._inner is None:
            return [self._digest(item) for item in items]
        out = []
        new_inner, new_outer = self._inner.copy, self._outer.copy
        for item in items:
            inner = new_inner()
            inner.update(item)
            outer = new_outer()
            outer.update(inner.digest())
            out.append(outer.digest())
        return out

    def keyed_hash(self) -> KeyedHash | None:
        """A :class:`KeyedHash` under a key derived from this MAC's, for naming many values
        fast; None for an HMAC-SM3 key (whoever chose the SM suite keeps to SM algorithms)."""
        if self._inner is None:
            return None
        if self._keyed is None:
            self._keyed = KeyedHash(self.digest(_KEYED_HASH_LABEL))
        return self._keyed

    def __repr__(self) -> str:
        return f"Mac(key_id={self.key_id}, <redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a key handle cannot be pickled")
