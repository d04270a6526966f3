"""Test configuration: hypothesis profiles, and real stores on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from piiguard import Guard
from piiguard.keys import LocalKEK
from piiguard.testing import allow_test_reveals
from tests.backends import postgres_schema

settings.register_profile("default", deadline=None, max_examples=200)
settings.register_profile(
    "ci", deadline=None, max_examples=500, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "default")

StoreTarget = tuple[str, str | None]


@pytest.fixture
def kek(tmp_path: Path) -> LocalKEK:
    """A fresh local KEK in tmp_path."""
    return LocalKEK.generate(tmp_path / "kek.key")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreTarget]:
    """(url, schema) of a fresh, empty store on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'piiguard.db'}", None
    else:
        with postgres_schema() as target:
            yield target


@pytest.fixture
def guard(store_target: StoreTarget, kek: LocalKEK) -> Iterator[Guard]:
    """A Guard on each backend, closed afterwards, with the ``testing`` purpose registered
    (reveals in tests pass ``actor="tester", purpose="testing"``)."""
    url, schema = store_target
    with Guard.open(url, kek=kek, schema=schema) as opened:
        allow_test_reveals(opened)
        yield opened
