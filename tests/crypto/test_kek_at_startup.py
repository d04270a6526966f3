"""The KEK at start-up: ``LocalKEK.load_or_generate`` for every start, ``Guard.open`` refusing a
KEK that does not open the store's keys, and rotating the KEK while several instances run."""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
import structlog.testing
from sqlalchemy import select

import piiguard as pg
from piiguard.keys import LocalKEK
from piiguard.testing import allow_test_reveals
from tests.conftest import StoreTarget
from tests.helpers import CANARY_PHONE, exception_text

CONTEXT = {"table": "customers", "field": "phone"}


def _reads(guard: pg.Guard, texts: list[str]) -> bool:
    return all(
        guard.decrypt(t, context=CONTEXT, actor="tester", purpose="testing") == CANARY_PHONE
        for t in texts
    )


# -- load_or_generate ------------------------------------------------------------------------


def test_load_or_generate_makes_a_key_once_and_loads_it_at_every_later_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys" / "kek.key"
    first = LocalKEK.load_or_generate(path)
    again = LocalKEK.load_or_generate(path)
    assert first.kek_id == again.kek_id == LocalKEK.from_file(path).kek_id
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["kek.key"]  # no temp file left
    with pytest.raises(pg.InvalidArgument):
        LocalKEK.generate(path)  # generate still never overwrites


def test_load_or_generate_refuses_a_damaged_or_exposed_key_file_instead_of_replacing_it(
    tmp_path: Path,
) -> None:
    damaged = tmp_path / "damaged.key"
    damaged.write_bytes(b"piiguard local KEK v1\n!!!!\n")
    damaged.chmod(0o600)
    with pytest.raises(pg.KeyProviderError):
        LocalKEK.load_or_generate(damaged)
    assert damaged.read_bytes() == b"piiguard local KEK v1\n!!!!\n"
    exposed = tmp_path / "exposed.key"
    LocalKEK.generate(exposed)
    exposed.chmod(0o644)
    with pytest.raises(pg.InsecureKeyFile):
        LocalKEK.load_or_generate(exposed)
    with pytest.raises(pg.InvalidArgument):
        LocalKEK.load_or_generate("")


def _start(path: str, ready: Barrier, out: multiprocessing.Queue[str]) -> None:
    ready.wait()
    out.put(LocalKEK.load_or_generate(path).kek_id)


