"""Random 96-bit nonces, drawn from ``os.urandom`` 512 at a time.

The pool is an iterator over pre-cut nonces: ``next()`` on a list iterator is atomic under
the GIL, so threads never get the same nonce and need no lock; a thread that finds it empty
installs a fresh one. A forked child drops the parent's pool (``os.register_at_fork``), so
parent and child never hand out the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

__all__ = ["random_nonce"]

_NONCE = 12
_BATCH = 512
_pool: Iterator[bytes] = iter(())


def _refill() -> bytes:
    global _pool  # noqa: PLW0603 - the pool is this module's one piece of state
    data = os.urandom(_NONCE * _BATCH)
    fresh = iter([data[start : start + _NONCE] for start in range(0, len(data), _NONCE)])
    nonce = next(fresh)
    _pool = fresh
    return nonce


def _drop_pool() -> None:
    global _pool  # noqa: PLW0603
    _pool = iter(())


os.register_at_fork(after_in_child=_drop_pool)


def random_nonce() -> bytes:
    """12 fresh random bytes."""
    nonce = next(_pool, None)
    return nonce if nonce is not None else _refill()
