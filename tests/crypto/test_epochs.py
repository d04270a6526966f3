"""Key epochs: an erasure reaches copies of the store once the epoch advances (issue 9).

Each test does what an attacker holding a backup, or an operator restoring one, would do:
copy the store before an erasure, erase, advance the epoch, and open the copy with the same
KEK provider.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

import piiguard as pg
from piiguard.keys import EpochKeyFile, LocalKEK
from piiguard.testing import allow_test_reveals
from tests.conftest import StoreTarget
from tests.crypto.stores import copy_store, drop_copy
from tests.helpers import CANARY_PHONE

CONTEXT = {"table": "customers", "field": "phone"}
NOTICE = "2026-11"
EVIDENCE = {"channel": "app", "ip": "198.51.100.7"}
OTHER_PHONE = "13912345678"


@dataclass
class Planted:
    """What a shop holds on one subject: a field, a vault token, consent evidence."""

    subject: str
    phone: str
    ciphertext: str
    token: str


def _prepare(guard: pg.Guard) -> None:
    """Purposes and a notice, registered before any copy is taken, so every copy has them
    (the reveals below name ``testing``)."""
    allow_test_reveals(guard)
    guard.consent.register(pg.Purpose("marketing_sms", basis="consent", kinds={"phone"}))
    guard.consent.publish_notice(NOTICE, purposes=["marketing_sms"])


def _plant(guard: pg.Guard, subject: str, phone: str) -> Planted:
    ciphertext = guard.encrypt(phone, context=CONTEXT, subject=subject)
    token = guard.vault.tokenize(phone, subject=subject, kind="phone")
    guard.consent.grant(subject, "marketing_sms", notice=NOTICE, evidence=EVIDENCE)
    return Planted(subject, phone, ciphertext, token)


def _reads(guard: pg.Guard, planted: Planted) -> tuple[str, str, dict[str, str]]:
    """The subject's field, vault entry and consent evidence, as the guard opens them."""
    return (
        guard.decrypt(planted.ciphertext, context=CONTEXT, actor="tester", purpose="testing"),
        guard.vault.detokenize(planted.token, actor="tester", purpose="testing"),
        dict(guard.consent.proof(planted.subject, "marketing_sms", actor="tester").evidence),
    )


def _assert_opens_nothing(guard: pg.Guard, planted: Planted) -> None:
    with pytest.raises(pg.DecryptionError):
        guard.decrypt(planted.ciphertext, context=CONTEXT, actor="tester", purpose="testing")
    with pytest.raises((pg.DecryptionError, pg.TokenNotFound)):
        guard.vault.detokenize(planted.token, actor="tester", purpose="testing")
    try:  # the live store says the evidence was erased; a dead copy opens no key at all
        proof = guard.consent.proof(planted.subject, "marketing_sms", actor="tester")
    except pg.DecryptionError:
        return
    assert proof.evidence_erased
    assert proof.evidence == {}


@pytest.fixture
def copies() -> Iterator[list[StoreTarget]]:
    """Copies made by a test, dropped afterwards."""
    made: list[StoreTarget] = []
    yield made
    for target in made:
        drop_copy(target)


def _copy(target: StoreTarget, copies: list[StoreTarget]) -> StoreTarget:
    copy = copy_store(target)
    copies.append(copy)
    return copy


def test_a_copy_from_before_an_erase_opens_nothing_after_an_advance(
    store_target: StoreTarget, kek: LocalKEK, copies: list[StoreTarget]
) -> None:
    """The promise: erase, advance once, and no earlier copy opens the subject's data; the
    live store still opens everyone else's."""
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema) as guard:
        _prepare(guard)
        erased = _plant(guard, "u1", CANARY_PHONE)
        kept = _plant(guard, "u2", OTHER_PHONE)
        early = _copy(store_target, copies)  # a nightly backup
        guard.encrypt("later", context=CONTEXT, subject="u1")
        late = _copy(store_target, copies)  # taken just before the erasure
        guard.erase("u1")
        report = guard.keys.advance_epoch()
        assert report.destroyed >= 1
        assert report.unreadable == ()
        assert _reads(guard, kept) == (OTHER_PHONE, "+86" + OTHER_PHONE, EVIDENCE)
        _assert_opens_nothing(guard, erased)
    for copy_url, copy_schema in (early, late):
        with pg.Guard.open(copy_url, kek=kek, schema=copy_schema) as restored:
            _assert_opens_nothing(restored, erased)


