"""requires_consent: one line that makes a handler refuse subjects without consent.

The subject is read the way Python binds the call (``inspect.Signature.bind``), so a
positional-only parameter cannot be shadowed by a keyword of the same name, and it must be a
non-empty ``str`` (exactly: not ``None``, not a ``str`` subclass with its own ``__str__``).
Generators are checked when iteration starts, not when they are created. A refusal is raised
from a frame that holds none of the handler's arguments.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Generator
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from piiguard.errors import (
    ConsentRequired,
    binding_error,
    contract_error,
    require_subject,
)

__all__ = ["SubjectSource", "requires_consent"]

P = ParamSpec("P")
R = TypeVar("R")
#: Where the subject comes from: a parameter name, a callable given the call's arguments, or a
#: context variable (set by middleware, say).
SubjectSource = str | Callable[..., str] | ContextVar[str]


def _subject_reader(function: Callable[..., Any], source: SubjectSource) -> Callable[..., object]:
    if isinstance(source, ContextVar):
        return lambda *args, **kwargs: source.get(None)
    if callable(source):
        return source
    signature = inspect.signature(function, follow_wrapped=False)  # what the call will bind
    if source not in signature.parameters:
        raise TypeError(
            f"{function.__qualname__} has no parameter {source!r} to read the subject from"
        )

    def bind(*args: Any, **kwargs: Any) -> object:
        try:
            bound = signature.bind(*args, **kwargs)  # a wrong call fails as the function would
        except TypeError as error:  # its message may quote a caller's keyword: see there
            raise binding_error(function, error) from None
        bound.apply_defaults()
        return bound.arguments[source]

    return _fast_reader(signature, source, bind)


def _fast_reader(
    signature: inspect.Signature, name: str, bind: Callable[..., object]
) -> Callable[..., object]:
    """Where Python itself will put the subject parameter, read without building a
    BoundArguments (which costs more than a warm consent check): a positional-only parameter
    from its position only (a keyword of that name goes to ``**kwargs``), a keyword-only one
    from the keywords only, any other from its position if the call reaches it, else from the
    keywords. A call that leaves the parameter unfilled goes to ``bind``, which raises as the
    function would; a call the function would refuse otherwise never runs the function."""
    parameter = signature.parameters[name]
    position = list(signature.parameters).index(name)
    default = parameter.default
    missing = inspect.Parameter.empty
    kind = parameter.kind
    if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
        return bind
    if kind is inspect.Parameter.KEYWORD_ONLY:

        def keyword(*args: Any, **kwargs: Any) -> object:
            value = kwargs.get(name, default)
            return bind(*args, **kwargs) if value is missing else value

        return keyword
    by_keyword = kind is inspect.Parameter.POSITIONAL_OR_KEYWORD

    def positional(*args: Any, **kwargs: Any) -> object:
        if len(args) > position:
            return args[position]
        value = kwargs.get(name, default) if by_keyword else default
        return bind(*args, **kwargs) if value is missing else value

    return positional


def requires_consent(
    missing: Callable[[str, tuple[str, ...]], set[str]],
    purposes: tuple[str, ...],
    subject: SubjectSource,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Build the decorator; ``missing(subject, purposes)`` says which purposes lack consent.

    The wrapped function keeps its name, signature and docstring; coroutine functions stay
    coroutine functions, generators stay generators. A call without consent raises
    :class:`~piiguard.ConsentRequired` naming the missing purposes, before the function runs
    (for a generator, when iteration starts); so does a subject that is not a non-empty str.
    """
    if not purposes or not all(isinstance(name, str) for name in purposes):
        raise TypeError("requires_consent names at least one purpose")

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        read = _subject_reader(function, subject)
        call: Callable[..., Any] = function  # the wrappers below pass the arguments through

        def refusal(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Exception | None:
            """The error that refuses this call, or None; returned, without a traceback,
            so the caller raises it from a frame that no longer holds the arguments."""
            try:
                who = read(*args, **kwargs)
                if require_subject(who) is not who:  # the one subject check, refused
                    return ConsentRequired(set(purposes))
                lacking = missing(who, purposes)  # type: ignore[arg-type]
            except Exception as error:
                who = None
                return contract_error(error)
            return ConsentRequired(lacking) if lacking else None

        if inspect.isasyncgenfunction(function):

            @functools.wraps(function)
            async def async_generator(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                failure = refusal(args, kwargs)
                if failure is not None:
                    del args, kwargs
                    raise failure
                async for item in call(*args, **kwargs):
                    yield item

            return async_generator  # type: ignore[return-value]

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def coroutine(*args: Any, **kwargs: Any) -> Any:
                failure = refusal(args, kwargs)
                if failure is not None:
                    del args, kwargs
                    raise failure
                return await call(*args, **kwargs)

            return coroutine  # type: ignore[return-value]

        if inspect.isgeneratorfunction(function):

            @functools.wraps(function)
            def generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
                failure = refusal(args, kwargs)
                if failure is not None:
                    del args, kwargs
                    raise failure
                return (yield from call(*args, **kwargs))

            return generator  # type: ignore[return-value]

        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            failure = refusal(args, kwargs)
            if failure is not None:
                del args, kwargs
                raise failure
            return function(*args, **kwargs)

        return wrapper

    return decorate
