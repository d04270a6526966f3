"""A cache of derived consent states, valid for one generation of the store's change counter.

A value computed from a read that began in generation *g* is kept only if the counter still
says *g* when it is stored: a commit that lands meanwhile (in this process or any other)
moves the counter, and the stale value is never served. Without a counter nothing is kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["StateCache"]

_LIMIT = 100_000
V = TypeVar("V")


class StateCache(Generic[V]):
    """Derived states by key, dropped whenever the change counter moves."""

    def __init__(self, counter: Callable[[], int] | None) -> None:
        self._counter = counter
        self._generation: int | None = None
        self._states: dict[Hashable, V] = {}
        self._lock = threading.Lock()

    def look(self, key: Hashable) -> tuple[V | None, int | None]:
        """(the cached state or None, the generation a computed state must be stored under)."""
        if self._counter is None:
            return None, None
        generation = self._counter()
        if generation != self._generation:
            with self._lock:
                if generation != self._generation:
                    self._states = {}
                    self._generation = generation
            return None, generation
        return self._states.get(key), generation

    def keep(self, key: Hashable, state: V, generation: int | None) -> None:
        """Store a state computed from a read that began in ``generation``."""
        if generation is None:
            return
        with self._lock:
            if (
                generation == self._generation
                and self._counter is not None
                and self._counter() == generation
                and len(self._states) < _LIMIT
            ):
                self._states[key] = state