def test_a_copy_opens_until_the_next_advance(
    store_target: StoreTarget, kek: LocalKEK, copies: list[StoreTarget]
) -> None:
    """The documented window: before the advance, a pre-erase copy still opens the subject
    (without an erasure log); the advance closes it."""
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema) as guard:
        _prepare(guard)
        erased = _plant(guard, "u1", CANARY_PHONE)
        backup = _copy(store_target, copies)
        guard.erase("u1")
        with pg.Guard.open(backup[0], kek=kek, schema=backup[1]) as restored:
            assert (
                restored.decrypt(
                    erased.ciphertext, context=CONTEXT, actor="tester", purpose="testing"
                )
                == CANARY_PHONE
            )
        guard.keys.advance_epoch()
    with pg.Guard.open(backup[0], kek=kek, schema=backup[1]) as restored:
        _assert_opens_nothing(restored, erased)


def test_a_restored_backup_replays_the_erasure_log(
    store_target: StoreTarget, kek: LocalKEK, copies: list[StoreTarget], tmp_path: Path
) -> None:
    """Restore a pre-erase copy inside the epoch: open shreds the logged subjects again before
    it returns; everyone else still opens, and a second open replays nothing."""
    url, schema = store_target
    log = tmp_path / "erasures.log"
    with pg.Guard.open(url, kek=kek, schema=schema, erasure_log=log) as guard:
        _prepare(guard)
        erased = _plant(guard, "u1", CANARY_PHONE)
        kept = _plant(guard, "u2", OTHER_PHONE)
        backup = _copy(store_target, copies)
        guard.erase("u1")
    assert log.read_text().count("subject:") == 1
    assert "u1" not in log.read_text()
    with pg.Guard.open(backup[0], kek=kek, schema=backup[1], erasure_log=log) as restored:
        _assert_opens_nothing(restored, erased)
        assert _reads(restored, kept) == (OTHER_PHONE, "+86" + OTHER_PHONE, EVIDENCE)
        destroyed = restored.keys.counts()["destroyed"]
    with pg.Guard.open(backup[0], kek=kek, schema=backup[1], erasure_log=log) as again:
        assert again.keys.counts()["destroyed"] == destroyed
        assert again._keyring.replay_erasures() == 0


def test_an_advance_resumes_after_a_crash(store_target: StoreTarget, kek: LocalKEK) -> None:
    """A crash half-way (here: the progress callback raising after one batch) loses no key;
    running it again makes a new epoch, finishes, and destroys every earlier epoch."""
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema) as guard:
        allow_test_reveals(guard)
        texts = [guard.encrypt(CANARY_PHONE, context=CONTEXT, subject=f"u{i}") for i in range(7)]

        def crash(done: int) -> None:
            raise RuntimeError("power cut")

        with pytest.raises(RuntimeError):
            guard.keys.advance_epoch(batch_size=3, progress=crash)
        assert [
            guard.decrypt(t, context=CONTEXT, actor="tester", purpose="testing") for t in texts
        ] == [CANARY_PHONE] * 7
        report = guard.keys.advance_epoch(batch_size=3)
        assert report.destroyed == 2  # the first epoch and the crashed advance's
        epochs = guard.store.tables.epochs
        with guard.store.engine.connect() as connection:
            statuses = connection.execute(
                select(epochs.c.epoch, epochs.c.status).order_by(epochs.c.epoch)
            ).all()
        assert [status for _, status in statuses] == ["destroyed", "destroyed", "active"]
    with pg.Guard.open(url, kek=kek, schema=schema) as fresh:
        allow_test_reveals(fresh)
        assert [
            fresh.decrypt(t, context=CONTEXT, actor="tester", purpose="testing") for t in texts
        ] == [CANARY_PHONE] * 7


def test_the_epoch_file_forgets_destroyed_epochs(tmp_path: Path, kek: LocalKEK) -> None:
    """A LocalKEK's epoch objects live in a file beside its key; destroying one rewrites the
    file without it, so a copy of the file made later cannot open it."""
    holder = kek.epoch_keys
    assert isinstance(holder, EpochKeyFile)
    ref = holder.create_epoch()
    sealed = holder.seal_epoch_key(ref, b"\x01" * 32, {"epoch": "1"})
    assert holder.open_epoch_key(ref, sealed, {"epoch": "1"}) == b"\x01" * 32
    with pytest.raises(pg.KeyProviderError):
        holder.open_epoch_key(ref, sealed, {"epoch": "2"})
    holder.destroy_epoch(ref)
    with pytest.raises(pg.KeyDestroyed):
        holder.open_epoch_key(ref, sealed, {"epoch": "1"})
    assert ref not in (tmp_path / "kek.key.epochs").read_text()


