"""Shares: ``guard.share`` of one order against joserfc's own encrypt of the same payload to
the same key (the JWE is the floor; the rest is minimising, the audit event and the record),
and ``share_many`` throughput, on SQLite."""

from __future__ import annotations

import json
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Literal

from joserfc import jwe
from joserfc.jwk import ECKey, RSAKey, import_key

import piiguard as pg
from benchmarks._harness import Case, Ratio, best_ns
from piiguard.keys import LocalKEK

BATCH = 200


class Order(pg.PIIModel):
    order_id: str
    receiver: pg.PersonName
    phone: pg.Phone
    address: pg.Address


ORDER = Order(
    order_id="o-1001", receiver="张三丰", phone="13812345678", address="北京市朝阳区建国路88号"
)
FIELDS: dict[str, Literal["clear", "masked", "token"]] = {
    "order_id": "clear",
    "receiver": "masked",
    "phone": "clear",
    "address": "clear",
}


def _one(guard: pg.Guard, name: str, key: object, alg: str) -> list[Ratio]:
    public = key.as_dict(private=False)  # type: ignore[attr-defined]
    guard.sharing.register(
        pg.Recipient(
            name,
            public_key=public,
            purposes={"delivery"},
            fields=FIELDS,
            assessed_until=date(2099, 1, 1),
        )
    )
    payload = json.dumps(
        {
            "piiguard": "share/1",
            "id": "0" * 32,
            "recipient": name,
            "purpose": "delivery",
            "issued_at": "2026-12-06T00:00:00+00:00",
            "fields": {
                "order_id": "o-1001",
                "receiver": "张**",
                "phone": "+8613812345678",
                "address": "北京市朝阳区建国路88号",
            },
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    recipient_key = import_key(public)
    header = {"alg": alg, "enc": "A256GCM"}
    times = best_ns(
        {
            "share": Case(
                "g.share(o, to=n, purpose='delivery', subject='u1', actor='svc:bench')",
                {"g": guard, "o": ORDER, "n": name},
            ),
            "jose": Case(
                "e(dict(h), p, k, algorithms=a)",
                {
                    "e": jwe.encrypt_compact,
                    "h": header,
                    "p": payload,
                    "k": recipient_key,
                    "a": [alg, "A256GCM"],
                },
            ),
        },
        number=50,
        rounds=9,
    )
    return [
        Ratio(f"share(order), {alg} / joserfc encrypt_compact", times["share"], times["jose"], 1.3)
    ]


def sharing() -> list[Ratio]:
    """share against the JOSE library's encrypt; share_many throughput."""
    home = Path(tempfile.mkdtemp())
    rows: list[Ratio] = []
    with pg.Guard.open(
        f"sqlite:///{home / 'share.db'}", kek=LocalKEK.generate(home / "kek.key")
    ) as guard:
        guard.consent.register(
            pg.Purpose("delivery", basis="contract", kinds={"person_name", "phone", "address"})
        )
        guard.records.assessment(
            "delivery", risks=["bench"], measures=["bench"], author="bench", covers=["providing"]
        )
        rows += _one(guard, "ec-courier", ECKey.generate_key("P-256"), "ECDH-ES+A256KW")
        rows += _one(guard, "rsa-courier", RSAKey.generate_key(2048), "RSA-OAEP-256")
        orders, subjects = [ORDER] * BATCH, [f"u{n}" for n in range(BATCH)]
        best = 0.0
        for _ in range(3):
            began = time.perf_counter()
            guard.share_many(
                orders, to="ec-courier", purpose="delivery", subjects=subjects, actor="svc:b"
            )
            best = max(best, BATCH / (time.perf_counter() - began))
        print(f"share_many shares/s, ECDH-ES+A256KW, SQLite, batches of {BATCH}: {best:,.0f}")
    return rows
