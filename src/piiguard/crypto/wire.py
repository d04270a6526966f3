"""The wire format of piiguard ciphertexts (see docs/wire-format.md).

    byte 0       format version (high 4 bits) | suite code (low 4 bits)
    bytes 1-4    key id, unsigned 32-bit big-endian
    version 2    bytes 5-6: fingerprint of the context's keys (not its values)
    then         randomized:    nonce (12 bytes) | ciphertext | tag (16 bytes)
                 deterministic: synthetic IV (16 bytes) | ciphertext

Randomised ciphertexts are written in version 2; version 1 (no fingerprint) is still read.
Deterministic ciphertexts stay version 1: the same value must keep giving the same text.
The fingerprint lets a context with other keys (a wrong field name) be reported as such,
apart from tampering; it is bound as part of the header like the rest.

The text form is the same bytes in URL-safe base64 without padding: an 11-character phone
becomes 62 characters (51 of overhead; the AWS Encryption SDK adds 258+ bytes, Tink 33).
Deterministic ciphertexts use suite codes with the high bit set (9 for AES-256-SIV).
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DETERMINISTIC_FLAG",
    "HEADER_SIZE",
    "NONCE_SIZE",
    "V1_HEADER_SIZE",
    "VERSION",
    "Header",
    "from_text",
    "from_texts",
    "pack_header",
    "to_text",
    "unpack_header",
]

#: The version randomised ciphertexts are written in.
VERSION = 2
#: The header of a version-2 ciphertext; version 1 (and every deterministic one) has 5 bytes.
HEADER_SIZE = 7
V1_HEADER_SIZE = 5
NONCE_SIZE = 12
DETERMINISTIC_FLAG = 0x8
_HEADER = struct.Struct(">BI")


@dataclass(frozen=True, slots=True)
class Header:
    """The self-describing prefix of a ciphertext."""

    version: int
    suite_code: int
    key_id: int
    keys: bytes | None = None  # version 2: the fingerprint of the context's keys


def pack_header(suite_code: int, key_id: int, keys: bytes | None = None) -> bytes:
    """The header for a suite code and key id: version 2 with the context keys'
    fingerprint (2 bytes) when given, else version 1 (deterministic ciphertexts)."""
    if keys is None:
        return _HEADER.pack((1 << 4) | suite_code, key_id)
    return _HEADER.pack((VERSION << 4) | suite_code, key_id) + keys


def unpack_header(blob: bytes) -> Header | None:
    """The header of a ciphertext, or None when there is none to read."""
    if len(blob) < V1_HEADER_SIZE:
        return None
    first, key_id = _HEADER.unpack_from(blob)
    version = first >> 4
    if version == VERSION:
        if len(blob) < HEADER_SIZE:
            return None
        return Header(version, first & 0x0F, key_id, bytes(blob[V1_HEADER_SIZE:HEADER_SIZE]))
    return Header(version, first & 0x0F, key_id)


_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def to_text(blob: bytes) -> str:
    """URL-safe base64 without padding: safe in TEXT columns, URLs and JSON."""
    return binascii.b2a_base64(blob, newline=False).translate(_URL_SAFE).rstrip(b"=").decode()


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: The last character of a text whose length is 2 or 3 (mod 4) carries 4 or 2 unused bits,
#: which must be zero for the text to be the one canonical encoding of its bytes.
_CANONICAL_LAST = {
    2: frozenset(_ALPHABET[index] for index in range(0, 64, 16)),
    3: frozenset(_ALPHABET[index] for index in range(0, 64, 4)),
}
_PADDING = {0: b"", 2: b"==", 3: b"="}
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def from_text(text: str) -> bytes | None:
    """The bytes of a text ciphertext, or None unless it is canonical URL-safe base64.

    Exactly one text encodes given bytes: characters outside the URL-safe alphabet
    (``+``, ``/``, ``=``, spaces), a length of 1 (mod 4) and non-zero unused bits in the last
    character are all refused, so no changed text decrypts.
    """
    if not text.isascii() or "+" in text or "/" in text or "=" in text:
        return None
    remainder = len(text) % 4
    if remainder == 1 or (remainder and text[-1] not in _CANONICAL_LAST[remainder]):
        return None
    try:
        return binascii.a2b_base64(
            text.encode().translate(_TO_STANDARD) + _PADDING[remainder], strict_mode=True
        )
    except binascii.Error:
        return None


#: What completes a text of each length (mod 4) to whole 4-character groups: characters
#: worth zero bits, whose bytes are cut off again (the canonical check has made sure the
#: text's own unused bits are zero).
_FILL = {0: "", 2: "AA", 3: "A"}


def _canonical_ends(last: str, remainder: int) -> bool:
    """Whether each of ``last`` (the last characters of texts of one length) leaves the
    unused bits of its text zero."""
    return not remainder or set(last) <= _CANONICAL_LAST[remainder]


def from_texts(texts: Sequence[str]) -> list[bytes | None]:
    """:func:`from_text` of each of a batch. Texts of one length (a column of one kind) are
    decoded in one call after the same checks; anything else goes through
    :func:`from_text` one by one."""
    size = len(texts[0]) if texts else 0
    remainder = size % 4
    fill = _FILL.get(remainder)
    if fill is None or not size:  # a length of 1 (mod 4) is refused by from_text
        return [from_text(text) for text in texts]
    if len(set(map(len, texts))) != 1:  # texts of several lengths: each alone
        return [from_text(text) for text in texts]
    joined = fill.join(texts) + fill
    if (
        not joined.isascii()
        or "+" in joined
        or "/" in joined
        or "=" in joined
        or not _canonical_ends(joined[size - 1 :: size + len(fill)], remainder)
    ):
        return [from_text(text) for text in texts]
    try:
        decoded = binascii.a2b_base64(joined.encode().translate(_TO_STANDARD), strict_mode=True)
    except binascii.Error:
        return [from_text(text) for text in texts]
    step, keep = (size + len(fill)) // 4 * 3, size * 3 // 4
    return [decoded[at : at + keep] for at in range(0, len(decoded), step)]
