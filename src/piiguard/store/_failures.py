"""What a database failure means, in the error tree: the one place store errors are named.

The drivers' own errors carry the SQL and its parameters (which hold subject pseudonyms,
record ids, sometimes a caller's bad value) and, for connection failures, the URL. They are
translated where SQLAlchemy reports them (its ``handle_error`` hook) into a
:class:`~piiguard.StoreError` that names the cause and nothing else, a
:class:`~piiguard.StoreBusy`, or an :class:`~piiguard.InvalidArgument` when the value was the
problem.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Engine, event

from piiguard.errors import InvalidArgument, PiiGuardError, StoreBusy, StoreError

__all__ = ["describe", "translate_errors"]

_SQLITE_BUSY = ("database is locked", "database table is locked")
_SQLITE_CORRUPTED = ("file is not a database", "malformed", "not a database")
_PG_AUTHENTICATION = {"28P01", "28000"}
_PG_MISSING_DATABASE = "3D000"
_PG_LOCK_TIMEOUT = "55P03"
_REFUSED = ("connection refused", "could not connect to server", "no route to host")


def describe(error: BaseException) -> PiiGuardError | None:
    """The tree's error for a driver's (or SQLAlchemy's) ``error``, or None to leave it be."""
    original = getattr(error, "orig", None) or error
    name = type(original).__name__
    message = str(original).lower()
    if isinstance(original, UnicodeDecodeError):
        return StoreError("the store holds text that is not valid UTF-8", "corrupted")
    if isinstance(original, UnicodeEncodeError):
        return InvalidArgument("a text is not valid Unicode (it holds a lone surrogate)")
    if name == "IntegrityError":  # its message quotes the SQL parameters
        return StoreError("a concurrent write conflicted with this one; retry it", "conflict")
    if isinstance(original, sqlite3.Error):
        return _sqlite(original, message)
    sqlstate: str | None = getattr(original, "sqlstate", None)
    if sqlstate == _PG_LOCK_TIMEOUT:
        return StoreBusy(
            "the store stayed locked past the lock timeout (by the caller's own bound "
            "transaction, or another)"
        )
    if "nul (0x00)" in message or "nul character" in message:
        return InvalidArgument("a text holds a NUL character, which PostgreSQL cannot store")
    if name == "DataError" or (sqlstate or "").startswith("22"):
        return InvalidArgument("a value does not fit the store (too long or of a wrong form)")
    if name == "ProgrammingError" and sqlstate is None:
        return InvalidArgument("a value of a type the store cannot hold")
    if (
        sqlstate in _PG_AUTHENTICATION
        or "authentication failed" in message
        or ('role "' in message and "does not exist" in message)
    ):
        return StoreError("cannot open the store: authentication failed", "authentication")
    if sqlstate == _PG_MISSING_DATABASE or (
        'database "' in message and "does not exist" in message
    ):
        return StoreError("cannot open the store: the database does not exist", "missing_database")
    if any(marker in message for marker in _REFUSED):
        return StoreError("cannot open the store: the connection was refused", "refused")
    return StoreError(f"the store failed: {name}", "unavailable")


def _sqlite(original: sqlite3.Error, message: str) -> PiiGuardError:
    if any(marker in message for marker in _SQLITE_BUSY):
        return StoreBusy()
    if any(marker in message for marker in _SQLITE_CORRUPTED):
        return StoreError("the store file is corrupted or not a piiguard store", "corrupted")
    if "unable to open database file" in message:
        return StoreError(
            "cannot open the store file (missing directory or no permission)", "cannot_open"
        )
    if isinstance(original, sqlite3.ProgrammingError | sqlite3.InterfaceError | sqlite3.DataError):
        return InvalidArgument("a value of a type or size the store cannot hold")
    if "could not decode" in message:
        return StoreError("the store holds text that is not valid UTF-8", "corrupted")
    return StoreError(f"the store failed: {type(original).__name__}", "unavailable")


def _on_error(context: Any) -> None:
    if context.is_pre_ping:  # the pool handles a dead pooled connection by reconnecting
        return
    translated = describe(context.original_exception)
    if translated is not None:
        raise translated from None


def translate_errors(engine: Engine) -> None:
    """Have ``engine`` raise the tree's errors instead of the drivers'."""
    event.listen(engine, "handle_error", _on_error)