def test_a_sweep_advances_the_epoch_when_it_is_due(
    store_target: StoreTarget, kek: LocalKEK
) -> None:
    """``key_epoch`` makes retention.sweep() advance: not before the period, then once."""
    url, schema = store_target
    now = [datetime(2026, 12, 1, tzinfo=UTC)]
    with pg.Guard.open(
        url, kek=kek, schema=schema, clock=lambda: now[0], key_epoch=timedelta(hours=6)
    ) as guard:
        guard.encrypt(CANARY_PHONE, context=CONTEXT, subject="u1")
        assert guard.retention.sweep().epoch_advanced is False
        now[0] += timedelta(hours=6)
        assert guard.retention.sweep().epoch_advanced is True
        assert guard.retention.sweep().epoch_advanced is False
    with pg.Guard.open(
        url, kek=kek, schema=schema, clock=lambda: now[0] + timedelta(days=9), key_epoch=None
    ) as never:
        assert never.retention.sweep().epoch_advanced is False


def test_keys_made_during_an_advance_are_not_lost(store_target: StoreTarget, kek: LocalKEK) -> None:
    """A second Guard creating keys between the advance's batches: every key ends under the
    new epoch or is rewrapped, none is left under a destroyed one."""
    url, schema = store_target
    with (
        pg.Guard.open(url, kek=kek, schema=schema) as advancing,
        pg.Guard.open(url, kek=kek, schema=schema) as writing,
    ):
        texts = [advancing.encrypt("x", context=CONTEXT, subject=f"a{i}") for i in range(5)]

        def write_between_batches(done: int) -> None:
            texts.append(writing.encrypt("y", context=CONTEXT, subject=f"w{done}"))

        report = advancing.keys.advance_epoch(batch_size=2, progress=write_between_batches)
        assert report.unreadable == ()
    with pg.Guard.open(url, kek=kek, schema=schema) as fresh:
        allow_test_reveals(fresh)
        opened = [
            fresh.decrypt(t, context=CONTEXT, actor="tester", purpose="testing") for t in texts
        ]
    assert opened.count("x") == 5
    assert opened.count("y") == len(texts) - 5


def test_a_damaged_key_row_is_reported_not_fatal(store_target: StoreTarget, kek: LocalKEK) -> None:
    """KEK rotation and epoch advances report a corrupted wrapped row and carry on."""
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema) as guard:
        allow_test_reveals(guard)
        good = guard.encrypt(CANARY_PHONE, context=CONTEXT, subject="good")
        guard.encrypt(CANARY_PHONE, context=CONTEXT, subject="bad")
        keys = guard.store.tables.keys
        scope = guard._keyring.subject_scope("bad")
        with guard.store.transaction() as connection:
            wrapped = connection.execute(
                select(keys.c.wrapped).where(keys.c.scope == scope)
            ).scalar_one()
            connection.execute(
                keys.update()
                .where(keys.c.scope == scope)
                .values(wrapped=wrapped[:-1] + bytes([wrapped[-1] ^ 1]))
            )
        report = guard.keys.advance_epoch()
        assert len(report.unreadable) == 1
        assert (
            guard.decrypt(good, context=CONTEXT, actor="tester", purpose="testing") == CANARY_PHONE
        )


