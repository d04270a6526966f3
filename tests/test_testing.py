"""piiguard.testing: the helpers users' tests get are real parts that behave as documented."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import piiguard as pg
from piiguard.testing import CapturingSink, SettableClock, throwaway_guard

CARD = "6222021234567890128"


def test_the_clock_stands_still_until_moved() -> None:
    clock = SettableClock(datetime(2026, 5, 1, tzinfo=UTC))
    assert clock() == clock() == datetime(2026, 5, 1, tzinfo=UTC)
    assert clock.advance(timedelta(hours=2)) == datetime(2026, 5, 1, 2, tzinfo=UTC)
    clock.set(datetime(2027, 1, 1, tzinfo=UTC))
    assert clock() == datetime(2027, 1, 1, tzinfo=UTC)
    with pytest.raises(pg.InvalidArgument):
        clock.set(datetime(2027, 1, 1))
    with pytest.raises(pg.InvalidArgument):
        clock.advance(timedelta(seconds=-1))
    assert clock() == datetime(2027, 1, 1, tzinfo=UTC)  # a refusal changes nothing


def test_the_guard_follows_the_settable_clock() -> None:
    """A vault entry with a time to live expires when the test moves the clock."""
    clock = SettableClock()
    with throwaway_guard(clock=clock) as guard:
        token = guard.vault.tokenize(CARD, subject="u1", kind="bank_card", ttl=timedelta(days=30))
        assert guard.vault.detokenize(token, actor="tester", purpose="testing") == CARD
        clock.advance(timedelta(days=30))
        with pytest.raises(pg.TokenExpired):
            guard.vault.detokenize(token, actor="tester", purpose="testing")


def test_the_sink_keeps_every_event_in_order() -> None:
    sink = CapturingSink()
    with throwaway_guard(events=sink) as guard:
        guard.consent.register(
            pg.Purpose("refund", basis="contract", kinds={"bank_card"}, separate=True)
        )
        token = guard.vault.tokenize(CARD, subject="u1", kind="bank_card")
        text = guard.encrypt(CARD, context={"t": "cards"})
        guard.vault.detokenize(token, actor="finance-1", purpose="refund")
        guard.decrypt(text, context={"t": "cards"}, actor="finance-1", purpose="refund")
    assert sink.actions() == ["detokenize", "decrypt"]
    assert {event.actor for event in sink.events} == {"finance-1"}
    assert CARD not in repr(sink.events)
    sink.clear()
    assert sink.events == []


def test_the_sink_is_safe_across_threads() -> None:
    sink = CapturingSink()
    event = pg.AccessEvent("decrypt", "a", "p", datetime(2026, 1, 1, tzinfo=UTC))

    def record_many() -> None:
        for _ in range(1000):
            sink.record(event)

    workers = [threading.Thread(target=record_many) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(sink.events) == 4000


def test_the_throwaway_guard_leaves_nothing_behind() -> None:
    with throwaway_guard() as guard:
        url = str(guard.store.engine.url)
        directory = Path(url.removeprefix("sqlite:///")).parent
        assert (directory / "kek.key").exists()
        assert (
            guard.decrypt(
                guard.encrypt("x", context={"a": "b"}),
                context={"a": "b"},
                actor="tester",
                purpose="testing",
            )
            == "x"
        )
    assert not directory.exists()
    with pytest.raises(pg.InvalidArgument), throwaway_guard(url="sqlite://"):
        pass
