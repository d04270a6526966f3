"""Data-key lifecycle: use limits, cache age, shredding, KEK rotation; the local KEK file."""

from __future__ import annotations

import os
import pickle
import stat
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import piiguard as pg
from piiguard.crypto import Keyring, get_suite, wire
from piiguard.crypto.keyring import LIVENESS_INTERVAL
from piiguard.keys import EpochKeyFile, EpochKeyHolder, KEKProvider, LocalKEK
from piiguard.store import Store
from piiguard.testing import allow_test_reveals
from tests.conftest import StoreTarget
from tests.helpers import (
    CANARY_ID,
    CANARY_PHONE,
    FailingSink,
    assert_no_canary,
    exception_text,
    piiguard_frames_text,
)

CONTEXT = {"table": "customers", "field": "phone", "id": "u1"}
PHONE = "13812345678"


def _key_id(text: str) -> int:
    header = wire.unpack_header(wire.from_text(text) or b"")
    assert header is not None
    return header.key_id


class CountingKEK:
    """A real KEK (it delegates to a LocalKEK) that counts its calls, and can fail on cue.

    Its epoch objects live in an EpochKeyFile that it wraps, so they are counted too.
    """

    def __init__(self, inner: LocalKEK, fail_after_wraps: int | None = None) -> None:
        self.inner = inner
        self.wraps = 0
        self.unwraps = 0
        self.fail_after_wraps = fail_after_wraps
        self.epoch_keys = EpochKeyFile(Path(tempfile.mkdtemp()) / "counting.epochs", self)

    @property
    def kek_id(self) -> str:
        return self.inner.kek_id

    def wrap(self, dek: bytes, context: Mapping[str, str]) -> bytes:
        if self.fail_after_wraps is not None and self.wraps >= self.fail_after_wraps:
            raise pg.KeyProviderError("the KEK service went away")
        self.wraps += 1
        return self.inner.wrap(dek, context)

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        self.unwraps += 1
        return self.inner.unwrap(wrapped, context)


def test_counting_kek_satisfies_the_protocol(kek: LocalKEK) -> None:
    """Both shipped and test KEKs are KEKProviders."""
    assert isinstance(kek, KEKProvider)
    assert isinstance(CountingKEK(kek), KEKProvider)


def test_a_key_retires_at_its_use_limit(store_target: StoreTarget, kek: LocalKEK) -> None:
    """With a limit of 3, the 4th encryption uses a new key; the old one still decrypts."""
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, dek_max_uses=3) as guard:
        allow_test_reveals(guard)
        texts = [guard.encrypt(PHONE, context=CONTEXT) for _ in range(7)]
        assert [_key_id(t) for t in texts] == [_key_id(texts[0])] * 3 + [_key_id(texts[3])] * 3 + [
            _key_id(texts[6])
        ]
        assert len({_key_id(t) for t in texts}) == 3
        # one data key in use, and the root key of the headers' context-keys fingerprint
        assert guard.keys.counts() == {"active": 2, "retired": 2}
        assert all(
            guard.decrypt(t, context=CONTEXT, actor="tester", purpose="testing") == PHONE
            for t in texts
        )
        # the reveals add the store-wide root key the audit log's MAC derives from, no data key
        assert guard.keys.counts() == {"active": 3, "retired": 2}


def test_a_liveness_look_costs_no_use(store_target: StoreTarget, kek: LocalKEK) -> None:
    """Every use of a key is an encryption: a key looked at for shreds elsewhere (after
    LIVENESS_INTERVAL) still gives all its uses, so the limit is met exactly, not early."""
    import time

    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, dek_max_uses=3) as guard:
        texts = []
        for _ in range(3):
            texts.append(guard.encrypt(PHONE, context=CONTEXT))
            time.sleep(LIVENESS_INTERVAL * 1.5)  # the next use goes through the slow path
        texts.append(guard.encrypt(PHONE, context=CONTEXT))
        assert [_key_id(t) for t in texts] == [_key_id(texts[0])] * 3 + [_key_id(texts[3])]
        assert _key_id(texts[3]) != _key_id(texts[0])


