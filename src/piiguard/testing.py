"""Helpers for your own tests: a clock you set, a sink that keeps events, a throwaway Guard.

Real parts, not fakes: :func:`throwaway_guard` is a real Guard on a real SQLite file and a
real key file in a temporary directory, removed afterwards. Every reveal names a registered
purpose; a throwaway Guard has one, ``testing``, that covers every kind
(:func:`allow_test_reveals` registers it on any other Guard)::

    from datetime import timedelta
    from piiguard.testing import SettableClock, CapturingSink, throwaway_guard

    def test_refund_reveals_the_card_once():
        clock, sink = SettableClock(), CapturingSink()
        with throwaway_guard(clock=clock, events=sink) as guard:
            token = guard.vault.tokenize("6222021234567890128", subject="u1", kind="bank_card")
            guard.vault.detokenize(token, actor="finance-1", purpose="testing")
            clock.advance(timedelta(days=31))
        assert [event.action for event in sink.events] == ["detokenize"]
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from piiguard.consent import Purpose
from piiguard.errors import InvalidArgument
from piiguard.events import AccessEvent
from piiguard.guard import Guard
from piiguard.keys import LocalKEK
from piiguard.kinds import BUILTIN_KINDS

__all__ = [
    "TEST_PURPOSE",
    "CapturingSink",
    "SettableClock",
    "allow_test_reveals",
    "throwaway_guard",
]

#: The purpose :func:`allow_test_reveals` registers: it covers every built-in kind.
TEST_PURPOSE = "testing"

#: Where a SettableClock starts unless told: a fixed, timezone-aware moment.
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


class SettableClock:
    """A clock that stands still until moved: pass it as ``Guard.open(clock=...)``.

    Thread-safe; it never goes backwards unless :meth:`set` is told to.
    """

    __slots__ = ("_lock", "_now")

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._now = _aware(start)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (timezone-aware)."""
        moment = _aware(moment)
        with self._lock:
            self._now = moment

    def advance(self, by: timedelta) -> datetime:
        """Move forward by ``by`` and return the new time."""
        if not isinstance(by, timedelta) or by < timedelta(0):
            raise InvalidArgument("advance() takes a non-negative timedelta")
        with self._lock:
            self._now += by
            return self._now

    def __repr__(self) -> str:
        return f"SettableClock({self._now.isoformat()})"


class CapturingSink:
    """An event sink that keeps every access event, in order: ``events``."""

    __slots__ = ("_lock", "events")

    def __init__(self) -> None:
        self.events: list[AccessEvent] = []
        self._lock = threading.Lock()

    def record(self, event: AccessEvent) -> None:
        """Keep ``event``."""
        with self._lock:
            self.events.append(event)

    def actions(self) -> list[str]:
        """The events' actions, in order."""
        return [event.action for event in self.events]

    def clear(self) -> None:
        """Forget every event kept so far."""
        with self._lock:
            self.events.clear()


def allow_test_reveals(guard: Guard, purpose: str = TEST_PURPOSE) -> None:
    """Register ``purpose`` (default ``testing``) on ``guard``, covering every built-in kind,
    so a test can reveal with ``actor=..., purpose="testing"`` (or inside ``pg.acting``).
    Never in production: a real purpose names the kinds it needs and its legal basis."""
    guard.consent.register(
        Purpose(
            purpose,
            basis="contract",
            kinds=frozenset(BUILTIN_KINDS),
            separate=True,
            description="tests only: reveals any kind",
        )
    )


@contextmanager
def throwaway_guard(**options: Any) -> Iterator[Guard]:
    """A real Guard on a new SQLite file and a new local KEK in a temporary directory, both
    removed when the block ends, with the ``testing`` purpose registered
    (:func:`allow_test_reveals`). ``options`` go to :meth:`Guard.open` (``clock=``,
    ``events=``, ``suite=``, ...); ``url`` and ``kek`` are chosen here."""
    if "url" in options or "kek" in options:
        raise InvalidArgument("throwaway_guard chooses its own url and kek")
    with tempfile.TemporaryDirectory(prefix="piiguard-test-") as directory:
        base = Path(directory)
        kek = LocalKEK.generate(base / "kek.key")
        with Guard.open(f"sqlite:///{base / 'store.db'}", kek=kek, **options) as guard:
            allow_test_reveals(guard)
            yield guard


def _aware(moment: object) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise InvalidArgument("the clock takes a timezone-aware datetime")
    return moment
