"""One consent state: check, missing, filter and proof agree, whatever the names, the clock or
the process; notices keep what subjects were shown; proofs name what was agreed to."""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, update

import piiguard as pg
from piiguard.keys import LocalKEK
from piiguard.store._schema import SCHEMA_VERSION
from tests.conftest import StoreTarget

FROZEN = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def frozen(store_target: StoreTarget, kek: LocalKEK) -> Iterator[pg.Guard]:
    """A Guard whose clock never moves: every event and notice happens at one instant."""
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, clock=lambda: FROZEN) as guard:
        yield guard


def _answers(guard: pg.Guard, subject: str, purpose: str) -> tuple[bool, bool, bool, bool]:
    """What each of the four questions says about one subject and purpose."""
    return (
        guard.consent.check(subject, purpose),
        purpose not in guard.consent.missing(subject, [purpose]),
        list(guard.consent.filter([subject], purpose)) == [subject],
        guard.consent.proof(subject, purpose, actor="tester").valid,
    )


def _purposes(guard: pg.Guard, version: str) -> frozenset[str]:
    notice = guard.consent.notice(version)
    assert notice is not None
    return notice.purposes


def test_a_material_notice_at_the_same_instant_as_the_grant_stales_it_everywhere(
    frozen: pg.Guard,
) -> None:
    """Order is the ledger's, not the clock's: check() said True where filter() said no."""
    frozen.consent.register(pg.Purpose("marketing_sms", kinds={"phone"}))
    frozen.consent.publish_notice("v1", purposes=["marketing_sms"])
    frozen.consent.grant("u1", "marketing_sms", notice="v1")
    assert _answers(frozen, "u1", "marketing_sms") == (True, True, True, True)
    frozen.consent.publish_notice("v2", purposes=["marketing_sms"], material=True)
    assert _answers(frozen, "u1", "marketing_sms") == (False, False, False, False)
    frozen.consent.grant("u1", "marketing_sms", notice="v2")
    assert _answers(frozen, "u1", "marketing_sms") == (True, True, True, True)


def test_a_purpose_name_is_matched_exactly_not_as_a_pattern(guard: pg.Guard) -> None:
    """``_`` is a LIKE wildcard: a notice for ``abxc`` staled ``ab_c`` grants in check()."""
    for name in ("ab_c", "abxc"):
        guard.consent.register(pg.Purpose(name, kinds={"phone"}))
    guard.consent.publish_notice("v1", purposes=["ab_c", "abxc"])
    guard.consent.grant("u1", "ab_c", notice="v1")
    guard.consent.grant("u1", "abxc", notice="v1")
    guard.consent.publish_notice("v2", purposes=["abxc"], material=True)
    assert _answers(guard, "u1", "ab_c") == (True, True, True, True)
    assert _answers(guard, "u1", "abxc") == (False, False, False, False)


def test_a_non_ascii_purpose_is_staled_by_its_material_notice(guard: pg.Guard) -> None:
    """Names stored with JSON escapes escaped the LIKE match in check() and proof()."""
    guard.consent.register(pg.Purpose("publicité", kinds={"email"}))
    guard.consent.publish_notice("v1", purposes=["publicité"])
    guard.consent.grant("u1", "publicité", notice="v1")
    assert _answers(guard, "u1", "publicité") == (True, True, True, True)
    guard.consent.publish_notice("v2", purposes=["publicité"], material=True)
    assert _answers(guard, "u1", "publicité") == (False, False, False, False)
    assert _purposes(guard, "v2") == {"publicité"}


def test_a_non_material_notice_stales_nothing(guard: pg.Guard) -> None:
    guard.consent.register(pg.Purpose("marketing_sms", kinds={"phone"}))
    guard.consent.publish_notice("v1", purposes=["marketing_sms"])
    guard.consent.grant("u1", "marketing_sms", notice="v1")
    guard.consent.publish_notice("v1.1", purposes=["marketing_sms"], material=False)
    assert _answers(guard, "u1", "marketing_sms") == (True, True, True, True)


