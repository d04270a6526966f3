"""FF1 against the ff3 (FF3-1) and pyffx packages, per value and in batches."""

from __future__ import annotations

import hmac
import os
import random
import tempfile
import time
from pathlib import Path

import piiguard as pg
from benchmarks._harness import Case, Ratio, best_ns
from piiguard.keys import LocalKEK
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


def keyed_tokens_and_vault() -> list[Ratio]:
    """guard.tokens.token against a bare HMAC-SHA256; vault batch throughput on SQLite."""
    home = Path(tempfile.mkdtemp())
    guard = pg.Guard.open(f"sqlite:///{home / 'bench.db'}", kek=LocalKEK.generate(home / "kek.key"))
    guard.tokens.token(PHONE, kind="phone")
    key = os.urandom(32)
    times = best_ns(
        {
            "hmac": Case(
                "digest(k, v, 'sha256')", {"digest": hmac.digest, "k": key, "v": PHONE.encode()}
            ),
            "token": Case("t(v, kind='phone')", {"t": guard.tokens.token, "v": PHONE}),
        },
        number=5000,
    )
    cards = [f"62220{random.randrange(10**13):013d}" for _ in range(20_000)]
    cards = [card + _luhn_digit(card) for card in cards]
    start = time.perf_counter()
    for offset in range(0, len(cards), 5000):
        guard.vault.tokenize_many(
            cards[offset : offset + 5000], subject=f"u{offset}", kind="bank_card"
        )
    per_second = len(cards) / (time.perf_counter() - start)
    print(f"vault tokenize_many on SQLite: {per_second:,.0f} values/s (bar: >= 20,000/s)")
    guard.close()
    return [
        Ratio("guard.tokens.token(phone) / bare HMAC-SHA256", times["token"], times["hmac"], 2.0)
    ]


def _luhn_digit(partial: str) -> str:
    for digit in "0123456789":
        if pg.is_valid(partial + digit, "bank_card"):
            return digit
    raise AssertionError("unreachable")
