"""Consent: a warm check, the decorator's overhead, and a 1M-subject campaign filter."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import piiguard as pg
from benchmarks._harness import Case, Ratio, best_ns
from piiguard.keys import LocalKEK

SUBJECTS = 1_000_000


def consent() -> list[Ratio]:
    """check on a warm Guard (SQLite), the decorator against it, and filter over 1M subjects."""
    home = Path(tempfile.mkdtemp())
    guard = pg.Guard.open(f"sqlite:///{home / 'bench.db'}", kek=LocalKEK.generate(home / "kek.key"))
    guard.consent.register(pg.Purpose("marketing_sms", kinds={"phone"}))
    guard.consent.publish_notice("n1", purposes=["marketing_sms"])
    guard.consent.grant("u1", "marketing_sms", notice="n1")

    @guard.requires_consent("marketing_sms")
    def promo(user_id: str) -> None:
        return None

    guard.consent.check("u1", "marketing_sms")
    times = best_ns(
        {
            "check": Case("c('u1', 'marketing_sms')", {"c": guard.consent.check}),
            "decorated": Case("f('u1')", {"f": promo}),
        },
        number=5000,
    )
    print(f"guard.consent.check, warm, SQLite: {times['check'] / 1000:.1f} us (bar: <= 5 us)")
    subjects = [f"customer-{i}" for i in range(SUBJECTS)]
    _grant_every_tenth(guard, subjects)
    start = time.perf_counter()
    audience = sum(1 for _ in guard.consent.filter(subjects, "marketing_sms"))
    elapsed = time.perf_counter() - start
    print(f"guard.consent.filter over {SUBJECTS:,} subjects: {elapsed:.2f} s (bar: <= 3 s)")
    print(f"  of which {audience:,} have consent")
    guard.close()
    return [Ratio("@requires_consent call / bare check", times["decorated"], times["check"], 2.0)]


def _grant_every_tenth(guard: pg.Guard, subjects: list[str]) -> None:
    """Set-up, not measured: one grant event for every tenth subject, written in bulk."""
    events = guard.store.tables.consent_events
    now = datetime.now(UTC)
    rows = [
        {
            "subject": guard._keyring.subject_scope(subject),  # bench set-up
            "purpose": "marketing_sms",
            "action": "grant",
            "notice": "n1",
            "purpose_version": 1,
            "evidence": None,
            "at": now,
        }
        for subject in subjects[::10]
    ]
    with guard.store.transaction() as connection:
        connection.execute(events.insert(), rows)
