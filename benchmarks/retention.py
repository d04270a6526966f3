"""Retention: sweep throughput on SQLite with a no-op hook."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import piiguard as pg
from benchmarks._harness import Ratio
from piiguard.keys import LocalKEK

RECORDS = 200_000


def retention() -> list[Ratio]:
    """Due records swept per second (bar: >= 50,000/s)."""
    home = Path(tempfile.mkdtemp())
    guard = pg.Guard.open(f"sqlite:///{home / 'bench.db'}", kek=LocalKEK.generate(home / "kek.key"))
    guard.retention.policy(pg.RetentionPolicy("chats", keep=timedelta(days=30)))
    guard.retention.hook("chats")(lambda ids: None)
    past = datetime.now(UTC) - timedelta(days=60)
    table = guard.store.tables.retention
    rows = [
        {
            "category": "chats",
            "record_id": f"c{i}",
            "subject": None,
            "event_at": past,
            "due_at": past + timedelta(days=30),
            "status": "pending",
            "attempts": 0,
        }
        for i in range(RECORDS)
    ]
    with guard.store.transaction() as connection:  # set-up in bulk, not measured
        connection.execute(table.insert(), rows)
    for batch in (1000, 5000):
        start = time.perf_counter()
        report = guard.retention.sweep(batch=batch)
        rate = report.done / (time.perf_counter() - start)
        print(f"sweep, batch={batch}: {report.done:,} records at {rate:,.0f}/s (bar: >= 50,000/s)")
        with guard.store.transaction() as connection:
            connection.execute(table.update().values(status="pending", done_at=None))
    guard.close()
    return []