def test_two_advances_at_once_lose_no_key(store_target: StoreTarget, kek: LocalKEK) -> None:
    """Two hosts' sweeps both find the epoch due: B's whole advance runs between two of A's
    batches. A stops writing under the epoch B retired, B destroys what it retired, and a
    fresh Guard still opens everything (found by an attack review of issue 9)."""
    url, schema = store_target
    with (
        pg.Guard.open(url, kek=kek, schema=schema, key_epoch=None) as first,
        pg.Guard.open(url, kek=kek, schema=schema, key_epoch=None) as second,
    ):
        texts = [first.encrypt(CANARY_PHONE, context=CONTEXT, subject=f"u{i}") for i in range(6)]
        reports: list[object] = []

        def second_advances_now(done: int) -> None:
            if not reports:
                reports.append(second.keys.advance_epoch(batch_size=2))

        first.keys.advance_epoch(batch_size=2, progress=second_advances_now)
        assert reports
    with pg.Guard.open(url, kek=kek, schema=schema) as fresh:
        allow_test_reveals(fresh)
        assert [
            fresh.decrypt(t, context=CONTEXT, actor="tester", purpose="testing") for t in texts
        ] == [CANARY_PHONE] * 6
        epochs = fresh.store.tables.epochs
        with fresh.store.engine.connect() as connection:
            statuses = connection.execute(select(epochs.c.status)).scalars().all()
        assert sorted(statuses) == ["active", "destroyed", "destroyed"]


def test_a_fresh_process_advances_and_creates_keys_under_an_unopened_epoch(
    store_target: StoreTarget, kek: LocalKEK
) -> None:
    """A cron process that only sweeps, and a second instance after an advance elsewhere,
    open the current epoch inside their own transaction (on SQLite a second connection used
    to wait 30 s on their own lock and fail)."""
    url, schema = store_target
    later = datetime(2030, 1, 1, tzinfo=UTC)
    with pg.Guard.open(url, kek=kek, schema=schema) as guard:
        text = guard.encrypt(CANARY_PHONE, context=CONTEXT, subject="u1")
    with pg.Guard.open(url, kek=kek, schema=schema, clock=lambda: later) as cron:
        started = time.monotonic()
        assert cron.retention.sweep().epoch_advanced
        assert time.monotonic() - started < 10
    with (
        pg.Guard.open(url, kek=kek, schema=schema) as one,
        pg.Guard.open(url, kek=kek, schema=schema) as other,
    ):
        allow_test_reveals(one)
        other.encrypt(CANARY_PHONE, context=CONTEXT, subject="u2")
        one.keys.advance_epoch()
        started = time.monotonic()
        fresh_text = other.encrypt(CANARY_PHONE, context=CONTEXT, subject="u3")
        hold = other.retention.hold(subject="u9", reason="new process, first pseudonym")
        assert time.monotonic() - started < 10
        assert (
            one.decrypt(fresh_text, context=CONTEXT, actor="tester", purpose="testing")
            == CANARY_PHONE
        )
        assert one.decrypt(text, context=CONTEXT, actor="tester", purpose="testing") == CANARY_PHONE
        assert hold.startswith("hold_")


def test_a_rotated_log_and_one_log_per_instance_still_replay(
    store_target: StoreTarget, kek: LocalKEK, copies: list[StoreTarget], tmp_path: Path
) -> None:
    """The replay position is kept per log: a log truncated by a rotation starts again from
    its beginning, and two instances with logs of their own never skip each other's entries
    (found by an attack review)."""
    url, schema = store_target
    log_a, log_b = tmp_path / "host-a.log", tmp_path / "host-b.log"
    with pg.Guard.open(url, kek=kek, schema=schema, erasure_log=log_b) as host_b:
        for index in range(6):
            host_b.encrypt("x", context=CONTEXT, subject=f"b{index}")
            host_b.erase(f"b{index}")
    with pg.Guard.open(url, kek=kek, schema=schema, erasure_log=log_a) as host_a:
        for index in range(3):
            host_a.encrypt("x", context=CONTEXT, subject=f"old{index}")
            host_a.erase(f"old{index}")
    with pg.Guard.open(url, kek=kek, schema=schema, erasure_log=log_a) as host_a:
        victim = host_a.encrypt(CANARY_PHONE, context=CONTEXT, subject="victim")
        backup = _copy(store_target, copies)  # remembers log A read up to its 3 lines
        log_a.write_bytes(b"")  # logrotate's copytruncate
        host_a.erase("victim")
        for index in range(3):
            host_a.erase(f"new{index}")  # the new log grows past the old position
    with pg.Guard.open(url, kek=kek, schema=schema, erasure_log=log_b):
        pass  # host B restarts: its own position, in the live store
    with pg.Guard.open(backup[0], kek=kek, schema=backup[1], erasure_log=log_a) as restored:
        allow_test_reveals(restored)
        opened = _opens(restored, victim)
    assert opened is False


