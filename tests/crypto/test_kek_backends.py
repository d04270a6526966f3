"""The HSM (SoftHSM2 over PKCS#11) and KMS (moto's server on 127.0.0.1) KEKs, for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import piiguard as pg
from piiguard.keys import AwsKmsKEK, KEKProvider, LocalKEK, Pkcs11KEK
from piiguard.testing import allow_test_reveals
from tests.backends import require_or_skip
from tests.conftest import StoreTarget
from tests.crypto.stores import copy_store, drop_copy
from tests.helpers import exception_text

CONTEXT = {"table": "customers", "field": "phone", "id": "u1"}
PHONE = "13812345678"
OTHER_PHONE = "13912345678"
OTHER_CONTEXT = {**CONTEXT, "id": "u2"}
SOFTHSM_LIBS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
)
TOKEN, PIN, SO_PIN = "piiguard-test", "123456", "654321"


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SoftHSM2 token in tmp_path; yields the PKCS#11 module path."""
    library = next((path for path in SOFTHSM_LIBS if Path(path).exists()), None)
    util = shutil.which("softhsm2-util")
    if library is None or util is None:
        require_or_skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        require_or_skip("python-pkcs11 is not installed (pip install 'piiguard[hsm]')")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    config = tmp_path / "softhsm2.conf"
    config.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    monkeypatch.setenv("SOFTHSM2_CONF", str(config))
    subprocess.run(  # noqa: S603 - a fixed tool with fixed test arguments
        [
            util,
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--pin",
            PIN,
            "--so-pin",
            SO_PIN,
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "SOFTHSM2_CONF": str(config)},
    )
    return str(library)


@pytest.fixture
def kms() -> Iterator[Any]:
    """A KMS client talking to moto's HTTP server on 127.0.0.1, with one symmetric key."""
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError:
        require_or_skip("boto3 and moto[server] are not installed")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client(
        "kms",
        region_name="cn-north-1",
        endpoint_url=f"http://{host}:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fixed test credentials
    )
    yield client
    server.stop()


def _round_trip(kek: KEKProvider) -> None:
    context = {"key_id": "7", "scope": "default"}
    wrapped = kek.wrap(b"\x07" * 32, context)
    assert b"\x07" * 32 not in wrapped
    assert kek.unwrap(wrapped, context) == b"\x07" * 32
    with pytest.raises(pg.KeyProviderError):
        kek.unwrap(wrapped, {**context, "key_id": "8"})
    with pytest.raises(pg.KeyProviderError):
        kek.unwrap(wrapped[:-1] + bytes([wrapped[-1] ^ 1]), context)


def test_pkcs11_kek_wraps_inside_the_token(softhsm: str) -> None:
    """The KEK is generated in the token, non-extractable; wrapping binds the context."""
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass

    kek = Pkcs11KEK(lib=softhsm, token_label=TOKEN, pin=PIN, key_label="kek-1")
    assert isinstance(kek, KEKProvider)
    assert kek.kek_id == f"pkcs11:{TOKEN}/kek-1"
    assert PIN not in repr(kek)
    _round_trip(kek)
    with pkcs11.lib(softhsm).get_token(token_label=TOKEN).open() as session:  # logged in by kek
        key = session.get_key(
            object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label="kek-1"
        )
        assert key[Attribute.EXTRACTABLE] is False
        assert key[Attribute.SENSITIVE] is True
    again = Pkcs11KEK(lib=softhsm, token_label=TOKEN, pin=PIN, key_label="kek-1")
    assert again.unwrap(kek.wrap(b"k" * 16, {"a": "b"}), {"a": "b"}) == b"k" * 16
    kek.close()
    again.close()


def test_pkcs11_kek_refuses_a_wrong_pin_without_echoing_it(softhsm: str) -> None:
    """A failed login is a KeyProviderError that names no PIN."""
    with pytest.raises(pg.KeyProviderError) as caught:
        Pkcs11KEK(lib=softhsm, token_label=TOKEN, pin="000000-wrong", key_label="kek-1")
    assert "000000-wrong" not in str(caught.value)


def test_guard_on_an_hsm_kek(softhsm: str, store_target: StoreTarget) -> None:
    """A Guard whose data keys are wrapped in the HSM encrypts, decrypts and shreds."""
    url, schema = store_target
    kek = Pkcs11KEK(lib=softhsm, token_label=TOKEN, pin=PIN, key_label="kek-guard")
    with pg.Guard.open(url, kek=kek, schema=schema) as guard:
        allow_test_reveals(guard)
        text = guard.encrypt(PHONE, context=CONTEXT, subject="u1")
        assert guard.decrypt(text, context=CONTEXT, actor="tester", purpose="testing") == PHONE
        guard.shred("u1")
        with pytest.raises(pg.KeyDestroyed):
            guard.decrypt(text, context=CONTEXT, actor="tester", purpose="testing")
    kek.close()


