"""EpochKeyFile: epoch objects in a 0600 file beside a KEK file, for any KEK provider.

Each line holds one epoch object (32 random bytes) wrapped by the KEK. Destroying an epoch
rewrites the file without its line (atomically, under a lock shared by every process), so a
copy of the store whose data keys were wrapped under that epoch no longer opens. Keep this
file off the database's backups: a backup that carries it carries the keys it must forget.
A file system may keep overwritten blocks; an HSM or KMS destroys keys for certain.
"""

from __future__ import annotations

import base64
import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from piiguard.errors import KeyDestroyed, KeyProviderError
from piiguard.keys._files import read_private, write_private
from piiguard.keys.context import context_bytes
from piiguard.keys.protocol import KEKProvider

__all__ = ["EpochKeyFile"]

_HEADER = b"piiguard epoch keys v1\n"
_NONCE_SIZE = 12


def _object_context(ref: str) -> dict[str, str]:
    return {"piiguard": "epoch-object", "ref": ref}


class EpochKeyFile:
    """Epoch objects kept in a file, each wrapped by ``kek``.

    Args:
        path: the file (created 0600 on first use); keep it beside the KEK file, off the
            database's backups.
        kek: the KEK that wraps each epoch object.
    """

    __slots__ = ("_kek", "_path")

    def __init__(self, path: str | os.PathLike[str], kek: KEKProvider) -> None:
        self._path = Path(path)
        self._kek = kek

    @property
    def holder_id(self) -> str:
        """``file:`` and the KEK's id."""
        return f"file:{self._kek.kek_id}"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self._path.with_name(self._path.name + ".lock")
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def _entries(self) -> dict[str, bytes]:
        try:
            content = read_private(self._path)
        except FileNotFoundError:
            return {}
        if not content.startswith(_HEADER):
            raise KeyProviderError("not a piiguard epoch-key file")
        entries: dict[str, bytes] = {}
        for line in content[len(_HEADER) :].splitlines():
            ref, _, wrapped = line.decode("ascii", "replace").partition(" ")
            try:
                entries[ref] = base64.b64decode(wrapped, validate=True)
            except ValueError:
                raise KeyProviderError("the epoch-key file is damaged") from None
        return entries

    def _write(self, entries: Mapping[str, bytes]) -> None:
        lines = b"".join(
            ref.encode("ascii") + b" " + base64.b64encode(wrapped) + b"\n"
            for ref, wrapped in entries.items()
        )
        write_private(self._path, _HEADER + lines, replace=True)

    def _object(self, ref: str) -> AESGCM:
        wrapped = self._entries().get(ref)
        if wrapped is None:
            raise KeyDestroyed
        return AESGCM(self._kek.unwrap(wrapped, _object_context(ref)))

    def create_epoch(self) -> str:
        """A new epoch object, written to the file before its ref is returned."""
        ref = os.urandom(12).hex()
        wrapped = self._kek.wrap(AESGCM.generate_key(256), _object_context(ref))
        with self._locked():
            entries = self._entries()
            entries[ref] = wrapped
            self._write(entries)
        return ref

    def seal_epoch_key(self, ref: str, key: bytes, context: Mapping[str, str]) -> bytes:
        """AES-256-GCM under the epoch object: nonce | sealed key | tag."""
        nonce = os.urandom(_NONCE_SIZE)
        return nonce + self._object(ref).encrypt(nonce, key, context_bytes(context))

    def open_epoch_key(self, ref: str, sealed: bytes, context: Mapping[str, str]) -> bytes:
        """The epoch key; KeyDestroyed once its object is gone."""
        try:
            return self._object(ref).decrypt(
                sealed[:_NONCE_SIZE], sealed[_NONCE_SIZE:], context_bytes(context)
            )
        except (InvalidTag, ValueError):
            raise KeyProviderError("the epoch key does not open under its epoch object") from None

    def destroy_epoch(self, ref: str) -> None:
        """Rewrite the file without the object."""
        with self._locked():
            entries = self._entries()
            if entries.pop(ref, None) is not None:
                self._write(entries)

    def __repr__(self) -> str:
        return f"EpochKeyFile(kek={self._kek.kek_id!r}, [secure])"

    def __reduce__(self) -> NoReturn:
        raise TypeError("an epoch-key holder cannot be pickled")
