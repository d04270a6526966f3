"""FF1 against the ff3 (FF3-1) and pyffx packages, per value and in batches."""

from __future__ import annotations

import os
import random
import time

from benchmarks._harness import Case, Ratio, best_ns
from piiguard.tokens import FF1

PHONE = "13812345678"


def tokenization() -> list[Ratio]:
    """FF1 per value and per value in a 100k batch, against ff3's per-value time."""
    try:
        import pyffx
        from ff3 import FF3Cipher
    except ImportError:
        print("ff3/pyffx: not installed (pip install -e '.[bench]')")
        return []
    key = os.urandom(16)
    ff1 = FF1(key)
    ff3 = FF3Cipher(key.hex(), "D8E7920AFA330A73")
    ffx = pyffx.Integer(b"benchmark-key", length=11)
    times = best_ns(
        {
            "ff1": Case("f.encrypt(v)", {"f": ff1, "v": PHONE}),
            "ff3": Case("f.encrypt(v)", {"f": ff3, "v": PHONE}),
            "pyffx": Case("f.encrypt(v)", {"f": ffx, "v": int(PHONE)}),
        },
        number=300,
        rounds=7,
    )
    batch = [f"1{random.randrange(10**10):010d}" for _ in range(100_000)]
    best_batch = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        ff1.encrypt_many(batch)
        best_batch = min(best_batch, (time.perf_counter() - start) / len(batch) * 1e9)
    return [
        Ratio("FF1.encrypt(11 digits) / ff3 FF3-1 encrypt", times["ff1"], times["ff3"], 1 / 3),
        Ratio("FF1.encrypt_many(100k) per value / ff3 encrypt", best_batch, times["ff3"], 0.1),
        Ratio("pyffx encrypt / ff3 encrypt", times["pyffx"], times["ff3"], None),
    ]