def test_batch_never_straddles_the_use_limit(store_target: StoreTarget, kek: LocalKEK) -> None:
    """A batch is encrypted under one key with room for all of it."""
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, dek_max_uses=5) as guard:
        guard.encrypt(PHONE, context=CONTEXT)
        batch = guard.encrypt_many([PHONE] * 5, contexts=[CONTEXT] * 5)
        assert len({_key_id(t) for t in batch}) == 1
        with pytest.raises(ValueError, match="use limit"):
            guard.encrypt_many([PHONE] * 6, contexts=[CONTEXT] * 6)


def test_no_kek_call_per_encryption_once_cached(store_target: StoreTarget, kek: LocalKEK) -> None:
    """A thousand encryptions and decryptions cost the KEK one wrap and one unwrap: the
    epoch object, made and opened once."""
    counting = CountingKEK(kek)
    url, schema = store_target
    with pg.Guard.open(url, kek=counting, schema=schema) as guard:
        allow_test_reveals(guard)
        texts = [guard.encrypt(PHONE, context=CONTEXT) for _ in range(1000)]
        for text in texts[:100]:
            guard.decrypt(text, context=CONTEXT, actor="tester", purpose="testing")
    assert (counting.wraps, counting.unwraps) == (1, 1)


def test_cached_keys_expire_after_max_age(tmp_path: Path, kek: LocalKEK) -> None:
    """Past max_age a data key is unwrapped again (a new plaintext copy); within it, never."""
    now = [1000.0]
    store = Store.open(f"sqlite:///{tmp_path / 'k.db'}")
    keyring = Keyring(
        store,
        kek,
        get_suite("aes256gcm"),
        clock=lambda: datetime.now(UTC),
        max_age=timedelta(seconds=60),
        monotonic=lambda: now[0],
    )
    key_id, _ = keyring.encryption_key("default")
    first = keyring._data._cache[key_id]
    keyring.decryption_key(key_id)
    assert keyring._data._cache[key_id] is first
    now[0] += 61
    keyring.decryption_key(key_id)
    second = keyring._data._cache[key_id]
    assert second is not first
    now[0] += 61
    assert keyring.encryption_key("default")[0] == key_id  # same key, unwrapped again
    assert keyring._data._cache[key_id] is not second
    keyring.close()
    store.close()


@pytest.mark.parametrize(("uses", "age"), [(0, 60), (2**32 + 1, 60), (10, 0)])
def test_keyring_limits_are_checked(tmp_path: Path, kek: LocalKEK, uses: int, age: int) -> None:
    """Use limits between 1 and 2^32, and a positive max age."""
    store = Store.open(f"sqlite:///{tmp_path / 'k.db'}")
    with pytest.raises(ValueError, match="max_"):
        Keyring(
            store,
            kek,
            get_suite("aes256gcm"),
            clock=lambda: datetime.now(UTC),
            max_uses=uses,
            max_age=timedelta(seconds=age),
        )
    store.close()


def test_shredding_a_subject_destroys_only_its_keys(guard: pg.Guard) -> None:
    """u1's ciphertexts raise KeyDestroyed; u2's and unscoped data still decrypt; new data
    for u1 gets a new key; the destroyed key stays as a tombstone."""
    u1 = guard.encrypt(PHONE, context=CONTEXT, subject="u1")
    u2 = guard.encrypt(PHONE, context=CONTEXT, subject="u2")
    shared = guard.encrypt(PHONE, context=CONTEXT)
    assert guard.shred("u1") == 1
    with pytest.raises(pg.KeyDestroyed):
        guard.decrypt(u1, context=CONTEXT, actor="tester", purpose="testing")
    with pytest.raises(pg.DecryptionError):  # KeyDestroyed is a DecryptionError
        guard.decrypt(u1, context=CONTEXT, actor="tester", purpose="testing")
    assert guard.decrypt(u2, context=CONTEXT, actor="tester", purpose="testing") == PHONE
    assert guard.decrypt(shared, context=CONTEXT, actor="tester", purpose="testing") == PHONE
    fresh = guard.encrypt(PHONE, context=CONTEXT, subject="u1")
    assert _key_id(fresh) != _key_id(u1)
    assert guard.decrypt(fresh, context=CONTEXT, actor="tester", purpose="testing") == PHONE
    assert guard.keys.counts()["destroyed"] == 1
    assert guard.shred("nobody") == 0


