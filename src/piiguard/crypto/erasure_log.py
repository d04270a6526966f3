"""The erasure log: a file outside the store naming every shredded subject, for restores.

A backup restored over the live store brings back the wrapped keys of subjects erased since
it was taken. ``Guard.open(..., erasure_log=PATH)`` replays this log on open and shreds each
of those subjects again before ``open`` returns. The log names subjects by their keyed
pseudonym (the key scope), never by id; a line is appended and synced *before* the keys are
shredded, so a crash in between errs on the side of erasure.

Each log starts with a header naming it (a random id), and the store keeps how far it has
replayed *per log*: several instances may keep logs of their own, and a log that is rotated
or truncated starts again with a new header, so its replay starts from the beginning.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["ErasureLog"]

#: A line: the scope, then when it was shredded (microseconds since the Unix epoch, UTC).
_LINE = re.compile(rb"(subject:[0-9a-f]{40}) ([0-9]{1,20})")
_HEADER = b"# piiguard erasure log "
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ErasureLog:
    """An append-only file of shredded subject scopes, one per line."""

    __slots__ = ("_path",)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)

    def append(self, scope: str, at: datetime) -> None:
        """Add one scope shredded at ``at``, durably (written and fsynced before returning).

        The time lets a replay destroy only the keys that existed at the shred: a subject who
        came back afterwards keeps their new keys."""
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(
            self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)  # one header, however many writers
            header = b""
            if os.fstat(descriptor).st_size == 0:
                header = _HEADER + os.urandom(16).hex().encode("ascii") + b"\n"
            stamp = str((at - _EPOCH) // timedelta(microseconds=1)).encode("ascii")
            os.write(descriptor, header + scope.encode("ascii") + b" " + stamp + b"\n")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def identity(self) -> str:
        """Which log this is: a digest of its first line (its header; after a truncation
        by a rotation, whatever line came first). Empty for a missing or empty file."""
        try:
            with self._path.open("rb") as file:
                first = file.readline()
        except FileNotFoundError:
            return ""
        return hashlib.sha256(first).hexdigest()[:16] if first else ""

    def read(self, start: int) -> tuple[list[tuple[str, datetime]], int]:
        """The (scope, shredded at) entries from byte ``start`` on (from 0 when the file is
        shorter: replaced or truncated), and the offset after the last whole line."""
        try:
            content = self._path.read_bytes()
        except FileNotFoundError:
            return [], 0
        if start > len(content):
            start = 0
        end = content.rfind(b"\n") + 1
        if end <= start:
            return [], max(start, end)
        entries = []
        for line in content[start:end].splitlines():
            match = _LINE.fullmatch(line)
            if match is None:
                continue
            try:
                at = _EPOCH + timedelta(microseconds=int(match[2]))
            except (OverflowError, OSError, ValueError):
                continue  # a damaged line names no time a key could be compared with
            entries.append((match[1].decode("ascii"), at))
        return entries, end
