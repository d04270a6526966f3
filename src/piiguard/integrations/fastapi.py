"""FastAPI: a consent dependency and a 403 problem+json handler (RFC 9457).

    app = FastAPI()
    piiguard.integrations.fastapi.install(app)

    needs_sms = consent(guard, "marketing_sms", subject=path("user_id"))

    @app.post("/promo/{user_id}", dependencies=[needs_sms])
    async def promo(user_id: str) -> dict[str, str]: ...

``@guard.requires_consent`` on an endpoint works too once ``install`` has run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from piiguard.errors import ConsentRequired
from piiguard.integrations._problem import MEDIA_TYPE, consent_problem

__all__ = ["consent", "install", "path"]

SubjectFromRequest = Callable[[Request], str]


def path(name: str) -> SubjectFromRequest:
    """Read the subject from a path parameter."""
    return lambda request: str(request.path_params[name])


async def _problem_response(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ConsentRequired)  # noqa: S101 - registered for this type only
    return JSONResponse(consent_problem(error), status_code=403, media_type=MEDIA_TYPE)


def install(app: FastAPI) -> None:
    """Answer every ``ConsentRequired`` with 403 and an RFC 9457 problem body."""
    app.add_exception_handler(ConsentRequired, _problem_response)


def consent(guard: Any, *purposes: str, subject: SubjectFromRequest) -> Any:
    """A dependency that refuses the request unless the subject consented to ``purposes``."""
    from fastapi import Depends

    async def dependency(request: Request) -> None:
        lacking = guard.consent.missing(subject(request), purposes)
        if lacking:
            raise ConsentRequired(lacking)

    return Depends(dependency)
