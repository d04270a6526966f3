"""Bound primitives: what the keyring hands out instead of key bytes (Tink's keyset handles).

A :class:`Mac` computes a keyed digest under one key it never shows: no ``repr`` of it, no
attribute and no pickle gives the key, so parts outside :mod:`piiguard.crypto` and
:mod:`piiguard.keys` never hold key bytes in a local an error tracker could record.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from piiguard.crypto.hazmat.mac import hmac_digest
from piiguard.keys.secret import SecretBytes

try:  # OpenSSL's HMAC object: its keyed state is copied per message, not set up again
    from _hashlib import hmac_new as _hmac_new
except ImportError:  # pragma: no cover - a Python without OpenSSL's HMAC
    _hmac_new = None  # type: ignore[assignment]

__all__ = ["Mac"]


class Mac:
    """HMAC under one key, identified by the id of the root key it derives from."""

    __slots__ = ("_digest", "_keyed", "key_id")

    def __init__(self, key_id: int, algorithm: str, key: SecretBytes) -> None:
        self.key_id = key_id
        self._digest: Callable[[bytes], bytes]
        self._keyed: Any = None
        if algorithm == "sha256" and _hmac_new is not None:
            # the key's inner and outer states, set up once: a copy per message costs half
            # of a fresh HMAC (which hashes the padded key twice every time)
            self._keyed = _hmac_new(bytes(key), digestmod="sha256")
        self._digest = functools.partial(hmac_digest, algorithm, key)

    def digest(self, data: bytes) -> bytes:
        """The full-length MAC of ``data``."""
        keyed = self._keyed
        if keyed is None:
            return self._digest(data)
        one = keyed.copy()
        one.update(data)
        return bytes(one.digest())

    def digest_many(self, items: Sequence[bytes]) -> list[bytes]:
        """The MAC of each of ``items`` (a batch: no call of ours per item)."""
        keyed = self._keyed
        if keyed is None:
            return [self._digest(item) for item in items]
        out = []
        for item in items:
            one = keyed.copy()
            one.update(item)
            out.append(bytes(one.digest()))
        return out

    def __repr__(self) -> str:
        return f"Mac(key_id={self.key_id}, <redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a key handle cannot be pickled")