def test_kms_kek_binds_the_encryption_context(kms: Any) -> None:
    """KMS Encrypt/Decrypt through moto's server; a changed context fails."""
    key_id = kms.create_key(Description="piiguard test KEK")["KeyMetadata"]["KeyId"]
    kek = AwsKmsKEK(key_id=key_id, client=kms)
    assert isinstance(kek, KEKProvider)
    assert kek.kek_id == f"aws-kms:{key_id}"
    _round_trip(kek)
    with pytest.raises(TypeError):
        __import__("pickle").dumps(kek)


def test_rotation_from_a_local_kek_to_kms(
    kms: Any, store_target: StoreTarget, tmp_path: Path
) -> None:
    """Rewrap every data key from a key file into KMS; the data is not touched."""
    url, schema = store_target
    local = LocalKEK.generate(tmp_path / "kek.key")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    remote = AwsKmsKEK(key_id=key_id, client=kms)
    with pg.Guard.open(url, kek=local, schema=schema) as guard:
        texts = [guard.encrypt(PHONE, context=CONTEXT, subject=f"u{i}") for i in range(3)]
        assert guard.keys.rotate_kek(remote).remaining == 0
    with pg.Guard.open(url, kek=remote, schema=schema) as guard:
        allow_test_reveals(guard)
        assert [
            guard.decrypt(t, context=CONTEXT, actor="tester", purpose="testing") for t in texts
        ] == [PHONE] * 3


def test_kms_failures_are_key_provider_errors(kms: Any) -> None:
    """An unknown KMS key is a KeyProviderError, not a botocore error."""
    kek = AwsKmsKEK(key_id="alias/does-not-exist", client=kms)
    with pytest.raises(pg.KeyProviderError):
        kek.wrap(b"k" * 32, {"a": "b"})
    with pytest.raises(pg.KeyProviderError):
        kek.unwrap(b"\x00" * 64, {"a": "b"})


def test_a_half_built_pkcs11_kek_has_a_safe_repr() -> None:
    """An object whose __init__ never ran (or failed early) still has a repr, with no PIN:
    error trackers call repr() on the ``self`` of every failing frame."""
    half = Pkcs11KEK.__new__(Pkcs11KEK)
    shown = repr(half)
    assert shown == "Pkcs11KEK(id='<not opened>', [secure])"
    assert PIN not in shown


def test_a_failed_pkcs11_login_leaves_safe_locals(softhsm: str) -> None:
    """The half-built KEK of a failed login, as a traceback with locals shows it: no
    exception from its repr, and no PIN anywhere."""
    with pytest.raises(pg.KeyProviderError) as caught:
        Pkcs11KEK(lib=softhsm, token_label=TOKEN, pin="000000-wrong", key_label="kek-1")
    rendered = exception_text(caught.value)
    assert "Pkcs11KEK(id='<not opened>', [secure])" in rendered
    assert "000000-wrong" not in rendered.replace('pin="000000-wrong"', "")


def _epoch_labels(library: str, key_label: str) -> set[str]:
    """Labels of the token's epoch objects of a KEK (``<key_label>/epoch/<ref>``)."""
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    prefix = f"{key_label}/epoch/"
    with pkcs11.lib(library).get_token(token_label=TOKEN).open() as session:  # logged in by kek
        labels = {
            str(found[Attribute.LABEL])
            for found in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})
        }
    return {label for label in labels if label.startswith(prefix)}


