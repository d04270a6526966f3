"""The async face on PostgreSQL: a consent check awaited through ``guard.aio`` against the
same check called directly, one at a time and 200 at once."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

import piiguard as pg
from benchmarks._harness import Ratio
from benchmarks.consent import POSTGRES_URL
from piiguard.keys import LocalKEK

CALLS = 2000
AT_ONCE = 200


def _per_call(guard: pg.Guard) -> tuple[float, float]:
    """Best microseconds per check, direct and awaited, over interleaved rounds."""
    direct = awaited = float("inf")

    async def awaited_round() -> float:
        began = time.perf_counter()
        for _ in range(CALLS):
            await guard.aio.consent.missing("u1", ["marketing_sms"])
        return (time.perf_counter() - began) / CALLS * 1e6

    for _ in range(5):
        began = time.perf_counter()
        for _ in range(CALLS):
            guard.consent.missing("u1", ["marketing_sms"])
        direct = min(direct, (time.perf_counter() - began) / CALLS * 1e6)
        awaited = min(awaited, asyncio.run(awaited_round()))
    return direct, awaited


def _concurrent(guard: pg.Guard) -> float:
    """Checks per second with AT_ONCE awaited together (the loop stays free meanwhile)."""

    async def burst() -> float:
        began = time.perf_counter()
        await asyncio.gather(
            *(guard.aio.consent.missing(f"u{n}", ["marketing_sms"]) for n in range(AT_ONCE))
        )
        return AT_ONCE / (time.perf_counter() - began)

    return max(asyncio.run(burst()) for _ in range(5))


def aio() -> list[Ratio]:
    """An awaited consent check on PostgreSQL against the direct call."""
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect():
            pass
    except OperationalError:
        print("guard.aio.consent.missing, PostgreSQL: skipped (no PostgreSQL)")
        return []
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    home = Path(tempfile.mkdtemp())
    try:
        with pg.Guard.open(
            POSTGRES_URL, kek=LocalKEK.generate(home / "kek.key"), schema=schema
        ) as guard:
            guard.consent.register(pg.Purpose("marketing_sms", kinds={"phone"}))
            guard.consent.publish_notice("n1", purposes=["marketing_sms"])
            guard.consent.grant("u1", "marketing_sms", notice="n1")
            direct, awaited = _per_call(guard)
            rate = _concurrent(guard)
            print(
                f"consent check on PostgreSQL: direct {direct:.1f} us, awaited through "
                f"guard.aio {awaited:.1f} us; {AT_ONCE} awaited at once: {rate:,.0f} checks/s"
            )
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
    return [Ratio("consent check on PostgreSQL, awaited / direct", awaited, direct, None)]
