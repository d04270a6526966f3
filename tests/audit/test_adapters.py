"""The FastAPI and Flask acting adapters (issue 11): the request's authenticated user is the
actor of every reveal the endpoint makes; without one the request gets 403. Real test clients,
real Guards on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

import piiguard as pg
from tests.helpers import CANARY_PHONE

CONTEXT = {"table": "orders", "field": "phone", "id": "o1", "kind": "phone"}


@pytest.fixture
def shop(guard: pg.Guard) -> tuple[pg.Guard, str]:
    guard.consent.register(pg.Purpose("after_sales", basis="contract", kinds={"phone"}))
    return guard, guard.encrypt(CANARY_PHONE, context=CONTEXT, subject="u1")


def test_fastapi_reveals_as_the_authenticated_user(shop: tuple[pg.Guard, str]) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from starlette.authentication import (
        AuthCredentials,
        AuthenticationBackend,
        SimpleUser,
    )
    from starlette.middleware.authentication import AuthenticationMiddleware
    from starlette.requests import HTTPConnection

    from piiguard.integrations import fastapi as adapter

    guard, ciphertext = shop

    class StaffHeader(AuthenticationBackend):
        async def authenticate(self, conn: HTTPConnection) -> Any:
            staff = conn.headers.get("x-staff")
            return None if staff is None else (AuthCredentials(["staff"]), SimpleUser(staff))

    app = FastAPI()
    app.add_middleware(AuthenticationMiddleware, backend=StaffHeader())
    adapter.install(app)

    @app.get("/orders/o1/phone", dependencies=[adapter.acting("after_sales")])
    async def phone() -> dict[str, Any]:
        return {"phone": guard.decrypt(ciphertext, context=CONTEXT), "acting": pg.current_acting()}

    @app.get("/orders/o1/phone-sync", dependencies=[adapter.acting("after_sales")])
    def phone_sync() -> dict[str, str]:
        return {"phone": guard.decrypt(ciphertext, context=CONTEXT)}

    @app.get("/orders/o1/unaudited")
    async def unaudited() -> dict[str, str]:
        return {"phone": guard.decrypt(ciphertext, context=CONTEXT)}

    client = TestClient(app)
    shown = client.get("/orders/o1/phone", headers={"x-staff": "cs-7"})
    assert shown.json() == {"phone": CANARY_PHONE, "acting": ["cs-7", "after_sales"]}
    assert client.get("/orders/o1/phone-sync", headers={"x-staff": "cs-8"}).status_code == 200
    anonymous = client.get("/orders/o1/phone")
    assert anonymous.status_code == 403
    assert anonymous.json()["reason"] == "no_actor"
    assert anonymous.headers["content-type"] == "application/problem+json"
    bare = client.get("/orders/o1/unaudited", headers={"x-staff": "cs-7"})
    assert bare.status_code == 403  # no acting dependency: nobody named, nothing revealed
    assert CANARY_PHONE not in bare.text
    assert [(e.actor, e.purpose) for e in guard.audit.events(action="decrypt")] == [
        ("cs-7", "after_sales"),
        ("cs-8", "after_sales"),
    ]
    assert pg.current_acting() is None


def test_flask_reveals_as_the_authenticated_user(shop: tuple[pg.Guard, str]) -> None:
    from flask import Flask, request

    from piiguard.integrations import flask as adapter

    guard, ciphertext = shop
    app = Flask(__name__)
    adapter.install(app)

    @app.get("/orders/o1/phone")
    @adapter.acting("after_sales", actor=lambda: request.headers.get("x-staff"))
    def phone() -> dict[str, str]:
        return {"phone": guard.decrypt(ciphertext, context=CONTEXT)}

    client = app.test_client()
    assert client.get("/orders/o1/phone", headers={"x-staff": "cs-7"}).json == {
        "phone": CANARY_PHONE
    }
    anonymous = client.get("/orders/o1/phone")
    assert anonymous.status_code == 403
    assert anonymous.json is not None
    assert anonymous.json["reason"] == "no_actor"
    assert [e.actor for e in guard.audit.events(action="decrypt")] == ["cs-7"]
    assert pg.current_acting() is None
