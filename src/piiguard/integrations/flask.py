"""Flask: a consent decorator for views and a 403 problem+json handler (RFC 9457).

app = Flask(__name__)
piiguard.integrations.flask.install(app)

@app.post("/promo/<user_id>")
@consent(guard, "marketing_sms", subject=lambda: request.view_args["user_id"])
def promo(user_id: str): ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import Flask, Response, jsonify

from piiguard.errors import ConsentRequired
from piiguard.integrations._problem import MEDIA_TYPE, consent_problem

__all__ = ["consent", "install"]

P = ParamSpec("P")
R = TypeVar("R")


def _problem_response(error: ConsentRequired) -> Response:
    response = jsonify(consent_problem(error))
    response.status_code = 403
    response.mimetype = MEDIA_TYPE
    return response


def install(app: Flask) -> None:
    """Answer every ``ConsentRequired`` with 403 and an RFC 9457 problem body."""
    app.register_error_handler(ConsentRequired, _problem_response)


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
