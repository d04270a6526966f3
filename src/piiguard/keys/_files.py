"""Reading and writing private key files without races or wide permissions."""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

from piiguard.errors import InsecureKeyFile

__all__ = ["read_private", "write_private"]


def _check_directory(path: Path) -> None:
    mode = os.stat(path.parent).st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InsecureKeyFile("a key file's directory must not be writable by group or others")


def read_private(path: Path) -> bytes:
    """The bytes of a key file that only its owner may read, checked on the open descriptor.

    The checks run on the file that is read (``fstat`` of the open descriptor, no symlink
    followed), so the file cannot be swapped between the check and the read.

    Raises:
        InsecureKeyFile: the file is another user's, readable or writable by group or
            others, a symbolic link, or in a directory that group or others may write.
        FileNotFoundError: there is no such file.
    """
    _check_directory(path)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise
        refused = InsecureKeyFile("a key file must not be a symbolic link")
        raise refused from None
    try:
        status = os.fstat(descriptor)
        if status.st_uid != os.geteuid():
            raise InsecureKeyFile("a key file must belong to the user that reads it")
        if status.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InsecureKeyFile("a key file must be mode 0600 (readable by its owner only)")
        chunks = []
        while chunk := os.read(descriptor, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def write_private(path: Path, content: bytes, *, replace: bool) -> None:
    """Write a 0600 file durably and atomically: it appears whole or not at all (a reader
    never sees it half-written). A new file only, or a replacement of one.

    Raises:
        FileExistsError: ``replace`` is false and the file exists.
        FileNotFoundError: the directory's parent does not exist.
        InsecureKeyFile: the directory is writable by group or others.
    """
    path.parent.mkdir(exist_ok=True, mode=0o700)  # one level: a typo makes no tree
    _check_directory(path)  # a key is never written where group or others could swap it
    target = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    descriptor = os.open(target, flags, 0o600)
    try:
        try:
            os.write(descriptor, content)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if replace:
            os.replace(target, path)
        else:
            os.link(target, path)  # fails if path exists: never overwrites, never half-made
    finally:
        if not replace or target.exists():
            target.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
