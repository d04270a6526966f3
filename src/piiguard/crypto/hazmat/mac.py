"""HAZARDOUS: HMAC and HKDF with caller-chosen keys. Use piiguard.Guard instead."""

from __future__ import annotations

import hmac as _stdlib_hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["hkdf", "hmac_digest", "hmac_verify"]

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha256": hashes.SHA256, "sm3": hashes.SM3}


def hmac_digest(algorithm: str, key: bytes, data: bytes) -> bytes:
    """HMAC of ``data`` with SHA-256 or SM3 (32 bytes either way)."""
    if algorithm == "sha256":  # the stdlib's C HMAC is several times faster per call
        return _stdlib_hmac.digest(key, data, "sha256")
    mac = _hmac.HMAC(key, _HASHES[algorithm]())
    mac.update(data)
    return mac.finalize()


def hmac_verify(algorithm: str, key: bytes, data: bytes, tag: bytes) -> bool:
    """Whether ``tag`` (possibly truncated, at least 10 bytes) is the HMAC of ``data``.

    Compared with ``hmac.compare_digest``, never ``==``.
    """
    if len(tag) < 10:
        return False
    return _stdlib_hmac.compare_digest(hmac_digest(algorithm, key, data)[: len(tag)], tag)


def hkdf(algorithm: str, key: bytes, label: bytes, length: int) -> bytes:
    """HKDF (RFC 5869) with no salt and ``label`` as info: one key per purpose."""
    return HKDF(_HASHES[algorithm](), length, salt=None, info=label).derive(key)
