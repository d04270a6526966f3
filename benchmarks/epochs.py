"""Key epochs: advance_epoch throughput, and what the liveness check costs an encryption."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import piiguard as pg
from benchmarks._harness import Case, Ratio, best_ns
from piiguard.keys import LocalKEK

PHONE = "13812345678"
CONTEXT = {"table": "customers", "field": "phone", "id": "u1"}
KEYS = 50_000
#: The issue's goal for advance_epoch on SQLite, in data keys rewrapped per second.
GOAL_KEYS_PER_SECOND = 20_000


def _plant_keys(guard: pg.Guard, count: int) -> None:
    """``count`` subject data keys, created the way encryption creates them, in one
    transaction (making them one encryption at a time would time the setup, not the advance)."""
    keyring = guard._keyring
    with guard.store.transaction() as connection:
        for index in range(count):
            keyring._data._create(connection, f"subject:bench{index:08d}", "aead", 32, 1)


def epochs() -> list[Ratio]:
    """Rewrap throughput of advance_epoch on SQLite, and encrypt with and without the
    liveness check (LIVENESS_INTERVAL against never looking)."""
    home = Path(tempfile.mkdtemp())
    kek = LocalKEK.generate(home / "kek.key")
    guard = pg.Guard.open(f"sqlite:///{home / 'bench.db'}", kek=kek)
    _plant_keys(guard, KEYS)
    started = time.perf_counter()
    report = guard.keys.advance_epoch(batch_size=1000)
    elapsed = time.perf_counter() - started
    rate = report.rewrapped / elapsed
    verdict = "ok" if rate >= GOAL_KEYS_PER_SECOND else "MISSED"
    print(
        f"advance_epoch on SQLite: {report.rewrapped} data keys rewrapped in {elapsed:.2f} s = "
        f"{rate:,.0f} keys/s (goal >= {GOAL_KEYS_PER_SECOND:,}/s) {verdict}"
    )

    checked = pg.Guard.open(f"sqlite:///{home / 'live.db'}", kek=kek)
    unchecked = pg.Guard.open(f"sqlite:///{home / 'live.db'}", kek=kek)
    unchecked._keyring._data._liveness = float("inf")  # never looks for shreds elsewhere
    for opened in (checked, unchecked):
        opened.encrypt(PHONE, context=CONTEXT, subject="u1")
    times = best_ns(
        {
            "unchecked": Case(
                "g.encrypt(v, context=c, subject='u1')", {"g": unchecked, "v": PHONE, "c": CONTEXT}
            ),
            "checked": Case(
                "g.encrypt(v, context=c, subject='u1')", {"g": checked, "v": PHONE, "c": CONTEXT}
            ),
        },
        number=100_000,  # long enough rounds (>= 0.1 s) that each includes liveness polls
        rounds=7,
    )
    for opened in (guard, checked, unchecked):
        opened.close()
    return [
        Ratio(
            "guard.encrypt(subject=) with liveness / without",
            times["checked"],
            times["unchecked"],
            1.1,
        )
    ]
