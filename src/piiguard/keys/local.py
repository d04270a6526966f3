"""LocalKEK: a key-encryption key in a local file, for development and single hosts.

The file holds 32 random bytes (base64, after a one-line header) and must be mode 0600, owned
by the reading user, in a directory that group and others cannot write. Wrapping is AES-256-GCM
with a random nonce and the wrap context as associated data. Epoch keys live in a second file
beside it, ``<key file>.epochs`` (:class:`~piiguard.keys.EpochKeyFile`): keep both off the
database's backups. For production, keep the KEK in an HSM (:class:`~piiguard.keys.Pkcs11KEK`)
or a KMS (:class:`~piiguard.keys.AwsKmsKEK`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from piiguard.errors import InvalidArgument, KeyProviderError, PiiGuardError, WrappedKeyInvalid
from piiguard.keys._files import read_private, write_private
from piiguard.keys.context import context_bytes
from piiguard.keys.epoch_file import EpochKeyFile
from piiguard.keys.secret import SecretBytes

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

    __slots__ = ("_aead", "_id", "_path")

    def __init__(self, key: bytes, path: Path, *, _token: object = None) -> None:
        if _token is not _CONSTRUCT:
            raise TypeError("use LocalKEK.generate(path) or LocalKEK.from_file(path)")
        self._aead = AESGCM(key)
        self._id = "local:" + hashlib.sha256(b"piiguard KEK id\x00" + key).hexdigest()[:24]
        self._path = path

    @classmethod
    def generate(cls, path: str | os.PathLike[str]) -> LocalKEK:
        """Create a new random KEK in a new file of mode 0600.

        Raises:
            InvalidArgument: the file exists (a key is never overwritten).
            KeyProviderError: the file cannot be written (no such directory, no permission).
        """
        target = _key_path(path)
        if isinstance(target, InvalidArgument):
            del path
            raise target
        key = SecretBytes(os.urandom(_KEY_SIZE))
        content = SecretBytes(_HEADER + base64.b64encode(key) + b"\n")
        failure: PiiGuardError | None = None
        try:
            write_private(target, content, replace=False)
        except FileExistsError:
            failure = InvalidArgument("a key file exists at this path: a key is never overwritten")
        except OSError as error:
            failure = KeyProviderError(f"cannot write the key file: {error.strerror}")
        if failure is not None:
            del key, content
            raise failure
        return cls(key, target, _token=_CONSTRUCT)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> LocalKEK:
        """Load a KEK written by :meth:`generate`.

        Raises:
            InsecureKeyFile: the file is readable or writable by group or others, belongs to
                another user, or sits in a directory that group or others may write.
            KeyProviderError: the file is not a piiguard KEK file, or is damaged.
        """
        target = _key_path(path)
        if isinstance(target, InvalidArgument):
            del path
            raise target
        try:
            key = _parse(read_private(target))  # the file's text never is a local of this frame
        except OSError as error:  # its message names the path; the reason is enough
            key = KeyProviderError(f"cannot read the key file: {error.strerror or 'error'}")
        if isinstance(key, KeyProviderError):
            raise key
        return cls(key, target, _token=_CONSTRUCT)

    @classmethod
    def load_or_generate(cls, path: str | os.PathLike[str]) -> LocalKEK:
        """The KEK in ``path``, made there first if there is none: what an app calls at every
        start. Instances starting at once on one host end with one key: the file appears
        whole or not at all, and whoever loses the race loads the winner's.

        A new key on a host that should have had the old one (a lost volume) is not an
        error here; ``Guard.open`` then refuses it with ``WrongKEK`` for a store that holds
        keys. Raises as :meth:`from_file` and :meth:`generate` do.
        """
        target = _key_path(path)
        if isinstance(target, InvalidArgument):
            del path
            raise target
        if not os.path.lexists(target):
            try:
                return cls.generate(target)
            except InvalidArgument:  # made by another process since we looked
                pass
        return cls.from_file(target)

    @property
    def kek_id(self) -> str:
        """``local:`` and a fingerprint of the key (a hash, not the key)."""
        return self._id

    @property
    def epoch_keys(self) -> EpochKeyFile:
        """The epoch-key file beside the key file (``<key file>.epochs``)."""
        return EpochKeyFile(self._path.with_name(self._path.name + ".epochs"), self)

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
            raise WrappedKeyInvalid("the data key does not unwrap under this KEK") from None

    def __repr__(self) -> str:
        return f"LocalKEK(id={self._id!r}, [secure])"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a KEK cannot be pickled")


def _parse(content: bytes) -> SecretBytes | KeyProviderError:
    """The key in a KEK file's content, or the error to raise (returned, so that no frame
    an error passes through holds the file's text)."""
    if not content.startswith(_HEADER):
        return KeyProviderError("not a piiguard KEK file")
    try:
        key = SecretBytes(base64.b64decode(content[len(_HEADER) :].strip(), validate=True))
    except (ValueError, binascii.Error):
        key = SecretBytes()
    del content
    if len(key) != _KEY_SIZE:
        return KeyProviderError("the KEK file is damaged")
    return key


def _key_path(path: object) -> Path | InvalidArgument:
    """``path`` as a Path, or why it cannot be one (without echoing it)."""
    if not isinstance(path, str | os.PathLike):
        return InvalidArgument("a key file's path is a str or an os.PathLike")
    text = os.fspath(path)
    if isinstance(text, str) and not text:
        return InvalidArgument("a key file's path is empty")
    if not isinstance(text, str) or "\x00" in text:
        return InvalidArgument("a key file's path is text without NUL")
    try:
        text.encode()
    except UnicodeEncodeError:
        return InvalidArgument("a key file's path is not valid Unicode")
    return Path(text)
