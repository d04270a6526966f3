"""Audited reveals: single decrypts with 1 and 8 threads (group commit) on SQLite and
PostgreSQL against the same decrypt unaudited, and the batch forms per value against a bare
AESGCM call."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import piiguard as pg
from benchmarks._harness import Case, Ratio, best_ns
from piiguard.keys import LocalKEK
from piiguard.testing import allow_test_reveals

PHONE = "13812345678"
CONTEXT = {"table": "customers", "field": "phone", "id": "u1"}
GOAL_PER_SECOND = 20_000
BATCH = 1000


def _throughput(call: Callable[[], object], threads: int, per_thread: int) -> float:
    """Calls per second with ``threads`` threads each making ``per_thread`` calls."""
    start = threading.Barrier(threads + 1)

    def work() -> None:
        start.wait()
        for _ in range(per_thread):
            call()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return threads * per_thread / (time.perf_counter() - began)


def _postgres(home: Path) -> pg.Guard | None:
    url = os.environ.get(
        "PIIGUARD_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    try:
        return pg.Guard.open(
            url, kek=LocalKEK.generate(home / "pg.key"), schema=f"bench_{os.getpid()}"
        )
    except pg.StoreError:
        print("PostgreSQL: not reachable at 127.0.0.1:5432, skipped")
        return None


def _drop(guard: pg.Guard) -> None:
    from sqlalchemy import text

    with guard.store.engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "bench_{os.getpid()}" CASCADE'))


def _audited(guard: pg.Guard, backend: str) -> list[Ratio]:
    allow_test_reveals(guard)
    ciphertext = guard.encrypt(PHONE, context=CONTEXT, subject="u1")
    unaudited = guard._envelope.decrypt_unrecorded  # the same decrypt, with no audit event

    def audited() -> object:
        return guard.decrypt(ciphertext, context=CONTEXT, actor="svc:bench", purpose="testing")

    def bare() -> object:
        return unaudited(ciphertext, context=CONTEXT)

    rows = []
    base = max(_throughput(bare, 1, 20_000) for _ in range(3))
    for threads, per_thread in ((1, 2000), (8, 1000)):
        rate = max(_throughput(audited, threads, per_thread) for _ in range(3))
        goal = "" if threads == 1 else f" (goal >= {GOAL_PER_SECOND:,}/s)"
        print(f"audited decrypts/s, {threads} thread(s), {backend}: {rate:,.0f}{goal}")
        rows.append(
            Ratio(
                f"audited decrypt, {threads} thread(s), {backend} / unaudited",
                1e9 / rate,
                1e9 / base,
                None,
            )
        )
    print(f"unaudited decrypts/s, 1 thread, {backend}: {base:,.0f}")
    assert guard.audit.verify().ok
    return rows


def _batches(guard: pg.Guard) -> list[Ratio]:
    allow_test_reveals(guard)
    contexts = [{**CONTEXT, "id": f"u{n}"} for n in range(BATCH)]
    values = [PHONE] * BATCH
    ciphertexts = guard.encrypt_many(values, contexts=contexts)
    key, nonce = AESGCM(os.urandom(32)), os.urandom(12)
    sealed = key.encrypt(nonce, PHONE.encode(), b"customers|phone|u1")
    times = best_ns(
        {
            "decrypt_many": Case(
                "g.decrypt_many(t, contexts=c, actor='svc:bench', purpose='testing')",
                {"g": guard, "t": ciphertexts, "c": contexts},
            ),
            "encrypt_many": Case(
                "g.encrypt_many(v, contexts=c)", {"g": guard, "v": values, "c": contexts}
            ),
            "bare decrypt": Case(
                "for _ in r: a.decrypt(n, s, b'customers|phone|u1')",
                {"a": key, "n": nonce, "s": sealed, "r": range(BATCH)},
            ),
            "bare encrypt": Case(
                "for _ in r: a.encrypt(u(12), v, b'customers|phone|u1')",
                {"a": key, "u": os.urandom, "v": PHONE.encode(), "r": range(BATCH)},
            ),
        },
        number=5,
        rounds=9,
    )
    return [
        Ratio(
            "decrypt_many, audited, per value / AESGCM.decrypt",
            times["decrypt_many"] / BATCH,
            times["bare decrypt"] / BATCH,
            2.0,
        ),
        Ratio(
            "encrypt_many per value / AESGCM.encrypt with its nonce",
            times["encrypt_many"] / BATCH,
            times["bare encrypt"] / BATCH,
            2.0,
        ),
    ]


def _watched(home: Path) -> list[Ratio]:
    """The access watch's cost on an audited decrypt (SQLite, one thread), the two Guards
    measured in alternating rounds."""
    watches = {
        "off": None,
        "on": pg.AccessWatch(limits={"*": 10**9}, baseline=5.0, baseline_floor=10**9),
    }
    calls = {}
    guards = []
    for name, watch in watches.items():
        guard = pg.Guard.open(
            f"sqlite:///{home / f'watch-{name}.db'}",
            kek=LocalKEK.generate(home / f"watch-{name}.key"),
            watch=watch,
        )
        guards.append(guard)
        allow_test_reveals(guard)
        sealed = guard.encrypt(PHONE, context=CONTEXT, subject="u1")

        def audited(guard: pg.Guard = guard, sealed: str = sealed) -> object:
            return guard.decrypt(sealed, context=CONTEXT, actor="cs-7", purpose="testing")

        calls[name] = audited
    try:
        rates = dict.fromkeys(calls, 0.0)
        for _ in range(3):
            for name, call in calls.items():
                rates[name] = max(rates[name], _throughput(call, 1, 2000))
    finally:
        for guard in guards:
            guard.close()
    print(f"audited decrypts/s with the access watch, SQLite: {rates['on']:,.0f}")
    return [
        Ratio(
            "audited decrypt with the access watch / without, SQLite",
            1e9 / rates["on"],
            1e9 / rates["off"],
            None,
        )
    ]


def audit() -> list[Ratio]:
    """Audited reveals on SQLite and PostgreSQL, and the batch forms."""
    home = Path(tempfile.mkdtemp())
    rows = []
    with pg.Guard.open(
        f"sqlite:///{home / 'bench.db'}", kek=LocalKEK.generate(home / "kek.key")
    ) as guard:
        rows += _batches(guard)
        rows += _audited(guard, "SQLite")
    rows += _watched(home)
    postgres = _postgres(home)
    if postgres is not None:
        try:
            rows += _audited(postgres, "PostgreSQL")
        finally:
            _drop(postgres)
            postgres.close()
    return rows
