"""Bound primitives: what the keyring hands out instead of key bytes (Tink's keyset handles).

A :class:`Mac` computes a keyed digest under one key it never shows: no ``repr`` of it, no
attribute and no pickle gives the key, so parts outside :mod:`piiguard.crypto` and
:mod:`piiguard.keys` never hold key bytes in a local an error tracker could record.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import NoReturn

from piiguard.crypto.hazmat.mac import hmac_digest
from piiguard.keys.secret import SecretBytes

__all__ = ["Mac"]


class Mac:
    """HMAC under one key, identified by the id of the root key it derives from."""

    __slots__ = ("_digest", "key_id")

    def __init__(self, key_id: int, algorithm: str, key: SecretBytes) -> None:
        self.key_id = key_id
        self._digest: Callable[[bytes], bytes]
        if algorithm == "sha256":  # hmac.digest: one C call, no frame of ours between
            self._digest = functools.partial(hmac.digest, key, digest="sha256")
        else:
            self._digest = functools.partial(hmac_digest, algorithm, key)

    def digest(self, data: bytes) -> bytes:
        """The full-length MAC of ``data``."""
        return self._digest(data)

    def __repr__(self) -> str:
        return f"Mac(key_id={self.key_id}, <redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a key handle cannot be pickled")
