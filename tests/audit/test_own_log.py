"""piiguard logs its own operations through structlog without PII (issue 11), and lists the
records whose retention hooks wait for a retry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import piiguard as pg
from piiguard.testing import SettableClock, throwaway_guard
from tests.helpers import CANARY_ID, CANARY_PHONE, assert_no_canary


def test_operations_are_logged_without_subjects_or_values() -> None:
    clock = SettableClock()
    with throwaway_guard(clock=clock) as guard, capture_logs() as logs:
        guard.encrypt(CANARY_PHONE, context={"table": "t", "field": "f"}, subject=CANARY_ID)
        with pg.acting(actor="ops-1", purpose="testing"):
            guard.shred(CANARY_ID)
            guard.erase(CANARY_PHONE)
        guard.retention.sweep()
    events = [entry["event"] for entry in logs]
    assert {"shred", "erase", "sweep"} <= set(events)
    assert [e["actor"] for e in logs if e["event"] == "shred"] == ["ops-1"]
    assert_no_canary(repr(logs))


def test_failing_hooks_are_listed_for_retry_without_their_messages() -> None:
    clock = SettableClock()
    with throwaway_guard(clock=clock) as guard:
        guard.retention.policy(
            pg.RetentionPolicy("orders", keep=timedelta(days=1), after="completed")
        )

        @guard.retention.hook("orders")
        def refuse(ids: list[str]) -> None:
            raise RuntimeError(f"cannot delete order of {CANARY_PHONE}")

        guard.retention.track("orders", "o1", subject="u1", at=clock())
        clock.advance(timedelta(days=2))
        assert guard.retention.failures() == []
        with capture_logs() as logs:
            report = guard.retention.sweep()
        assert report.failed == 1
        (failure,) = guard.retention.failures()
    assert (failure.category, failure.record_id, failure.attempts) == ("orders", "o1", 1)
    assert failure.error == "RuntimeError"
    assert failure.next_attempt_at > clock()
    warned = [entry for entry in logs if entry["event"] == "retention_hook_failed"]
    assert warned == [
        {
            "event": "retention_hook_failed",
            "category": "orders",
            "records": 1,
            "error": "RuntimeError",
            "log_level": "warning",
        }
    ]
    assert_no_canary(repr(logs) + repr(failure))


@pytest.mark.parametrize("action", ["advance_epoch", "rotate_kek"])
def test_key_operations_are_logged(action: str, tmp_path: Path) -> None:
    with throwaway_guard() as guard, capture_logs() as logs:
        if action == "advance_epoch":
            guard.keys.advance_epoch()
        else:
            guard.keys.rotate_kek(pg.keys.LocalKEK.generate(tmp_path / "new.key"))
    assert action in [entry["event"] for entry in logs]