def test_instances_starting_at_once_end_with_one_key(tmp_path: Path) -> None:
    """Eight processes start together on an empty directory: one key is made, every one
    loads it (none reads a half-written file, none overwrites another's)."""
    context = multiprocessing.get_context("fork")
    ready, out = context.Barrier(8), context.Queue()
    path = str(tmp_path / "kek.key")
    workers = [context.Process(target=_start, args=(path, ready, out)) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    ids = {out.get(timeout=5) for _ in workers}
    assert len(ids) == 1
    assert ids == {LocalKEK.from_file(path).kek_id}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kek.key"]


# -- a wrong KEK at start-up -----------------------------------------------------------------


def test_open_refuses_a_kek_that_does_not_open_the_store(
    store_target: StoreTarget, tmp_path: Path
) -> None:
    """Another instance's key file (a lost volume, a copy-paste) fails at open with WrongKEK,
    naming neither key; the right one opens; an empty store takes any KEK."""
    url, schema = store_target
    right = LocalKEK.generate(tmp_path / "right.key")
    other = LocalKEK.generate(tmp_path / "other.key")
    with pg.Guard.open(url, kek=other, schema=schema):
        pass  # an empty store: nothing to check yet, so this is no evidence against `other`
    with pg.Guard.open(url, kek=right, schema=schema) as guard:
        text = guard.encrypt(CANARY_PHONE, context=CONTEXT, subject="customer-1")
    with pytest.raises(pg.WrongKEK) as caught:
        pg.Guard.open(url, kek=other, schema=schema)
    assert isinstance(caught.value, pg.KeyProviderError)
    assert CANARY_PHONE not in exception_text(caught.value)
    for kek in (right, other):  # fingerprints, but the message names no key
        assert kek.kek_id.removeprefix("local:") not in str(caught.value)
    with pg.Guard.open(url, kek=right, schema=schema) as again:
        allow_test_reveals(again)
        assert _reads(again, [text])


# -- rotating the KEK while several instances run --------------------------------------------


def test_kek_rotation_with_several_instances_running(
    store_target: StoreTarget, tmp_path: Path
) -> None:
    """The procedure of docs/encryption.md: (1) every instance runs with the new KEK in
    ``previous_keks``; (2) one instance rotates; (3) instances restart with the new KEK.
    Instances that still name the old KEK first keep working and their epoch advances stay
    under the new KEK (they used to advance back into the old one, undoing the rotation)."""
    url, schema = store_target
    old, new = LocalKEK.generate(tmp_path / "old.key"), LocalKEK.generate(tmp_path / "new.key")
    with pg.Guard.open(url, kek=old, schema=schema) as before:
        texts = [before.encrypt(CANARY_PHONE, context=CONTEXT, subject="customer-1")]
    step1 = {"kek": old, "previous_keks": [new], "schema": schema, "key_epoch": None}
    with pg.Guard.open(url, **step1) as a, pg.Guard.open(url, **step1) as b:  # type: ignore[arg-type]
        allow_test_reveals(a)
        texts.append(b.encrypt(CANARY_PHONE, context=CONTEXT, subject="customer-2"))
        a.keys.rotate_kek(new)  # step 2, on one instance
        texts.append(b.encrypt(CANARY_PHONE, context=CONTEXT, subject="customer-3"))
        assert _reads(b, texts)
        b.keys.advance_epoch()  # b still names the old KEK first
        texts.append(b.encrypt(CANARY_PHONE, context=CONTEXT, subject="customer-4"))
        assert _reads(a, texts)
    with pg.Guard.open(url, kek=new, schema=schema) as after:  # step 3
        allow_test_reveals(after)
        assert _reads(after, texts)
    with pytest.raises(pg.WrongKEK):  # the old KEK alone opens nothing any more
        pg.Guard.open(url, kek=old, schema=schema)


def test_a_key_file_restored_without_its_epochs_file_is_reported_and_loses_nothing(
    store_target: StoreTarget, tmp_path: Path
) -> None:
    """A bind-mount of kek.key alone, a restore of only the key file: the store's active
    epoch has no object in the holder. The open says so (as it would for a copy of the store
    from before an advance, which reads as destroyed by design), and an advance is refused
    before it changes anything. Found by an attack review: the advance destroyed every key
    for good, so putting the file back no longer helped."""
    url, schema = store_target
    key_file = tmp_path / "kek.key"
    with pg.Guard.open(url, kek=LocalKEK.load_or_generate(key_file), schema=schema) as first:
        allow_test_reveals(first)
        text = first.encrypt(CANARY_PHONE, context=CONTEXT, subject="customer-1")
    epochs = key_file.with_name("kek.key.epochs")
    epochs.rename(tmp_path / "epochs.saved")
    with (
        structlog.testing.capture_logs() as logged,
        pg.Guard.open(url, kek=LocalKEK.from_file(key_file), schema=schema) as lost,
    ):
        assert "epoch_object_missing" in {entry["event"] for entry in logged}
        allow_test_reveals(lost)
        with pytest.raises(pg.KeyDestroyed):
            _reads(lost, [text])
        with lost.store.engine.connect() as connection:
            before = connection.execute(select(lost.store.tables.epochs)).all()
        with pytest.raises(pg.WrongKEK):
            lost.keys.advance_epoch()
        with lost.store.engine.connect() as connection:
            assert connection.execute(select(lost.store.tables.epochs)).all() == before
    epochs.unlink(missing_ok=True)  # a fresh file the failed open may have begun
    (tmp_path / "epochs.saved").rename(epochs)
    with pg.Guard.open(url, kek=LocalKEK.from_file(key_file), schema=schema) as again:
        allow_test_reveals(again)
        assert _reads(again, [text])


def test_an_instance_without_the_new_kek_cannot_advance_back_into_the_old_one(
    store_target: StoreTarget, tmp_path: Path
) -> None:
    """A stale instance (the old KEK only) runs its sweep after another instance rotated:
    its advance is refused before it makes an epoch, so step 3 still opens with the new KEK
    alone (found by an attack review: it made an epoch under the old KEK first)."""
    url, schema = store_target
    old, new = LocalKEK.generate(tmp_path / "old.key"), LocalKEK.generate(tmp_path / "new.key")
    with (
        pg.Guard.open(url, kek=old, previous_keks=[new], schema=schema, key_epoch=None) as a,
        pg.Guard.open(url, kek=old, schema=schema, key_epoch=None) as stale,
    ):
        text = a.encrypt(CANARY_PHONE, context=CONTEXT, subject="customer-1")
        a.keys.rotate_kek(new)
        with a.store.engine.connect() as connection:
            before = connection.execute(select(a.store.tables.epochs)).all()
        with pytest.raises(pg.WrongKEK):
            stale.keys.advance_epoch()
        with a.store.engine.connect() as connection:
            assert connection.execute(select(a.store.tables.epochs)).all() == before
    with pg.Guard.open(url, kek=new, schema=schema) as after:
        allow_test_reveals(after)
        assert _reads(after, [text])


def test_a_key_is_never_written_where_others_could_swap_it_nor_a_tree_made_for_a_typo(
    tmp_path: Path,
) -> None:
    """Found by the review of issue 13: a key went into a world-writable directory (and the
    next start refused it), and a mistyped path made every missing directory."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(pg.InsecureKeyFile):
        LocalKEK.load_or_generate(shared / "kek.key")
    assert list(shared.iterdir()) == []
    with pytest.raises(pg.KeyProviderError):
        LocalKEK.load_or_generate(tmp_path / "typo" / "deeper" / "kek.key")
    assert not (tmp_path / "typo").exists()
    LocalKEK.load_or_generate(tmp_path / "one-level" / "kek.key")  # one new directory is fine
    assert (tmp_path / "one-level").stat().st_mode & 0o777 == 0o700