def test_hsm_epochs_make_an_erasure_reach_a_copy(softhsm: str, store_target: StoreTarget) -> None:
    """Epoch objects in the token: erase, advance, and the old epoch object is gone from the
    HSM; the live store opens u2, and a copy from before the erase opens nothing (u1, nor
    u2: the whole copy is under a destroyed epoch, the documented trade)."""
    url, schema = store_target
    # python-pkcs11 initialises the module once per process, so every test of a run shares
    # the first test's token: a label of its own keeps this test's objects apart
    label = f"kek-epochs-{uuid.uuid4().hex[:8]}"
    kek = Pkcs11KEK(lib=softhsm, token_label=TOKEN, pin=PIN, key_label=label)
    copy: StoreTarget | None = None
    try:
        with pg.Guard.open(url, kek=kek, schema=schema) as guard:
            allow_test_reveals(guard)  # before the copy: the copy has it too
            erased = guard.encrypt(PHONE, context=CONTEXT, subject="u1")
            kept = guard.encrypt(OTHER_PHONE, context=OTHER_CONTEXT, subject="u2")
            before = _epoch_labels(softhsm, label)
            assert len(before) == 1
            copy = copy_store(store_target)
            guard.erase("u1")
            report = guard.keys.advance_epoch()
            assert report.destroyed == 1
            assert report.unreadable == ()
            after = _epoch_labels(softhsm, label)
            assert len(after) == 1
            assert after.isdisjoint(before)
            assert (
                guard.decrypt(kept, context=OTHER_CONTEXT, actor="tester", purpose="testing")
                == OTHER_PHONE
            )
            with pytest.raises(pg.KeyDestroyed):
                guard.decrypt(erased, context=CONTEXT, actor="tester", purpose="testing")
        with pg.Guard.open(copy[0], kek=kek, schema=copy[1]) as restored:
            with pytest.raises(pg.DecryptionError):
                restored.decrypt(erased, context=CONTEXT, actor="tester", purpose="testing")
            with pytest.raises(pg.DecryptionError):
                restored.decrypt(kept, context=OTHER_CONTEXT, actor="tester", purpose="testing")
    finally:
        if copy is not None:
            drop_copy(copy)
        kek.close()


def test_kms_epochs_make_an_erasure_reach_a_copy(kms: Any, store_target: StoreTarget) -> None:
    """Epoch objects as KMS keys: after erase and advance, the old epoch's KMS key is pending
    deletion, the live store opens u2, and a copy from before the erase opens nothing."""
    url, schema = store_target
    kek_id = kms.create_key(Description="piiguard test KEK")["KeyMetadata"]["KeyId"]
    kek = AwsKmsKEK(key_id=kek_id, client=kms)

    def all_keys() -> set[str]:
        return {str(key["KeyId"]) for key in kms.list_keys(Limit=1000)["Keys"]}

    earlier = all_keys()  # moto keeps its keys per process, across servers and tests

    def epoch_keys() -> set[str]:
        return all_keys() - earlier

    copy: StoreTarget | None = None
    try:
        with pg.Guard.open(url, kek=kek, schema=schema) as guard:
            allow_test_reveals(guard)  # before the copy: the copy has it too
            erased = guard.encrypt(PHONE, context=CONTEXT, subject="u1")
            kept = guard.encrypt(OTHER_PHONE, context=OTHER_CONTEXT, subject="u2")
            (old_epoch,) = epoch_keys()
            copy = copy_store(store_target)
            guard.erase("u1")
            report = guard.keys.advance_epoch()
            assert report.destroyed == 1
            assert report.unreadable == ()
            (new_epoch,) = epoch_keys() - {old_epoch}
            state = kms.describe_key(KeyId=old_epoch)["KeyMetadata"]["KeyState"]
            assert state == "PendingDeletion"
            assert kms.describe_key(KeyId=new_epoch)["KeyMetadata"]["KeyState"] == "Enabled"
            assert (
                guard.decrypt(kept, context=OTHER_CONTEXT, actor="tester", purpose="testing")
                == OTHER_PHONE
            )
        with pg.Guard.open(copy[0], kek=kek, schema=copy[1]) as restored:
            with pytest.raises(pg.DecryptionError):
                restored.decrypt(erased, context=CONTEXT, actor="tester", purpose="testing")
            with pytest.raises(pg.DecryptionError):
                restored.decrypt(kept, context=OTHER_CONTEXT, actor="tester", purpose="testing")
    finally:
        if copy is not None:
            drop_copy(copy)


def test_a_kms_epoch_key_deleted_after_its_wait_is_key_destroyed(kms: Any) -> None:
    """Once KMS has deleted an epoch key (after the 7-30 day wait), opening it is
    KeyDestroyed, a DecryptionError, like during the wait; destroying it again is a no-op."""
    kek = AwsKmsKEK(key_id=kms.create_key()["KeyMetadata"]["KeyId"], client=kms)
    gone = "11111111-2222-3333-4444-555555555555"  # a key KMS does not know (deleted)
    with pytest.raises(pg.KeyDestroyed):
        kek.open_epoch_key(gone, b"\x00" * 64, {"epoch": "1"})
    kek.destroy_epoch(gone)
