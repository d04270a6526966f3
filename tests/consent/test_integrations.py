"""The FastAPI and Flask adapters, driven by the frameworks' own test clients."""

from __future__ import annotations

import pytest

import piiguard as pg
from tests.consent.test_consent import NOTICE, _setup


@pytest.fixture
def shop(guard: pg.Guard) -> pg.Guard:
    """A Guard with the shop's purposes; u1 consented to SMS marketing."""
    _setup(guard)
    guard.consent.grant("u1", "marketing_sms", notice=NOTICE)
    return guard


def test_fastapi_dependency_answers_403_with_a_problem_body(shop: pg.Guard) -> None:
    """RFC 9457: application/problem+json naming the missing purposes; consent lets it through."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from piiguard.integrations import fastapi as adapter

    app = FastAPI()
    adapter.install(app)
    needs_sms = adapter.consent(shop, "marketing_sms", subject=adapter.path("user_id"))

    @app.post("/promo/{user_id}", dependencies=[needs_sms])
    async def promo(user_id: str) -> dict[str, str]:
        return {"sent": user_id}

    @app.post("/face/{user_id}")
    @shop.requires_consent("face_login", subject="user_id")
    async def face(user_id: str) -> dict[str, str]:
        return {"ok": user_id}

    client = TestClient(app)
    assert client.post("/promo/u1").json() == {"sent": "u1"}
    refused = client.post("/promo/u2")
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json() == {
        "type": "urn:piiguard:problem:consent-required",
        "title": "Consent required",
        "status": 403,
        "detail": "consent required for: marketing_sms",
        "missing_purposes": ["marketing_sms"],
    }
    assert client.post("/face/u1").json()["missing_purposes"] == ["face_login"]
    shop.consent.withdraw("u1", "marketing_sms")
    assert client.post("/promo/u1").status_code == 403


def test_flask_decorator_answers_403_with_a_problem_body(shop: pg.Guard) -> None:
    """The Flask view runs only with consent; otherwise the same problem body."""
    from flask import Flask, request

    from piiguard.integrations import flask as adapter

    app = Flask(__name__)
    adapter.install(app)

    @app.post("/promo/<user_id>")
    @adapter.consent(
        shop, "marketing_sms", subject=lambda: str((request.view_args or {})["user_id"])
    )
    def promo(user_id: str) -> dict[str, str]:
        return {"sent": user_id}

    client = app.test_client()
    assert client.post("/promo/u1").get_json() == {"sent": "u1"}
    refused = client.post("/promo/u2")
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["missing_purposes"] == ["marketing_sms"]


def test_fastapi_subject_and_actor_come_from_any_dependency_and_never_block_the_loop(
    shop: pg.Guard,
) -> None:
    """The subject is the authenticated customer (an app dependency, not a path parameter),
    the actor a staff dependency; the consent read runs on a worker thread, not on the
    event loop (the store read used to block it)."""
    import threading

    from fastapi import Depends, FastAPI, Header
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from piiguard.integrations import fastapi as adapter

    def current_customer(x_customer: str | None = Header(default=None)) -> str | None:
        return x_customer

    def current_staff(x_staff: str | None = Header(default=None)) -> str | None:
        return x_staff

    reads: list[str] = []

    def seen(*_: object) -> None:
        reads.append(threading.current_thread().name)

    app = FastAPI()
    adapter.install(app)
    needs_sms = adapter.consent(shop, "marketing_sms", subject=Depends(current_customer))
    as_support = adapter.acting("testing", actor=Depends(current_staff))

    @app.post("/promo", dependencies=[needs_sms])
    async def promo() -> dict[str, object]:
        return {"sent": True, "loop": threading.current_thread().name}

    @app.get("/who", dependencies=[as_support])
    async def who() -> dict[str, object]:
        return {"acting": pg.events.current_acting()}

    client = TestClient(app)
    event.listen(shop.store.engine, "before_cursor_execute", seen)
    try:
        reads.clear()
        answer = client.post("/promo", headers={"x-customer": "u1"}).json()
        assert answer["sent"] is True
        assert reads  # the consent ledger read the store ...
        assert answer["loop"] not in reads  # ... but not on the event loop's thread
    finally:
        event.remove(shop.store.engine, "before_cursor_execute", seen)
    refused = client.post("/promo", headers={"x-customer": "u2"})
    assert refused.json()["missing_purposes"] == ["marketing_sms"]
    anonymous = client.post("/promo")
    assert anonymous.status_code == 403
    assert client.get("/who", headers={"x-staff": "cs-7"}).json() == {"acting": ["cs-7", "testing"]}
    assert client.get("/who").status_code == 403


def test_fastapi_an_actor_that_is_no_name_is_refused_not_a_server_error(shop: pg.Guard) -> None:
    """Found by the second review of issue 13: a str subclass, a newline or 200 characters
    as the actor gave 500."""
    from fastapi import Depends, FastAPI, Header
    from fastapi.testclient import TestClient

    from piiguard.integrations import fastapi as adapter

    def staff(x_staff: str | None = Header(default=None)) -> str | None:
        return x_staff

    app = FastAPI()
    adapter.install(app)

    @app.get("/who", dependencies=[adapter.acting("testing", actor=Depends(staff))])
    async def who() -> dict[str, bool]:
        return {"ok": True}

    client = TestClient(app)
    for actor in ("x" * 200, "cs-7\u0007"):
        answer = client.get("/who", headers={"x-staff": actor})
        assert answer.status_code == 403
        assert answer.json()["type"].endswith("access-denied")
    assert client.get("/who", headers={"x-staff": "cs-7"}).status_code == 200
