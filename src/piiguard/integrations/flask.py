"""Flask: consent and acting decorators for views and 403 problem+json handlers (RFC 9457).

app = Flask(__name__)
piiguard.integrations.flask.install(app)

@app.post("/promo/<user_id>")
@consent(guard, "marketing_sms", subject=lambda: request.view_args["user_id"])
def promo(user_id: str): ...

@app.get("/orders/<order_id>/phone")
@acting("after_sales", actor=lambda: g.get("user_id"))   # every reveal in the view: audited as them
def phone(order_id: str): ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import Flask, Response, jsonify

from piiguard.errors import AccessDenied, ConsentRequired
from piiguard.events import acting as acting_as
from piiguard.integrations._problem import MEDIA_TYPE, access_problem, consent_problem

__all__ = ["acting", "consent", "install"]

P = ParamSpec("P")
R = TypeVar("R")


def _problem_response(error: ConsentRequired | AccessDenied) -> Response:
    body = access_problem(error) if isinstance(error, AccessDenied) else consent_problem(error)
    response = jsonify(body)
    response.status_code = 403
    response.mimetype = MEDIA_TYPE
    return response


def install(app: Flask) -> None:
    """Answer every ``ConsentRequired`` and ``AccessDenied`` with 403 and an RFC 9457
    problem body."""
    app.register_error_handler(ConsentRequired, _problem_response)
    app.register_error_handler(AccessDenied, _problem_response)


def acting(
    purpose: str, *, actor: Callable[[], str | None]
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Name the actor (``actor()``: the request's authenticated user) and ``purpose`` for
    every reveal the view makes (``pg.acting``); with no actor, ``AccessDenied`` (403)."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            who = actor()
            if not who:
                raise AccessDenied("no_actor", "this view reveals data: authenticate first")
            with acting_as(actor=who, purpose=purpose):
                return view(*args, **kwargs)

        return wrapper

    return decorate


def consent(
    guard: Any, *purposes: str, subject: Callable[[], str]
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Refuse the view unless the subject (read from the request by ``subject()``) consented."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            lacking = guard.consent.missing(subject(), purposes)
            if lacking:
                raise ConsentRequired(lacking)
            return view(*args, **kwargs)

        return wrapper

    return decorate
