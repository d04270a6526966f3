"""Field encryption against a bare AESGCM call, Tink, the AWS Encryption SDK and Presidio."""

from __future__ import annotations

import os
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import piiguard as pg
from benchmarks._harness import Case, Ratio, best_ns
from piiguard.keys import LocalKEK

PHONE = "13812345678"
CONTEXT = {"table": "customers", "field": "phone", "id": "u1"}


def _tink_aead() -> Any:
    import tink
    from tink import aead

    aead.register()
    handle = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)
    return handle.primitive(aead.Aead)


def _esdk_encrypt() -> Any:
    """The AWS Encryption SDK with a raw AES wrapping key and its caching CMM."""
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import (
        CommitmentPolicy,
        EncryptionKeyType,
        WrappingAlgorithm,
    )
    from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
    from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider

    wrapping_key = os.urandom(32)

    class StaticProvider(RawMasterKeyProvider):  # type: ignore[misc]
        provider_id = "static"

        def _get_raw_key(self, key_id: bytes) -> Any:
            return WrappingKey(
                wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
                wrapping_key=wrapping_key,
                wrapping_key_type=EncryptionKeyType.SYMMETRIC,
            )

    provider = StaticProvider()
    provider.add_master_key(b"k1")
    cmm = aws_encryption_sdk.CachingCryptoMaterialsManager(
        master_key_provider=provider,
        cache=aws_encryption_sdk.LocalCryptoMaterialsCache(capacity=100),
        max_age=600.0,
        max_messages_encrypted=2**32,
    )
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )

    def encrypt(value: bytes) -> bytes:
        ciphertext, _ = client.encrypt(
            source=value, materials_manager=cmm, encryption_context=CONTEXT
        )
        return bytes(ciphertext)

    return encrypt


def _presidio_encrypt() -> Any:
    from presidio_anonymizer.operators import Encrypt

    operator, params = Encrypt(), {"key": "WmZq4t7w!z%C&F)J"}
    return lambda value: operator.operate(value, params)


def _peer(label: str, build: Any, stmt: str, value: Any) -> tuple[str, Case] | None:
    try:
        return label, Case(stmt, {"f": build(), "v": value, "c": CONTEXT})
    except ImportError:
        print(f"{label}: not installed (pip install -e '.[bench]')")
        return None


def encryption() -> list[Ratio]:
    """Guard encrypt/decrypt of a phone with a 3-key context, and the peers."""
    home = Path(tempfile.mkdtemp())
    guard = pg.Guard.open(f"sqlite:///{home / 'bench.db'}", kek=LocalKEK.generate(home / "kek.key"))
    bare = AESGCM(os.urandom(32))
    ciphertext = guard.encrypt(PHONE, context=CONTEXT)
    guard.encrypt(PHONE, context=CONTEXT, subject="u1")  # warm the subject's key
    cases = {
        "bare": Case(
            "a.encrypt(n, v, b'customers|phone|u1')",
            {"a": bare, "n": os.urandom(12), "v": PHONE.encode()},
        ),
        "encrypt": Case("g.encrypt(v, context=c)", {"g": guard, "v": PHONE, "c": CONTEXT}),
        "encrypt subject": Case(
            "g.encrypt(v, context=c, subject='u1')", {"g": guard, "v": PHONE, "c": CONTEXT}
        ),
        # the cryptographic work of a decrypt; its audit is measured in benchmarks/audit.py
        "decrypt": Case(
            "d(t, context=c)",
            {"d": guard._envelope.decrypt_unrecorded, "t": ciphertext, "c": CONTEXT},
        ),
    }
    peers = [
        _peer("tink", _tink_aead, "f.encrypt(v, b'customers|phone|u1')", PHONE.encode()),
        _peer("esdk", _esdk_encrypt, "f(v)", PHONE.encode()),
        _peer("presidio", _presidio_encrypt, "f(v)", PHONE),
    ]
    cases.update(dict(peer for peer in peers if peer is not None))
    times = best_ns(cases, number=3000)
    rows = [
        Ratio(
            "guard.encrypt(phone, 3-key context) / AESGCM.encrypt",
            times["encrypt"],
            times["bare"],
            2.5,
        ),
        Ratio(
            "decrypt, unaudited (phone, 3-key context) / AESGCM.encrypt",
            times["decrypt"],
            times["bare"],
            2.5,
        ),
        Ratio(
            "guard.encrypt(subject=, cache warm) / guard.encrypt",
            times["encrypt subject"],
            times["encrypt"],
            1.2,
        ),
    ]
    if "tink" in times:
        rows.append(
            Ratio("guard.encrypt / Tink AEAD encrypt", times["encrypt"], times["tink"], 2.0)
        )
        rows.append(Ratio("Tink AEAD encrypt / AESGCM.encrypt", times["tink"], times["bare"], None))
    if "esdk" in times:
        rows.append(
            Ratio(
                "AWS ESDK (caching CMM) encrypt / AESGCM.encrypt",
                times["esdk"],
                times["bare"],
                None,
            )
        )
    if "presidio" in times:
        rows.append(
            Ratio(
                "Presidio Encrypt.operate / AESGCM.encrypt", times["presidio"], times["bare"], None
            )
        )
    print(f"wire size of an 11-character phone: {len(ciphertext)} characters")
    print(f"memory growth over 1M encryptions: {_memory_growth(guard) / 1024:.1f} KiB")
    guard.close()
    return rows


def _memory_growth(guard: pg.Guard, count: int = 1_000_000) -> int:
    """Bytes still allocated after ``count`` encryptions beyond those after a warm-up."""
    for _ in range(10_000):
        guard.encrypt(PHONE, context=CONTEXT)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for index in range(count):
        guard.encrypt(PHONE, context={**CONTEXT, "id": f"u{index % 1000}"})
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before
