"""Transfers abroad (issue 12): the subject's separate consent (PIPL Art. 39), the record of
each transfer's country and mechanism, and the yearly report of people provided abroad
against the 2024 Provisions' thresholds (made small here), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from joserfc.jwk import ECKey

import piiguard as pg
from piiguard.keys import LocalKEK
from piiguard.testing import DEFAULT_START, SettableClock
from tests.conftest import StoreTarget
from tests.helpers import CANARY_ID, CANARY_PHONE

SMALL = pg.CrossBorderThresholds(assessment_people=5, assessment_sensitive=2, contract_people=3)


class Parcel(pg.PIIModel):
    name: pg.PersonName
    phone: pg.Phone
    id_number: pg.CNResidentID


PARCEL = Parcel(name="张三丰", phone=CANARY_PHONE, id_number=CANARY_ID)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(DEFAULT_START.replace(month=3))


@pytest.fixture
def shop(store_target: StoreTarget, kek: LocalKEK, clock: SettableClock) -> Iterator[pg.Guard]:
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, clock=clock) as guard:
        consent = guard.consent
        consent.register(pg.Purpose("intl_delivery", basis="contract", kinds={"person_name"}))
        consent.register(
            pg.Purpose("customs", basis="contract", kinds={"cn_resident_id"}, separate=True)
        )
        for place in ("sg", "hk"):
            consent.register(pg.Purpose(f"xb_{place}", basis="consent", separate=True))
        consent.publish_notice("2026-01", purposes=["xb_sg", "xb_hk"], text="transfers abroad")
        for purpose in ("intl_delivery", "customs"):
            guard.records.assessment(
                purpose,
                risks=["transfer abroad"],
                measures=["standard contract"],
                author="dpo",
                covers=("providing", "cross_border"),
            )
        key = ECKey.generate_key("P-256").as_dict(private=False)
        terms: dict[str, Any] = {"public_key": key, "assessed_until": date(2027, 1, 1)}
        singapore = pg.CrossBorder("SG", "standard_contract", "SC-2026-001", consent="xb_sg")
        guard.sharing.register(
            pg.Recipient(
                "sg-forwarder",
                purposes={"intl_delivery"},
                fields={"name": "masked"},
                cross_border=singapore,
                **terms,
            )
        )
        guard.sharing.register(
            pg.Recipient(
                "sg-customs",
                purposes={"customs"},
                fields={"id_number": "clear"},
                cross_border=singapore,
                **terms,
            )
        )
        guard.sharing.register(
            pg.Recipient(
                "hk-courier",
                purposes={"intl_delivery"},
                fields={"name": "clear"},
                cross_border=pg.CrossBorder("HK", "exempt", consent="xb_hk"),
                **terms,
            )
        )
        yield guard


def _agree(shop: pg.Guard, *subjects: str, to: str = "xb_sg") -> None:
    for subject in subjects:
        shop.consent.grant(subject, to, notice="2026-01", evidence={"channel": "app"})


def _send(shop: pg.Guard, to: str, purpose: str, *subjects: str) -> None:
    shop.share_many(
        [PARCEL] * len(subjects), to=to, purpose=purpose, subjects=list(subjects), actor="svc:x"
    )


def test_a_transfer_abroad_needs_the_subject_s_separate_consent(shop: pg.Guard) -> None:
    with pytest.raises(pg.ShareRefused) as raised:
        shop.share(PARCEL, to="hk-courier", purpose="intl_delivery", subject="u1", actor="svc:x")
    assert (raised.value.reason, raised.value.missing) == ("cross_border_consent", ("xb_hk",))
    assert shop.sharing.recipients_of("u1") == []
    _agree(shop, "u1", to="xb_hk")
    shop.share(PARCEL, to="hk-courier", purpose="intl_delivery", subject="u1", actor="svc:x")
    (record,) = shop.sharing.recipients_of("u1")
    assert (record.country, record.mechanism) == ("HK", "exempt")
    (event,) = [e for e in shop.audit.events(action="share") if e.result == "ok"]
    assert event.detail["context"] == {"recipient": "hk-courier", "country": "HK"}


def test_the_yearly_report_counts_people_and_names_the_mechanism_required(
    shop: pg.Guard, clock: SettableClock
) -> None:
    _agree(shop, "u1", "u2", "u3", "u4")
    _agree(shop, "u1", "u2", "u9", to="xb_hk")
    _send(shop, "sg-forwarder", "intl_delivery", "u1", "u2")  # masked name only
    _send(shop, "hk-courier", "intl_delivery", "u1", "u2", "u9")  # contract-exempt
    report = shop.sharing.cross_border_report(2026, SMALL)
    assert (report.people, report.sensitive_people, report.exempt_people) == (2, 0, 1)
    assert report.required == "none"
    assert report.by_country["HK"]["people"] == 3
    assert report.by_country["SG"]["mechanisms"] == ["standard_contract"]
    _send(shop, "sg-forwarder", "intl_delivery", "u3", "u3")  # one person, twice
    report = shop.sharing.cross_border_report(2026, SMALL)
    assert (report.people, report.required) == (3, "standard_contract_or_certification")
    assert report.shortfall == ()  # SG relied on a standard contract
    _send(shop, "sg-customs", "customs", "u1", "u4")  # IDs in clear: sensitive PI
    report = shop.sharing.cross_border_report(2026, SMALL)
    assert (report.people, report.sensitive_people) == (4, 2)
    assert report.required == "security_assessment"
    assert report.shortfall == ("SG",)
    assert shop.sharing.cross_border_report(2025, SMALL).people == 0
    clock.set(DEFAULT_START.replace(year=2027, month=1, day=2))
    assert shop.sharing.cross_border_report(2027).required == "none"  # counted from 1 Jan


def test_the_default_thresholds_are_the_2024_provisions(shop: pg.Guard) -> None:
    limits = pg.CrossBorderThresholds()
    assert (limits.assessment_people, limits.assessment_sensitive, limits.contract_people) == (
        1_000_000,
        10_000,
        100_000,
    )
    _agree(shop, "u1")
    _send(shop, "sg-customs", "customs", "u1")
    report = shop.sharing.cross_border_report(2026)
    assert report.required == "standard_contract_or_certification"  # any sensitive PI


def test_an_erased_subject_still_counts_in_the_year_but_no_longer_links(
    shop: pg.Guard,
) -> None:
    _agree(shop, "u1", "u2")
    _send(shop, "sg-forwarder", "intl_delivery", "u1", "u2")
    shop.erase("u1")
    assert shop.sharing.recipients_of("u1") == []
    assert shop.sharing.cross_border_report(2026, SMALL).people == 2


def test_a_report_year_is_a_calendar_year(shop: pg.Guard) -> None:
    for year in ("2026", 1969, True):
        with pytest.raises(pg.InvalidArgument):
            shop.sharing.cross_border_report(year)  # type: ignore[arg-type]
