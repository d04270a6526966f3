"""requires_consent: one line that makes a handler refuse subjects without consent."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from piiguard.errors import ConsentRequired

__all__ = ["SubjectSource", "requires_consent"]

P = ParamSpec("P")
R = TypeVar("R")
#: Where the subject comes from: a parameter name, a callable given the call's arguments, or a
#: context variable (set by middleware, say).
SubjectSource = str | Callable[..., str] | ContextVar[str]


def _subject_reader(function: Callable[..., Any], source: SubjectSource) -> Callable[..., str]:
    if isinstance(source, ContextVar):
        return lambda *args, **kwargs: source.get()
    if callable(source):
        return source
    parameters = inspect.signature(function).parameters
    if source not in parameters:
        raise TypeError(
            f"{function.__qualname__} has no parameter {source!r} to read the subject from"
        )
    index = list(parameters).index(source)
    default = parameters[source].default

    def read(*args: Any, **kwargs: Any) -> str:
        if source in kwargs:
            return str(kwargs[source])
        if index < len(args):
            return str(args[index])
        if default is inspect.Parameter.empty:
            raise TypeError(f"no {source!r} given")
        return str(default)

    return read


def requires_consent(
    missing: Callable[[str, tuple[str, ...]], set[str]],
    purposes: tuple[str, ...],
    subject: SubjectSource,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Build the decorator; ``missing(subject, purposes)`` says which purposes lack consent.

    The wrapped function keeps its name, signature and docstring; coroutine functions stay
    coroutine functions. A call without consent raises :class:`~piiguard.ConsentRequired`
    naming the missing purposes, before the function runs.
    """
    if not purposes or not all(isinstance(name, str) for name in purposes):
        raise TypeError("requires_consent names at least one purpose")

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        read = _subject_reader(function, subject)

        def ensure(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            lacking = missing(read(*args, **kwargs), purposes)
            if lacking:
                raise ConsentRequired(lacking)

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                ensure(args, kwargs)
                return await function(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            ensure(args, kwargs)
            return function(*args, **kwargs)

        return wrapper

    return decorate
