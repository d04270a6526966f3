"""FastAPI: consent and acting dependencies and 403 problem+json handlers (RFC 9457).

    app = FastAPI()
    piiguard.integrations.fastapi.install(app)

    needs_sms = consent(guard, "marketing_sms", subject=path("user_id"))
    as_customer = consent(guard, "marketing_sms", subject=Depends(current_user_id))
    as_support = acting("after_sales")          # the actor: the request's authenticated user

    @app.post("/promo/{user_id}", dependencies=[needs_sms])
    async def promo(user_id: str) -> dict[str, str]: ...

    @app.get("/orders/{order_id}/phone", dependencies=[as_support])
    async def phone(order_id: str) -> dict[str, str]:
        return {"phone": guard.decrypt(...)}   # audited as that user, for after_sales

``@guard.requires_consent`` on an endpoint works too once ``install`` has run.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import Depends, FastAPI, Request, params
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from piiguard.errors import AccessDenied, ConsentRequired, InvalidArgument
from piiguard.events import acting as acting_as
from piiguard.integrations._problem import MEDIA_TYPE, access_problem, consent_problem

__all__ = ["acting", "authenticated_user", "consent", "install", "path"]

SubjectFromRequest = Callable[[Request], str]


def path(name: str) -> SubjectFromRequest:
    """Read the subject from a path parameter."""
    return lambda request: str(request.path_params[name])


def authenticated_user(request: Request) -> str | None:
    """The identity Starlette's ``AuthenticationMiddleware`` put on the request, if any."""
    user = request.scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(getattr(user, "identity", None) or getattr(user, "display_name", "")) or None


async def _problem_response(request: Request, error: Exception) -> JSONResponse:
    body = consent_problem(error) if isinstance(error, ConsentRequired) else None
    if isinstance(error, AccessDenied):
        body = access_problem(error)
    return JSONResponse(body, status_code=403, media_type=MEDIA_TYPE)


def install(app: FastAPI) -> None:
    """Answer every ``ConsentRequired`` and ``AccessDenied`` with 403 and an RFC 9457
    problem body."""
    app.add_exception_handler(ConsentRequired, _problem_response)
    app.add_exception_handler(AccessDenied, _problem_response)


def _who(value: object, what: str) -> str:
    """A resolved actor or subject: a non-empty str, else the request is refused."""
    if not isinstance(value, str) or not value:
        reason = "no_actor" if what == "actor" else "no_subject"
        raise AccessDenied(reason, f"this endpoint needs a {what}: authenticate first")
    return str(value)


@contextlib.contextmanager
def _acting(actor: str, purpose: str) -> Iterator[None]:
    """``pg.acting``, with an actor it refuses (not a name: too long, a newline) answered
    as a refusal (403), not as a server error."""
    try:
        scope = acting_as(actor=actor, purpose=purpose)
        scope.__enter__()
    except InvalidArgument:
        raise AccessDenied("no_actor", "this endpoint needs an actor named by a staff id") from None
    try:
        yield
    finally:
        scope.__exit__(None, None, None)


def acting(
    purpose: str, *, actor: Callable[[Request], str | None] | params.Depends = authenticated_user
) -> Any:
    """A dependency that names the actor and ``purpose`` for every reveal the endpoint
    makes (``pg.acting``). ``actor`` reads the request (by default the authenticated user),
    or is any dependency of the app (``Depends(current_staff_id)``) that gives the actor's
    name; a request with no actor is refused with ``AccessDenied`` (403 once ``install`` has
    run)."""
    if isinstance(actor, params.Depends):

        async def from_dependency(who: Any = actor) -> AsyncIterator[None]:
            with _acting(_who(who, "actor"), purpose):
                yield

        return Depends(from_dependency)
    read = actor

    async def from_request(request: Request) -> AsyncIterator[None]:
        with _acting(_who(read(request), "actor"), purpose):
            yield

    return Depends(from_request)


def consent(guard: Any, *purposes: str, subject: SubjectFromRequest | params.Depends) -> Any:
    """A dependency that refuses the request unless the subject consented to ``purposes``.

    ``subject`` reads the request (``path("user_id")``), or is any dependency of the app
    (``Depends(current_user_id)``: the authenticated customer) that gives the subject id.
    The consent check reads the store: it runs in Starlette's thread pool, never on the
    event loop.
    """
    if isinstance(subject, params.Depends):

        async def from_dependency(who: Any = subject) -> None:
            await _check(guard, purposes, _who(who, "subject"))

        return Depends(from_dependency)
    read = subject

    async def from_request(request: Request) -> None:
        await _check(guard, purposes, _who(read(request), "subject"))

    return Depends(from_request)


async def _check(guard: Any, purposes: tuple[str, ...], subject: str) -> None:
    lacking = await run_in_threadpool(guard.consent.missing, subject, purposes)
    if lacking:
        raise ConsentRequired(lacking)
