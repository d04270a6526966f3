"""SecretBytes: key material that never shows itself in a repr, a log or a traceback (used by
the KEK providers here and by the key layer in crypto/)."""

from __future__ import annotations

from typing import NoReturn

__all__ = ["SecretBytes"]


class SecretBytes(bytes):
    """``bytes`` whose ``repr()`` and ``str()`` are redacted and which refuse pickling.

    Keys are held as SecretBytes from the moment they exist, so that an error tracker that
    records the locals of a failing frame records ``SecretBytes(<redacted>)``.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "SecretBytes(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("key material cannot be pickled")
