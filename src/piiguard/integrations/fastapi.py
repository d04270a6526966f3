"""FastAPI: consent and acting dependencies and 403 problem+json handlers (RFC 9457).

    app = FastAPI()
    piiguard.integrations.fastapi.install(app)

    needs_sms = consent(guard, "marketing_sms", subject=path("user_id"))
    as_support = acting("after_sales")          # the actor: the request's authenticated user

    @app.post("/promo/{user_id}", dependencies=[needs_sms])
    async def promo(user_id: str) -> dict[str, str]: ...

    @app.get("/orders/{order_id}/phone", dependencies=[as_support])
    async def phone(order_id: str) -> dict[str, str]:
        return {"phone": guard.decrypt(...)}   # audited as that user, for after_sales

``@guard.requires_consent`` on an endpoint works too once ``install`` has run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from piiguard.errors import AccessDenied, ConsentRequired
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


def acting(purpose: str, *, actor: Callable[[Request], str | None] = authenticated_user) -> Any:
    """A dependency that names the actor (by default the authenticated user) and ``purpose``
    for every reveal the endpoint makes (``pg.acting``); a request with no actor is refused
    with ``AccessDenied`` (403 once ``install`` has run)."""
    from fastapi import Depends

    async def dependency(request: Request) -> AsyncIterator[None]:
        who = actor(request)
        if not who:
            raise AccessDenied("no_actor", "this endpoint reveals data: authenticate first")
        with acting_as(actor=who, purpose=purpose):
            yield

    return Depends(dependency)


def consent(guard: Any, *purposes: str, subject: SubjectFromRequest) -> Any:
    """A dependency that refuses the request unless the subject consented to ``purposes``."""
    from fastapi import Depends

    async def dependency(request: Request) -> None:
        lacking = guard.consent.missing(subject(request), purposes)
        if lacking:
            raise ConsentRequired(lacking)

    return Depends(dependency)
