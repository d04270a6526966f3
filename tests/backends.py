"""Real backends for the tests: a SQLite file, and the PostgreSQL on 127.0.0.1:5432.

A backend that is absent skips its tests on a developer's machine and fails them when
PIIGUARD_REQUIRE_BACKENDS=1 (set by .ci/run).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

POSTGRES_URL = os.environ.get(
    "PIIGUARD_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def require_or_skip(reason: str) -> NoReturn:
    """Skip, or fail when the environment says every backend must be there."""
    if os.environ.get("PIIGUARD_REQUIRE_BACKENDS") == "1":
        pytest.fail(f"required backend missing: {reason}")
    pytest.skip(reason)


@contextmanager
def postgres_schema() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL schema (url, name), dropped afterwards."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        require_or_skip("psycopg is not installed (pip install 'piiguard[postgres]')")
    name = f"pgtest_{uuid.uuid4().hex[:12]}"
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect():
            pass
    except OperationalError:
        engine.dispose()
        require_or_skip("no PostgreSQL at 127.0.0.1:5432")
    try:
        yield POSTGRES_URL, name
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        engine.dispose()