def test_a_notice_keeps_the_hash_of_what_subjects_were_shown(guard: pg.Guard) -> None:
    """PIPL Art. 17: the proof shows which text the subject read."""
    text = "我们将使用您的手机号发送促销短信。"
    guard.consent.register(pg.Purpose("marketing_sms", kinds={"phone"}))
    published = guard.consent.publish_notice("v1", purposes=["marketing_sms"], text=text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert published.text_sha256 == digest
    assert published.text is None  # only the hash, unless asked
    kept = guard.consent.publish_notice(
        "v2", purposes=["marketing_sms"], text=text + "\n", keep_text=True
    )
    assert guard.consent.notice("v2") == kept
    assert kept.text == text + "\n"
    guard.consent.grant("u1", "marketing_sms", notice="v1")
    proof = guard.consent.proof("u1", "marketing_sms", actor="tester")
    assert proof.notice is not None
    assert proof.notice.text_sha256 == digest


def test_publishing_a_notice_again_is_idempotent_and_other_content_is_refused(
    guard: pg.Guard,
) -> None:
    """Instances starting together publish the same notice; a changed text needs a version."""
    guard.consent.register(pg.Purpose("marketing_sms", kinds={"phone"}))
    first = guard.consent.publish_notice("v1", purposes=["marketing_sms"], text="A")
    assert guard.consent.publish_notice("v1", purposes=["marketing_sms"], text="A") == first
    for other in (
        {"purposes": ["marketing_sms"], "text": "B"},
        {"purposes": ["marketing_sms"], "text": None},
        {"purposes": [], "text": "A"},
        {"purposes": ["marketing_sms"], "text": "A", "material": False},
    ):
        with pytest.raises(pg.PolicyViolation, match="new version"):
            guard.consent.publish_notice("v1", **other)  # type: ignore[arg-type,unused-ignore]
    assert guard.consent.notice("v1") == first


def test_a_proof_names_the_purpose_as_agreed_not_as_redefined(guard: pg.Guard) -> None:
    """Purpose definitions are versioned, never overwritten."""
    original = pg.Purpose("marketing_sms", kinds={"phone"}, description="短信促销")
    guard.consent.register(original)
    guard.consent.publish_notice("v1", purposes=["marketing_sms"])
    guard.consent.grant("u1", "marketing_sms", notice="v1")
    redefined = pg.Purpose("marketing_sms", kinds={"phone", "email"}, description="全渠道促销")
    assert guard.consent.register(redefined) == 2
    proof = guard.consent.proof("u1", "marketing_sms", actor="tester")
    assert proof.agreed == original
    assert proof.purpose == redefined
    assert proof.purpose_version == 2
    assert proof.grant is not None
    assert proof.grant.purpose_version == 1
    assert not proof.valid


def test_after_erasure_a_proof_says_the_evidence_was_erased(guard: pg.Guard) -> None:
    guard.consent.register(pg.Purpose("marketing_sms", kinds={"phone"}))
    guard.consent.publish_notice("v1", purposes=["marketing_sms"])
    guard.consent.grant("u1", "marketing_sms", notice="v1", evidence={"ip": "198.51.100.7"})
    assert guard.consent.proof("u1", "marketing_sms", actor="tester").evidence == {
        "ip": "198.51.100.7"
    }
    guard.erase("u1")
    proof = guard.consent.proof("u1", "marketing_sms", actor="tester")  # used to raise KeyDestroyed
    assert proof.evidence_erased
    assert proof.evidence == {}
    assert proof.grant is not None
    assert not proof.valid


def test_another_guard_in_this_process_sees_a_withdrawal_at_once(
    store_target: StoreTarget, kek: LocalKEK
) -> None:
    """A warm cache in one Guard never outlives a commit made through another."""
    url, schema = store_target
    with (
        pg.Guard.open(url, kek=kek, schema=schema) as a,
        pg.Guard.open(url, kek=kek, schema=schema) as b,
    ):
        a.consent.register(pg.Purpose("marketing_sms", kinds={"phone"}))
        a.consent.publish_notice("v1", purposes=["marketing_sms"])
        a.consent.grant("u1", "marketing_sms", notice="v1")
        for _ in range(3):
            assert b.consent.check("u1", "marketing_sms")  # warm
        a.consent.withdraw("u1", "marketing_sms")
        assert not b.consent.check("u1", "marketing_sms")
        a.consent.grant("u1", "marketing_sms", notice="v1")
        assert b.consent.check("u1", "marketing_sms")
        a.consent.publish_notice("v2", purposes=["marketing_sms"])
        assert not b.consent.check("u1", "marketing_sms")


def _withdraw_in_another_process(url: str, schema: str | None, kek_path: str) -> None:
    with pg.Guard.open(url, kek=LocalKEK.from_file(kek_path), schema=schema) as guard:
        guard.consent.withdraw("u1", "marketing_sms")


def test_another_process_sees_a_withdrawal_within_moments(
    store_target: StoreTarget, tmp_path: Path
) -> None:
    """PIPL Art. 15 across processes: a warm cache is dropped when another process commits
    (``make bench`` measures how soon; here only that it happens)."""
    url, schema = store_target
    kek_path = tmp_path / "shared.key"
    LocalKEK.generate(kek_path)
    with pg.Guard.open(url, kek=LocalKEK.from_file(kek_path), schema=schema) as guard:
        guard.consent.register(pg.Purpose("marketing_sms", kinds={"phone"}))
        guard.consent.publish_notice("v1", purposes=["marketing_sms"])
        guard.consent.grant("u1", "marketing_sms", notice="v1")
        counter = guard.store.change_counter()
        assert counter is not None
        deadline = time.monotonic() + 5
        while counter() != counter() and time.monotonic() < deadline:  # until it is live
            time.sleep(0.01)
        assert counter() == counter()
        assert guard.consent.check("u1", "marketing_sms")
        assert guard.consent.check("u1", "marketing_sms")  # warm
        context = multiprocessing.get_context("spawn")
        process = context.Process(
            target=_withdraw_in_another_process, args=(url, schema, str(kek_path))
        )
        process.start()
        process.join(60)
        assert process.exitcode == 0
        deadline = time.monotonic() + 5
        while guard.consent.check("u1", "marketing_sms") and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not guard.consent.check("u1", "marketing_sms")


def test_a_version_5_store_gains_purpose_versions_and_ordered_notices(
    tmp_path: Path, kek: LocalKEK
) -> None:
    """Schema 6 backfills from what schema 5 kept: notices' JSON purposes, current purposes."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with pg.Guard.open(url, kek=kek) as guard:
        guard.consent.register(pg.Purpose("marketing_sms", kinds={"phone"}))
        guard.consent.register(pg.Purpose("publicité", kinds={"email"}))
        guard.consent.publish_notice("v1", purposes=["marketing_sms", "publicité"])
        guard.consent.grant("u1", "marketing_sms", notice="v1")
        guard.consent.grant("u1", "publicité", notice="v1")
        guard.consent.publish_notice("v2", purposes=["publicité"])
        tables = guard.store.tables
        with guard.store.engine.begin() as connection:  # what schema 5 had
            connection.execute(delete(tables.purpose_versions))
            connection.execute(delete(tables.notice_purposes))
            connection.execute(
                update(tables.notices)
                .where(tables.notices.c.version == "v1")
                .values(seq=None, purposes='["marketing_sms", "publicit\\u00e9"]')
            )
            connection.execute(
                update(tables.notices)
                .where(tables.notices.c.version == "v2")
                .values(seq=None, purposes='["publicit\\u00e9"]')
            )
            connection.execute(
                update(tables.meta).where(tables.meta.c.name == "schema_version").values(value="5")
            )
    with pg.Guard.open(url, kek=kek) as guard:
        assert guard.store.schema_version == SCHEMA_VERSION
        assert _purposes(guard, "v1") == {"marketing_sms", "publicité"}
        assert guard.consent.check("u1", "marketing_sms")
        assert not guard.consent.check("u1", "publicité")  # v2 came after v1
        assert guard.consent.proof(
            "u1", "marketing_sms", actor="tester"
        ).agreed == guard.consent.purpose("marketing_sms")
