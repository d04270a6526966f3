"""Copies of a store, as an operator's backup would take them (a file copy, a schema copy)."""

from __future__ import annotations

import sqlite3
import uuid

from sqlalchemy import create_engine, text

from tests.conftest import StoreTarget


def copy_store(target: StoreTarget) -> StoreTarget:
    """A consistent copy of the store at ``target``: what restoring a backup gives.

    SQLite through the online backup API; PostgreSQL into a new schema, table by table (the
    caller drops it with :func:`drop_copy`).
    """
    url, schema = target
    if url.startswith("sqlite:///"):
        source_path = url.removeprefix("sqlite:///")
        copy_path = f"{source_path}.copy-{uuid.uuid4().hex[:8]}"
        with sqlite3.connect(source_path) as source, sqlite3.connect(copy_path) as copy:
            source.backup(copy)
        return f"sqlite:///{copy_path}", None
    assert schema is not None
    name = f"{schema}_copy_{uuid.uuid4().hex[:6]}"
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            tables = connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = :schema"),
                {"schema": schema},
            ).scalars()
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
            for table in tables:
                connection.execute(
                    text(
                        f'CREATE TABLE "{name}"."{table}" (LIKE "{schema}"."{table}" INCLUDING ALL)'
                    )
                )
                connection.execute(
                    text(f'INSERT INTO "{name}"."{table}" SELECT * FROM "{schema}"."{table}"')  # noqa: S608
                )
    finally:
        engine.dispose()
    return url, name


def drop_copy(target: StoreTarget) -> None:
    """Drop a PostgreSQL copy (a SQLite copy lives in tmp_path and goes with it)."""
    url, schema = target
    if schema is None:
        return
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()