def _opens(guard: pg.Guard, ciphertext: str) -> bool:
    try:
        guard.decrypt(ciphertext, context=CONTEXT, actor="tester", purpose="testing")
    except pg.KeyDestroyed:
        return False
    return True


class FlakyHolder:
    """The real epoch-key file, behind a provider that fails its next ``failures`` opens (a
    KMS throttle, an HSM session lost): what a fresh sweeper process may meet."""

    def __init__(self, real: EpochKeyFile, failures: int) -> None:
        self._real = real
        self.failures = failures

    @property
    def holder_id(self) -> str:
        return self._real.holder_id

    def create_epoch(self) -> str:
        return self._real.create_epoch()

    def seal_epoch_key(self, ref: str, key: bytes, context: Mapping[str, str]) -> bytes:
        return self._real.seal_epoch_key(ref, key, context)

    def open_epoch_key(self, ref: str, sealed: bytes, context: Mapping[str, str]) -> bytes:
        if self.failures:
            self.failures -= 1
            raise pg.KeyProviderError("ThrottlingException")
        return self._real.open_epoch_key(ref, sealed, context)

    def destroy_epoch(self, ref: str) -> None:
        self._real.destroy_epoch(ref)


def test_a_provider_outage_stops_an_advance_and_loses_nothing(
    store_target: StoreTarget, kek: LocalKEK
) -> None:
    """A throttled epoch-key open during an advance is not a damaged row: the advance stops
    with KeyProviderError, no epoch holding live keys is destroyed, and running it again
    finishes (found by an attack review: it used to destroy the pseudonym root key)."""
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, key_epoch=None) as guard:
        texts = [guard.encrypt(CANARY_PHONE, context=CONTEXT, subject=f"u{i}") for i in range(3)]
    holder = kek.epoch_keys
    assert isinstance(holder, EpochKeyFile)
    # the first failure meets the open's KEK check, which an outage does not stop (it says
    # nothing of the key); the second meets the advance
    flaky = FlakyHolder(holder, failures=2)
    with pg.Guard.open(url, kek=kek, schema=schema, key_epoch=None, epoch_keys=flaky) as sweeper:
        assert flaky.failures == 1
        with pytest.raises(pg.KeyProviderError):
            sweeper.keys.advance_epoch()
        report = sweeper.keys.advance_epoch()
        assert report.unreadable == ()
        assert report.destroyed == 1  # the failed advance stopped before it made an epoch
        sweeper.encrypt(CANARY_PHONE, context=CONTEXT, subject="u9")
        sweeper.erase("u0")
    with pg.Guard.open(url, kek=kek, schema=schema) as fresh:
        allow_test_reveals(fresh)
        assert [
            fresh.decrypt(t, context=CONTEXT, actor="tester", purpose="testing") for t in texts[1:]
        ] == [CANARY_PHONE] * 2
        assert not _opens(fresh, texts[0])


def test_a_replay_keeps_the_keys_of_a_subject_who_came_back(
    store_target: StoreTarget, kek: LocalKEK, copies: list[StoreTarget], tmp_path: Path
) -> None:
    """u1 is erased, then signs up again: restarts, a second instance with the log, and a
    restore all replay the log, and each destroys only the keys u1 had at the erasure
    (found by an attack review: a replay used to shred the new account's data)."""
    url, schema = store_target
    log = tmp_path / "erasures.log"
    with pg.Guard.open(url, kek=kek, schema=schema) as before_the_log:
        old = before_the_log.encrypt(CANARY_PHONE, context=CONTEXT, subject="u1")
        backup = _copy(store_target, copies)
    with pg.Guard.open(url, kek=kek, schema=schema, erasure_log=log) as guard:
        guard.erase("u1")
        time.sleep(0.002)  # the new account's key is made after the shred
        new = guard.encrypt(OTHER_PHONE, context=CONTEXT, subject="u1")
    for _ in range(2):  # ordinary restarts
        with pg.Guard.open(url, kek=kek, schema=schema, erasure_log=log) as again:
            allow_test_reveals(again)
            assert (
                again.decrypt(new, context=CONTEXT, actor="tester", purpose="testing")
                == OTHER_PHONE
            )
            assert not _opens(again, old)
    with pg.Guard.open(backup[0], kek=kek, schema=backup[1], erasure_log=log) as restored:
        allow_test_reveals(restored)
        assert not _opens(restored, old)
