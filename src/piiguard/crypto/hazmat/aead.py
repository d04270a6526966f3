"""HAZARDOUS: AEAD primitives with caller-chosen nonces. Use piiguard.Guard instead.

``Sm4Gcm`` has the shape of cryptography's ``AESGCM`` (the ``Aead`` Protocol): built once per
key, then ``encrypt(nonce, plaintext, aad)`` returns ciphertext with the 16-byte tag appended,
and ``decrypt`` raises ``cryptography.exceptions.InvalidTag`` on any mismatch.
"""

from __future__ import annotations

from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

__all__ = ["TAG_SIZE", "Aead", "AesSiv", "Sm4Gcm"]

TAG_SIZE = 16


class Aead(Protocol):
    """A nonce-based AEAD bound to one key."""

    def encrypt(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """Ciphertext followed by the tag."""

    def decrypt(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """Plaintext, or InvalidTag."""


class Sm4Gcm:
    """SM4 (GB/T 32907-2016) in GCM mode with a 16-byte tag, for commercial-crypto rules."""

    __slots__ = ("_algorithm",)

    def __init__(self, key: bytes) -> None:
        self._algorithm = algorithms.SM4(key)

    def encrypt(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """Ciphertext followed by the tag."""
        encryptor = Cipher(self._algorithm, modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(aad)
        body = encryptor.update(plaintext) + encryptor.finalize()
        return body + encryptor.tag

    def decrypt(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """Plaintext, or InvalidTag (also for a ciphertext shorter than a tag)."""
        if len(ciphertext) < TAG_SIZE:
            raise InvalidTag
        body, tag = ciphertext[:-TAG_SIZE], ciphertext[-TAG_SIZE:]
        decryptor = Cipher(self._algorithm, modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(aad)
        return decryptor.update(body) + decryptor.finalize()


class AesSiv:
    """AES-SIV (RFC 5297), deterministic; only 64-byte keys (AES-256-SIV) are accepted.

    A 32-byte key would be AES-128-SIV, whose 128-bit MAC key is too weak under multi-user
    attacks (Tink refuses it for the same reason).
    """

    __slots__ = ("_cipher",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 64:
            raise ValueError("AES-SIV keys must be 64 bytes (AES-256-SIV)")
        self._cipher = AESSIV(key)

    def encrypt(self, plaintext: bytes, associated_data: list[bytes]) -> bytes:
        """The synthetic IV followed by the ciphertext."""
        return self._cipher.encrypt(plaintext, associated_data)

    def decrypt(self, ciphertext: bytes, associated_data: list[bytes]) -> bytes:
        """Plaintext, or InvalidTag."""
        return self._cipher.decrypt(ciphertext, associated_data)
