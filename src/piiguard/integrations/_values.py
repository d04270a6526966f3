"""The stored form of an encrypted column's value, shared by the ORM integrations: a
ciphertext with its plaintext once opened, a value waiting for its row's key, and the one
rule of what may be written to the column."""

from __future__ import annotations

from typing import Any

from piiguard.errors import InvalidArgument

__all__ = ["PENDING_TEXT", "Pending", "Sealed", "is_plain", "written"]

#: The placeholder a row whose key the database chooses is inserted with, until sealed.
PENDING_TEXT = ""


class Sealed:
    """A stored value: its ciphertext, and its plaintext once opened. Neither its repr nor
    a pickle or deep copy holds the plaintext (a copy opens the value again, audited)."""

    __slots__ = ("__weakref__", "batch", "loaded", "plaintext", "row", "text")

    def __init__(self, text: str, plaintext: str | None = None, row: str | None = None) -> None:
        self.text = text
        self.plaintext = plaintext
        self.batch: Any = None  # the rows one query loaded with it
        self.row = row  # the row id it is bound to, where the integration keeps it (Django)
        self.loaded: Any = None  # the instance state it was loaded into (SQLAlchemy)

    def __repr__(self) -> str:
        return "<encrypted>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __reduce__(self) -> tuple[Any, tuple[str, None, str | None]]:
        return (Sealed, (self.text, None, self.row))  # never the plaintext; the row it is for


class Pending:
    """A value waiting for its row's key (the database chooses it), sealed right after."""

    __slots__ = ("plaintext",)

    def __init__(self, plaintext: str) -> None:
        self.plaintext = plaintext

    def __repr__(self) -> str:
        return "<encrypting>"

    def __reduce__(self) -> Any:
        raise InvalidArgument("a value being sealed cannot be pickled or copied")


def is_plain(value: object) -> bool:
    """Whether a value bound for an encrypted column is plain (neither None nor sealed)."""
    return value is not None and not isinstance(value, Sealed | Pending)


def written(value: object, refusal: str) -> str | InvalidArgument | None:
    """What the column stores for ``value``: a ciphertext, the placeholder, or NULL; for a
    plain value (it would be stored in clear) the error, unraised, for the caller to raise
    once its own frame no longer holds the value."""
    if value is None:
        return None
    if isinstance(value, Sealed):
        return value.text
    if isinstance(value, Pending):
        return PENDING_TEXT
    return InvalidArgument(refusal)
