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

from piiguard.crypto.hazmat.mac import hmac_digest
from piiguard.keys.secret import SecretBytes

_BLOCK = 64  # SHA-256's block size, which HMAC pads its key to (RFC 2104)

__all__ = ["Mac"]


class Mac:
    """HMAC under one key, identified by the id of the root key it derives from."""

    __slots__ = ("_digest", "_inner", "_outer", "key_id")

    def __init__(self, key_id: int, algorithm: str, key: SecretBytes) -> None:
        self.key_id = key_id
        self._digest: Callable[[bytes], bytes] = functools.partial(hmac_digest, algorithm, key)
        self._inner: Any = None
        self._outer: Any = None
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

    def __repr__(self) -> str:
        return f"Mac(key_id={self.key_id}, <redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a key handle cannot be pickled")