def test_shredding_reaches_other_guards_and_restored_copies(
    store_target: StoreTarget, kek: LocalKEK
) -> None:
    """Another process's cached key goes once its cache ages out; a copy of the data made
    before the shred (a backup) does not decrypt after it."""
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema) as first:
        allow_test_reveals(first)  # registered in the store: the second Guard sees it
        backup = first.encrypt(PHONE, context=CONTEXT, subject="u1")
        first.shred("u1")
    with pg.Guard.open(url, kek=kek, schema=schema) as second, pytest.raises(pg.KeyDestroyed):
        second.decrypt(backup, context=CONTEXT, actor="tester", purpose="testing")


def test_key_table_names_no_subject(store_target: StoreTarget, kek: LocalKEK) -> None:
    """Subject scopes are keyed pseudonyms: the subject id is not in the key table."""
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema) as guard:
        guard.encrypt(PHONE, context=CONTEXT, subject="customer-31337")
        keys = guard.store.tables.keys
        with guard.store.engine.connect() as connection:
            scopes = [row.scope for row in connection.execute(keys.select())]
    assert scopes
    assert not any("31337" in scope for scope in scopes)
    with pytest.raises(TypeError):
        guard.encrypt(PHONE, context=CONTEXT, subject="")


def test_kek_rotation_rewraps_and_keeps_old_ciphertexts(
    store_target: StoreTarget, tmp_path: Path
) -> None:
    """After rotation the new KEK alone opens everything; the old KEK alone opens nothing."""
    url, schema = store_target
    old, new = LocalKEK.generate(tmp_path / "old.key"), LocalKEK.generate(tmp_path / "new.key")
    with pg.Guard.open(url, kek=old, schema=schema, dek_max_uses=2) as guard:
        allow_test_reveals(guard)
        texts = [guard.encrypt(PHONE, context=CONTEXT, subject=f"u{i % 3}") for i in range(9)]
        report = guard.keys.rotate_kek(new, batch_size=2)
        assert report.remaining == 0
        assert report.rewrapped >= 4
        after = guard.encrypt(PHONE, context=CONTEXT)
        assert all(
            guard.decrypt(t, context=CONTEXT, actor="tester", purpose="testing") == PHONE
            for t in texts
        )
    with pg.Guard.open(url, kek=new, schema=schema) as reopened:
        allow_test_reveals(reopened)
        assert all(
            reopened.decrypt(t, context=CONTEXT, actor="tester", purpose="testing") == PHONE
            for t in [*texts, after]
        )
    with pytest.raises(pg.WrongKEK):  # at start-up, not at the first request
        pg.Guard.open(url, kek=old, schema=schema)


class UndestroyableHolder:
    """A real epoch holder whose destroy fails (a KMS outage at the end of a rotation)."""

    def __init__(self, inner: EpochKeyHolder) -> None:
        self.inner = inner
        self.holder_id = inner.holder_id
        self.create_epoch = inner.create_epoch
        self.seal_epoch_key = inner.seal_epoch_key
        self.open_epoch_key = inner.open_epoch_key

    def destroy_epoch(self, ref: str) -> None:
        raise pg.KeyProviderError("the KMS went away")


def test_interrupted_rotation_resumes(store_target: StoreTarget, tmp_path: Path) -> None:
    """A rotation that dies before it destroys the old epoch leaves every key readable with
    both KEKs; running it again finishes the job."""
    url, schema = store_target
    old = LocalKEK.generate(tmp_path / "old.key")
    new = LocalKEK.generate(tmp_path / "new.key")
    flaky = UndestroyableHolder(old.epoch_keys)
    assert isinstance(flaky, EpochKeyHolder)
    with pg.Guard.open(url, kek=old, schema=schema, epoch_keys=flaky) as guard:
        texts = [guard.encrypt(PHONE, context=CONTEXT, subject=f"u{i}") for i in range(6)]
        with pytest.raises(pg.KeyProviderError):
            guard.keys.rotate_kek(new, batch_size=2)
    with pg.Guard.open(url, kek=old, schema=schema, previous_keks=[new]) as resumed:
        allow_test_reveals(resumed)
        assert all(
            resumed.decrypt(t, context=CONTEXT, actor="tester", purpose="testing") == PHONE
            for t in texts
        )
        report = resumed.keys.rotate_kek(new)
        assert report.remaining == 0
    with pg.Guard.open(url, kek=new, schema=schema) as finished:
        allow_test_reveals(finished)
        assert all(
            finished.decrypt(t, context=CONTEXT, actor="tester", purpose="testing") == PHONE
            for t in texts
        )


