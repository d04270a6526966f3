"""Guard.from_env: a Guard configured by PIIGUARD_* variables, on the real store and KEK
backends (a key file, SoftHSM2, KMS behind moto's server); errors name the variable, never
its value."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

import piiguard as pg
from piiguard.keys import LocalKEK
from piiguard.testing import allow_test_reveals
from tests.conftest import StoreTarget
from tests.crypto.test_kek_backends import PIN, TOKEN, kms, softhsm  # noqa: F401 - fixtures
from tests.helpers import CANARY_ID, CANARY_PHONE, piiguard_frames_text

CONTEXT = {"table": "customers", "field": "phone"}


def _environ(store_target: StoreTarget, **more: str) -> dict[str, str]:
    url, schema = store_target
    found = {"PIIGUARD_STORE_URL": url, **more}
    if schema is not None:
        found["PIIGUARD_SCHEMA"] = schema
    return found


def _round_trip(guard: pg.Guard) -> None:
    allow_test_reveals(guard)
    text = guard.encrypt(CANARY_PHONE, context=CONTEXT, subject="customer-1")
    assert guard.decrypt(text, context=CONTEXT, actor="tester", purpose="testing") == CANARY_PHONE


def test_a_key_file_store_opens_from_the_environment_at_every_start(
    store_target: StoreTarget, tmp_path: Path
) -> None:
    """The second start loads the key the first one made (it used to raise FileExistsError
    as the docs told users to generate at start-up)."""
    environ = _environ(store_target, PIIGUARD_KEK=f"file:{tmp_path / 'keys' / 'kek.key'}")
    with pg.Guard.from_env(environ) as first:
        allow_test_reveals(first)
        text = first.encrypt(CANARY_PHONE, context=CONTEXT, subject="customer-1")
    with pg.Guard.from_env(environ) as second:
        allow_test_reveals(second)
        assert second.decrypt(text, context=CONTEXT, actor="t", purpose="testing") == CANARY_PHONE
        assert (
            second._keyring._kek.kek_id == LocalKEK.from_file(tmp_path / "keys" / "kek.key").kek_id
        )


def test_os_environ_is_read_by_default_and_arguments_win(
    store_target: StoreTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _environ(store_target, PIIGUARD_KEK=f"file:{tmp_path / 'a.key'}").items():
        monkeypatch.setenv(name, value)
    with pg.Guard.from_env() as guard:
        _round_trip(guard)
    given = LocalKEK.generate(tmp_path / "given.key")
    monkeypatch.setenv("PIIGUARD_KEK", "file:/nowhere/never-read.key")
    with pytest.raises(pg.WrongKEK):  # the given KEK is used, and it is not the store's
        pg.Guard.from_env(kek=given)
    monkeypatch.delenv("PIIGUARD_STORE_URL")
    monkeypatch.delenv("PIIGUARD_SCHEMA", raising=False)
    with pg.Guard.from_env(url=f"sqlite:///{tmp_path / 'other.db'}", kek=given) as other:
        _round_trip(other)


def test_sm4_suite_schema_and_erasure_log_are_read(
    tmp_path: Path, store_target: StoreTarget
) -> None:
    log = tmp_path / "erasures.log"
    environ = _environ(
        store_target,
        PIIGUARD_KEK=f"file:{tmp_path / 'kek.key'}",
        PIIGUARD_SUITE="sm4gcm",
        PIIGUARD_ERASURE_LOG=str(log),
    )
    with pg.Guard.from_env(environ) as guard:
        _round_trip(guard)
        assert guard._keyring.suite.name == "sm4gcm"
        guard.erase("customer-1")
    assert log.stat().st_size > 0
    assert b"customer-1" not in log.read_bytes()


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"PIIGUARD_STORE_URL": None}, "PIIGUARD_STORE_URL"),
        ({"PIIGUARD_STORE_URL": "  "}, "PIIGUARD_STORE_URL"),
        ({"PIIGUARD_KEK": None}, "PIIGUARD_KEK"),
        ({"PIIGUARD_KEK": f"vault:{CANARY_PHONE}"}, "PIIGUARD_KEK"),
        ({"PIIGUARD_KEK": CANARY_PHONE}, "PIIGUARD_KEK"),
        ({"PIIGUARD_KEK": f"pkcs11:token=t;object=k?pin-value={CANARY_PHONE}"}, "PIIGUARD_KEK"),
        ({"PIIGUARD_KEK": "pkcs11:token=t;object=k?module-path=/x.so"}, "PIIGUARD_PKCS11_PIN"),
        ({"PIIGUARD_KEK": "pkcs11:token=t;object=k"}, "PIIGUARD_PKCS11_MODULE"),
        ({"PIIGUARD_KEK": "pkcs11:object=k?module-path=/x.so"}, "PIIGUARD_KEK"),
        ({"PIIGUARD_KEK": "pkcs11:token=t;token=u;object=k"}, "PIIGUARD_KEK"),
        ({"PIIGUARD_KEK": "pkcs11:token=t;object=k;type=private"}, "PIIGUARD_KEK"),
        ({"PIIGUARD_SUITE": CANARY_ID}, "PIIGUARD_SUITE"),
        ({"PIIGUARD_PREVIOUS_KEKS": f"ftp:{CANARY_ID}"}, "PIIGUARD_PREVIOUS_KEKS"),
        ({"PIIGUARD_SCHEMA": f"x\x00{CANARY_ID}"}, "PIIGUARD_SCHEMA"),
    ],
)
def test_a_bad_setting_is_named_and_its_value_is_not_shown(
    tmp_path: Path, changes: dict[str, str | None], named: str
) -> None:
    environ: dict[str, str] = {
        "PIIGUARD_STORE_URL": f"sqlite:///{tmp_path / 's.db'}",
        "PIIGUARD_KEK": f"file:{tmp_path / 'kek.key'}",
    }
    for name, value in changes.items():
        if value is None:
            environ.pop(name)
        else:
            environ[name] = value
    with pytest.raises(pg.InvalidArgument) as caught:
        pg.Guard.from_env(environ)
    assert named in str(caught.value)
    rendered = piiguard_frames_text(caught.value)  # the test's own locals hold the canaries
    for canary in (CANARY_PHONE, CANARY_ID):
        assert canary not in rendered
    assert not (tmp_path / "s.db").exists()  # nothing opened, nothing made


def test_a_store_url_password_is_never_shown(tmp_path: Path) -> None:
    environ = {
        "PIIGUARD_STORE_URL": f"postgresql+psycopg://app:{CANARY_PHONE}@127.0.0.1:1/shop",
        "PIIGUARD_KEK": f"file:{tmp_path / 'kek.key'}",
    }
    with pytest.raises(pg.StoreError) as caught:
        pg.Guard.from_env(environ)
    assert "PIIGUARD_STORE_URL" in str(caught.value)
    assert CANARY_PHONE not in piiguard_frames_text(caught.value)


def test_an_unknown_piiguard_variable_is_logged_by_name(tmp_path: Path) -> None:
    """A typo must not pass unseen: PIIGUARD_ERASURE_LGO would silently turn off the replay
    of erasures into restored backups."""
    environ = {
        "PIIGUARD_STORE_URL": f"sqlite:///{tmp_path / 's.db'}",
        "PIIGUARD_KEK": f"file:{tmp_path / 'kek.key'}",
        "PIIGUARD_ERASURE_LGO": str(tmp_path / CANARY_PHONE),
    }
    with capture_logs() as logged, pg.Guard.from_env(environ):
        pass
    unknown = [entry for entry in logged if entry["event"] == "unknown_setting"]
    assert [entry["variable"] for entry in unknown] == ["PIIGUARD_ERASURE_LGO"]
    assert CANARY_PHONE not in repr(logged)


def test_rotation_step_one_from_the_environment(store_target: StoreTarget, tmp_path: Path) -> None:
    """PIIGUARD_PREVIOUS_KEKS carries the KEKs accepted during a rotation
    (docs/encryption.md); a previous KEK must exist: it is never made."""
    old, new = tmp_path / "old.key", tmp_path / "new.key"
    with pg.Guard.from_env(_environ(store_target, PIIGUARD_KEK=f"file:{old}")) as before:
        allow_test_reveals(before)
        text = before.encrypt(CANARY_PHONE, context=CONTEXT, subject="customer-1")
    LocalKEK.generate(new)
    step1 = _environ(store_target, PIIGUARD_KEK=f"file:{old}", PIIGUARD_PREVIOUS_KEKS=f"file:{new}")
    with pg.Guard.from_env(step1) as during:
        during.keys.rotate_kek(LocalKEK.from_file(new))
    with pg.Guard.from_env(_environ(store_target, PIIGUARD_KEK=f"file:{new}")) as after:
        allow_test_reveals(after)
        assert after.decrypt(text, context=CONTEXT, actor="t", purpose="testing") == CANARY_PHONE
    missing = _environ(
        store_target, PIIGUARD_KEK=f"file:{new}", PIIGUARD_PREVIOUS_KEKS=f"file:{tmp_path / 'x'}"
    )
    with pytest.raises(pg.KeyProviderError):
        pg.Guard.from_env(missing)
    assert not (tmp_path / "x").exists()


def test_an_hsm_kek_from_the_environment(
    softhsm: str,  # noqa: F811 - the fixture
    store_target: StoreTarget,
) -> None:
    uri = f"pkcs11:token={TOKEN};object=kek-env"
    with pg.Guard.from_env(
        _environ(
            store_target,
            PIIGUARD_KEK=f"{uri}?module-path={softhsm}",
            PIIGUARD_PKCS11_PIN=PIN,
        )
    ) as guard:
        _round_trip(guard)
        assert guard._keyring._kek.kek_id.startswith("pkcs11:")
    with pg.Guard.from_env(
        _environ(
            store_target,
            PIIGUARD_KEK=uri,
            PIIGUARD_PKCS11_MODULE=softhsm,
            PIIGUARD_PKCS11_PIN=PIN,
        )
    ) as again:
        _round_trip(again)


def test_a_kms_kek_from_the_environment(
    kms: Any,  # noqa: F811 - the fixture
    store_target: StoreTarget,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """boto3 reads its own variables (region, endpoint, credentials); piiguard the key."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", kms.meta.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", kms.meta.region_name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    with pg.Guard.from_env(_environ(store_target, PIIGUARD_KEK=f"aws-kms:{arn}")) as guard:
        _round_trip(guard)
    assert os.environ["AWS_ENDPOINT_URL"] == kms.meta.endpoint_url
