"""Crypto suites: every algorithm choice, made once, named, and versioned in the wire format.

A suite fixes the AEAD, its key size, the MAC of blind indexes and the deterministic
construction. Callers pick a suite by name (``"aes256gcm"`` or ``"sm4gcm"``), never a mode,
a nonce or a key size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from piiguard.crypto.hazmat.aead import Aead, Sm4Gcm
from piiguard.errors import InvalidArgument

__all__ = ["SUITES", "Suite", "get_suite"]


@dataclass(frozen=True, slots=True)
class Suite:
    """One set of algorithms.

    Attributes:
        name: how applications name it.
        code: its 4-bit number in the wire format (1-15).
        dek_size: bytes of a data key (the AEAD key).
        mac: the HMAC hash of blind indexes and key derivation (``sha256`` or ``sm3``).
        aead: builds the AEAD of a data key.
    """

    name: str
    code: int
    dek_size: int
    mac: str
    aead: Callable[[bytes], Aead]


#: The suites piiguard ships. Codes are part of the wire format: never reuse one.
SUITES: Mapping[str, Suite] = MappingProxyType(
    {
        # cryptography's AESGCM already has the Aead shape: no wrapper on the hot path
        "aes256gcm": Suite("aes256gcm", 1, 32, "sha256", AESGCM),
        "sm4gcm": Suite("sm4gcm", 2, 16, "sm3", Sm4Gcm),
    }
)


def get_suite(name: str) -> Suite:
    """Return the suite of that name.

    Raises:
        ValueError: no such suite.
    """
    suite = SUITES.get(name)
    if suite is None:
        raise InvalidArgument(f"unknown suite; choose one of {sorted(SUITES)}")
    return suite