def test_local_kek_file_is_private_and_reloads(tmp_path: Path) -> None:
    """generate writes mode 0600 and never overwrites; from_file loads the same key."""
    path = tmp_path / "keys" / "kek.key"
    kek = LocalKEK.generate(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = LocalKEK.from_file(path)
    assert again.kek_id == kek.kek_id
    context = {"a": "b"}
    assert again.unwrap(kek.wrap(b"k" * 32, context), context) == b"k" * 32
    with pytest.raises(pg.InvalidArgument, match="never overwritten"):
        LocalKEK.generate(path)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_local_kek_refuses_readable_files(tmp_path: Path, mode: int) -> None:
    """A key file readable or writable by group or others is refused."""
    path = tmp_path / "kek.key"
    LocalKEK.generate(path)
    os.chmod(path, mode)
    with pytest.raises(pg.InsecureKeyFile):
        LocalKEK.from_file(path)


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o720])
def test_local_kek_refuses_a_directory_others_may_write(tmp_path: Path, mode: int) -> None:
    """Whoever may write the directory may swap the key file: refused (sticky or not)."""
    (tmp_path / "keys").mkdir(mode=0o700)
    LocalKEK.generate(tmp_path / "keys" / "kek.key")
    os.chmod(tmp_path / "keys", mode)
    with pytest.raises(pg.InsecureKeyFile):
        LocalKEK.from_file(tmp_path / "keys" / "kek.key")


def test_local_kek_refuses_a_symbolic_link(tmp_path: Path) -> None:
    """A key file that is a symlink (to a file an attacker controls, or one that moves) is
    refused without following it."""
    LocalKEK.generate(tmp_path / "real.key")
    (tmp_path / "kek.key").symlink_to(tmp_path / "real.key")
    with pytest.raises(pg.InsecureKeyFile, match="symbolic link"):
        LocalKEK.from_file(tmp_path / "kek.key")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_local_kek_refuses_another_users_file(tmp_path: Path) -> None:
    """A key file that belongs to another user is refused, even at mode 0600."""
    path = tmp_path / "kek.key"
    LocalKEK.generate(path)
    os.chown(path, 65534, 65534)  # nobody
    with pytest.raises(pg.InsecureKeyFile, match="belong"):
        LocalKEK.from_file(path)


@pytest.mark.parametrize(
    "content", [b"not a key\n", b"piiguard local KEK v1\nAAAA\n", b"piiguard local KEK v1\n!!\n"]
)
def test_local_kek_refuses_damaged_files(tmp_path: Path, content: bytes) -> None:
    """Wrong header, short key, bad base64: a clear KeyProviderError."""
    path = tmp_path / "kek.key"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(pg.KeyProviderError):
        LocalKEK.from_file(path)


def test_local_kek_is_an_opaque_handle(tmp_path: Path) -> None:
    """No public constructor, a redacted repr, no pickling, wrapped keys bound to context."""
    kek = LocalKEK.generate(tmp_path / "kek.key")
    with pytest.raises(TypeError):
        LocalKEK(b"x" * 32, tmp_path / "kek.key")
    assert repr(kek) == f"LocalKEK(id={kek.kek_id!r}, [secure])"
    with pytest.raises(TypeError):
        pickle.dumps(kek)
    wrapped = kek.wrap(b"k" * 32, {"key_id": "1"})
    with pytest.raises(pg.KeyProviderError):
        kek.unwrap(wrapped, {"key_id": "2"})
    with pytest.raises(pg.KeyProviderError):
        kek.unwrap(wrapped[:-1], {"key_id": "1"})


