"""The async face of a Guard: ``await guard.aio.<call>`` for every call that touches the store.

Each call runs the Guard's own (synchronous) call on a bounded pool of worker threads, with
the caller's context (``pg.acting``'s actor and purpose) copied into it, so an event loop
never waits on the store, a KMS or an HSM, and a burst of requests cannot open more database
connections than the pool has threads.

Chosen over a second, native-async store (SQLAlchemy's asyncio engines): piiguard's work
per call is a few short transactions around CPU-bound cryptography, which a thread does as
fast; one implementation keeps one set of rules (docs/choices.md), and the offload costs
tens of microseconds per call (``make bench``, ``async`` suite).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from piiguard.errors import InvalidArgument, StoreError

__all__ = ["DEFAULT_THREADS", "AsyncFace"]

#: Worker threads of a Guard's async face: its store calls in flight at once.
DEFAULT_THREADS = 16
#: The Guard's parts whose calls the async face offers (``await guard.aio.consent.grant(...)``).
PARTS = frozenset(
    {"consent", "vault", "retention", "audit", "requests", "sharing", "records", "keys"}
    | {"subjects", "tokens", "watch", "access"}
)


class AsyncFace:
    """``guard.aio``: the Guard's calls as coroutines (and its parts', one level down)."""

    __slots__ = ("_executor", "_target", "_top")

    def __init__(self, target: object, executor: ThreadPoolExecutor, *, top: bool = True) -> None:
        self._target = target
        self._executor = executor
        self._top = top

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._target, name)
        if self._top and name in PARTS:
            return AsyncFace(value, self._executor, top=False)
        if not callable(value):
            raise InvalidArgument(f"{name} is not a call: read it from the Guard itself")
        return self._offloaded(value)

    def _offloaded(self, call: Callable[..., Any]) -> Callable[..., Any]:
        executor = self._executor

        @functools.wraps(call)
        async def run(*args: Any, **kwargs: Any) -> Any:
            context = contextvars.copy_context()  # pg.acting's actor and purpose go along
            loop = asyncio.get_running_loop()
            work = functools.partial(context.run, call, *args, **kwargs)
            del args, kwargs  # a value passed by mistake stays out of this frame
            try:
                return await loop.run_in_executor(executor, work)
            except RuntimeError as error:
                if executor._shutdown:
                    raise StoreError("the Guard is closed", "closed") from None
                failure: BaseException = error
            except BaseException as error:
                failure = error
            del work
            raise failure

        return run

    def __repr__(self) -> str:
        return f"AsyncFace({type(self._target).__name__})"
