"""The wire format of piiguard ciphertexts (see docs/wire-format.md).

    byte 0       format version (high 4 bits, now 1) | suite code (low 4 bits)
    bytes 1-4    key id, unsigned 32-bit big-endian
    then         randomized:    nonce (12 bytes) | ciphertext | tag (16 bytes)
                 deterministic: synthetic IV (16 bytes) | ciphertext

The text form is the same bytes in URL-safe base64 without padding: an 11-character phone
becomes 59 characters (48 of overhead; the AWS Encryption SDK adds 258+ bytes, Tink 33).
Deterministic ciphertexts use suite codes with the high bit set (9 for AES-256-SIV).
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

__all__ = [
    "DETERMINISTIC_FLAG",
    "HEADER_SIZE",
    "NONCE_SIZE",
    "VERSION",
    "Header",
    "from_text",
    "pack_header",
    "to_text",
    "unpack_header",
]

VERSION = 1
HEADER_SIZE = 5
NONCE_SIZE = 12
DETERMINISTIC_FLAG = 0x8
_HEADER = struct.Struct(">BI")


@dataclass(frozen=True, slots=True)
class Header:
    """The self-describing prefix of a ciphertext."""

    version: int
    suite_code: int
    key_id: int


def pack_header(suite_code: int, key_id: int) -> bytes:
    """The 5 header bytes for a suite code and key id."""
    return _HEADER.pack((VERSION << 4) | suite_code, key_id)


def unpack_header(blob: bytes) -> Header | None:
    """The header of a ciphertext, or None when there is none to read."""
    if len(blob) < HEADER_SIZE:
        return None
    first, key_id = _HEADER.unpack_from(blob)
    return Header(first >> 4, first & 0x0F, key_id)


_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def to_text(blob: bytes) -> str:
    """URL-safe base64 without padding: safe in TEXT columns, URLs and JSON."""
    return binascii.b2a_base64(blob, newline=False).translate(_URL_SAFE).rstrip(b"=").decode()


def from_text(text: str) -> bytes | None:
    """The bytes of a text ciphertext, or None unless it is canonical URL-safe base64.

    ``urlsafe_b64decode`` alone drops characters outside the alphabet, accepts ``+`` and
    ``/`` for ``-`` and ``_``, and ignores the unused bits of the last character: each would
    let a changed text decrypt. Only the one text that encodes these bytes is accepted.
    """
    if not text.isascii():
        return None
    try:
        blob = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return blob if to_text(blob) == text else None
