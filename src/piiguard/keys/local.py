"""LocalKEK: a key-encryption key in a local file, for development and single hosts.

The file holds 32 random bytes (base64, after a one-line header) and must be mode 0600:
a group- or world-readable file is refused. Wrapping is AES-256-GCM with a random nonce and
the wrap context as associated data. For production, keep the KEK in an HSM
(:class:`~piiguard.keys.Pkcs11KEK`) or a KMS (:class:`~piiguard.keys.AwsKmsKEK`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from piiguard.errors import InsecureKeyFile, KeyProviderError
from piiguard.keys._context import context_bytes

__all__ = ["LocalKEK"]

_HEADER = b"piiguard local KEK v1\n"
_KEY_SIZE = 32
_NONCE_SIZE = 12
_CONSTRUCT = object()


class LocalKEK:
    """An AES-256 key-encryption key loaded from a 0600 file.

    An opaque handle: its repr shows only its id, it refuses pickling, and the only ways to
    get one are :meth:`generate` and :meth:`from_file`.
    """

    __slots__ = ("_aead", "_id")

    def __init__(self, key: bytes, *, _token: object = None) -> None:
        if _token is not _CONSTRUCT:
            raise TypeError("use LocalKEK.generate(path) or LocalKEK.from_file(path)")
        self._aead = AESGCM(key)
        self._id = "local:" + hashlib.sha256(b"piiguard KEK id\x00" + key).hexdigest()[:24]

    @classmethod
    def generate(cls, path: str | os.PathLike[str]) -> LocalKEK:
        """Create a new random KEK in a new file of mode 0600.

        Raises:
            FileExistsError: the file exists (a key is never overwritten).
        """
        key = os.urandom(_KEY_SIZE)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(_HEADER + base64.b64encode(key) + b"\n")
        return cls(key, _token=_CONSTRUCT)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> LocalKEK:
        """Load a KEK written by :meth:`generate`.

        Raises:
            InsecureKeyFile: the file is readable or writable by group or others.
            KeyProviderError: the file is not a piiguard KEK file.
        """
        target = Path(path)
        mode = target.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InsecureKeyFile("the KEK file must be mode 0600 (readable by its owner only)")
        content = target.read_bytes()
        if not content.startswith(_HEADER):
            raise KeyProviderError("not a piiguard KEK file")
        try:
            key = base64.b64decode(content[len(_HEADER) :].strip(), validate=True)
        except ValueError:
            key = b""
        if len(key) != _KEY_SIZE:
            raise KeyProviderError("the KEK file is damaged")
        return cls(key, _token=_CONSTRUCT)

    @property
    def kek_id(self) -> str:
        """``local:`` and a fingerprint of the key (a hash, not the key)."""
        return self._id

    def wrap(self, dek: bytes, context: Mapping[str, str]) -> bytes:
        """AES-256-GCM: nonce | wrapped key | tag, bound to ``context``."""
        nonce = os.urandom(_NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, dek, context_bytes(context))

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        """The data key, or KeyProviderError for a wrong KEK, context or damaged bytes."""
        try:
            return self._aead.decrypt(
                wrapped[:_NONCE_SIZE], wrapped[_NONCE_SIZE:], context_bytes(context)
            )
        except (InvalidTag, ValueError):
            raise KeyProviderError("the data key does not unwrap under this KEK") from None

    def __repr__(self) -> str:
        return f"LocalKEK(id={self._id!r}, [secure])"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a KEK cannot be pickled")