def test_secret_bytes_hide_themselves() -> None:
    """Key material's repr and str are redacted, and it cannot be pickled."""
    from piiguard.crypto._secret import SecretBytes

    secret = SecretBytes(b"\x01" * 32)
    assert repr(secret) == str(secret) == "SecretBytes(<redacted>)"
    assert secret == b"\x01" * 32
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_failures_during_encryption_keep_the_value_out_of_every_frame(
    store_target: StoreTarget, kek: LocalKEK
) -> None:
    """A KEK outage while a new key is made, a bad context, a non-text value: the error's
    traceback, with every local rendered, holds no canary."""
    url, schema = store_target
    down = CountingKEK(kek, fail_after_wraps=0)
    with pg.Guard.open(url, kek=down, schema=schema) as guard:
        calls: list[Callable[[], object]] = [
            lambda: guard.encrypt(CANARY_PHONE, context=CONTEXT),
            lambda: guard.encrypt_bytes(CANARY_PHONE, context=CONTEXT, subject="u1"),
            lambda: guard.encrypt_many([CANARY_PHONE], contexts=[CONTEXT]),
            lambda: guard.encrypt_deterministically(CANARY_ID, context=CONTEXT),
            lambda: guard.blind_index(CANARY_PHONE, field="customers.phone"),
            lambda: guard.encrypt(CANARY_PHONE, context={"id": 1}),  # type: ignore[dict-item]
            lambda: guard.encrypt(int(CANARY_PHONE), context=CONTEXT),  # type: ignore[arg-type]
            lambda: guard.blind_index(int(CANARY_PHONE), field="f"),  # type: ignore[arg-type]
        ]
        for call in calls:
            with pytest.raises((pg.KeyProviderError, TypeError)) as caught:
                call()
            assert_no_canary(exception_text(caught.value))


def test_an_audited_reveal_that_cannot_be_recorded_fails_closed(
    store_target: StoreTarget, kek: LocalKEK
) -> None:
    """When the event sink fails, decrypt raises its error and reveals nothing (every reveal
    is audited now: there is no unaudited decrypt left to succeed)."""
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, events=FailingSink()) as guard:
        for name in ("after_sales", "refund"):
            guard.consent.register(pg.Purpose(name, basis="contract", kinds={"phone"}))
        text = guard.encrypt(CANARY_PHONE, context=CONTEXT)
        with pytest.raises(pg.EventNotRecorded, match="OSError") as caught:
            guard.decrypt(text, context=CONTEXT, actor="cs-7", purpose="after_sales")
        assert_no_canary(piiguard_frames_text(caught.value))
        with pytest.raises(pg.EventNotRecorded, match="OSError") as caught:
            guard.decrypt_many([text], contexts=[CONTEXT], actor="cs-7", purpose="refund")
        assert_no_canary(piiguard_frames_text(caught.value))


@pytest.mark.parametrize("suite", ["aes256gcm", "sm4gcm"])
def test_bulk_pseudonyms_equal_the_cached_ones(tmp_path: Path, kek: LocalKEK, suite: str) -> None:
    """The uncached function for campaigns maps subjects exactly as subject_scope does."""
    subjects = ("u1", "用户", "x" * 300)
    with pg.Guard.open(f"sqlite:///{tmp_path / 'p.db'}", kek=kek, suite=suite) as guard:
        keyring = guard._keyring
        bulk = keyring.subject_scope_function()
        assert [bulk(s) for s in subjects] == [keyring.subject_scope(s) for s in subjects]


def test_decryption_key_accepts_only_data_key_rows(guard: pg.Guard) -> None:
    """A ciphertext naming a root key's id (forged, or a deterministic header reused) is
    refused: root keys are never used as nonce-based AEAD keys."""
    guard.blind_index(CANARY_PHONE, field="phone")
    root_id, _ = guard._keyring.root_key("index")
    with pytest.raises(pg.KeyNotFound):
        guard._keyring.decryption_key(root_id)


def test_the_derived_key_cache_is_bounded(guard: pg.Guard) -> None:
    """One derived key per field, however many fields an application invents: the cache
    stays bounded (an unbounded one grows with every label ever used)."""
    from piiguard.crypto.roots import _DERIVED_CACHE

    for index in range(_DERIVED_CACHE + 10):
        guard.blind_index(CANARY_PHONE, field=f"field{index}")
    assert len(guard._keyring._roots._derived) <= _DERIVED_CACHE
