"""guard.aio: every store call as a coroutine, on the real stores, off the event loop, with
the caller's pg.acting context, on a bounded pool of threads."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import event

import piiguard as pg
from piiguard.aio import DEFAULT_THREADS
from tests.helpers import CANARY_PHONE

CONTEXT = {"table": "customers", "field": "phone", "id": "1", "kind": "phone"}
NOTICE = "privacy-2026"


async def _life(guard: pg.Guard) -> tuple[set[str], str]:
    aio = guard.aio
    await aio.consent.register(pg.Purpose("marketing_sms", basis="consent", kinds={"phone"}))
    await aio.consent.register(pg.Purpose("after_sales", basis="contract", kinds={"phone"}))
    await aio.consent.publish_notice(NOTICE, purposes=["marketing_sms"], text="SMS offers")
    before = await aio.consent.missing("customer-1", ["marketing_sms"])
    await aio.consent.grant("customer-1", "marketing_sms", notice=NOTICE)
    assert await aio.consent.missing("customer-1", ["marketing_sms"]) == set()
    sealed = await aio.encrypt(CANARY_PHONE, context=CONTEXT, subject="customer-1")
    with pg.acting(actor="cs-7", purpose="after_sales"):
        opened = await aio.decrypt(sealed, context=CONTEXT)
    return before, opened


def test_store_calls_run_off_the_loop_with_the_caller_s_context(guard: pg.Guard) -> None:
    threads: list[str] = []

    def seen(*_: object) -> None:
        threads.append(threading.current_thread().name)

    event.listen(guard.store.engine, "before_cursor_execute", seen)
    try:
        loop_thread = threading.current_thread().name
        before, opened = asyncio.run(_life(guard))
    finally:
        event.remove(guard.store.engine, "before_cursor_execute", seen)
    assert before == {"marketing_sms"}
    assert opened == CANARY_PHONE
    assert threads
    assert loop_thread not in threads  # asyncio.run's loop runs on this thread
    assert all(name.startswith("piiguard-aio") for name in threads)
    (reveal,) = [e for e in guard.audit.events(action="decrypt") if e.result == "ok"]
    assert (reveal.actor, reveal.purpose) == ("cs-7", "after_sales")  # acting went along


def test_errors_come_back_typed_and_calls_are_bounded(guard: pg.Guard) -> None:
    sealed = guard.encrypt(CANARY_PHONE, context=CONTEXT, subject="customer-1")
    used: set[str] = set()

    async def burst() -> None:
        with pytest.raises(pg.AccessDenied):
            await guard.aio.decrypt(sealed, context=CONTEXT)  # who? why?

        def record(*_: object) -> None:
            used.add(threading.current_thread().name)

        event.listen(guard.store.engine, "before_cursor_execute", record)
        try:
            await asyncio.gather(
                *(
                    guard.aio.vault.tokenize(CANARY_PHONE, subject=f"s{n}", kind="phone")
                    for n in range(64)
                )
            )
        finally:
            event.remove(guard.store.engine, "before_cursor_execute", record)

    asyncio.run(burst())
    workers = {name for name in used if name.startswith("piiguard-aio")}
    assert 1 <= len(workers) <= DEFAULT_THREADS
    with pytest.raises(pg.InvalidArgument):
        _ = guard.aio.store  # not a call
    with pytest.raises(AttributeError):
        _ = guard.aio._store


def test_a_refused_value_stays_out_of_the_face_s_frames_and_close_works_from_inside(
    guard: pg.Guard,
) -> None:
    """Found by the second review of issue 13: the awaited call's arguments stayed in the
    face's frame, and closing the Guard from one of its own threads half closed it."""
    from tests.helpers import piiguard_frames_text

    async def refused() -> BaseException:
        try:
            await guard.aio.encrypt(CANARY_PHONE, context="not a mapping")
        except pg.PiiGuardError as error:
            return error
        raise AssertionError("not refused")

    error = asyncio.run(refused())
    assert CANARY_PHONE not in piiguard_frames_text(error)
    asyncio.run(guard.aio.close())
    with pytest.raises(pg.StoreError):
        asyncio.run(guard.aio.consent.missing("customer-1", []))
    assert guard.store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
