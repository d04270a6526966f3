"""Sharing (issue 12): recipients and their terms, minimised shares as compact JWE that an
independent JOSE library (jwcrypto) opens, refusals that make nothing, the audit event and
the record of every share, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest
import structlog.testing
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import ECKey, OKPKey, RSAKey
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk
from sqlalchemy import func, select, text, update

import piiguard as pg
from piiguard.keys import LocalKEK
from piiguard.testing import DEFAULT_START, SettableClock, allow_test_reveals
from tests.conftest import StoreTarget
from tests.helpers import CANARY_ID, CANARY_PHONE, piiguard_frames_text

NAME = "张三丰"
ADDRESS = "北京市朝阳区建国路88号"


class Order(pg.PIIModel):
    order_id: str
    name: pg.PersonName
    phone: pg.Phone
    address: pg.Address
    id_number: pg.CNResidentID | None = None
    note: str = ""


def _order(n: int = 1) -> Order:
    return Order(
        order_id=f"o{n}", name=NAME, phone=CANARY_PHONE, address=ADDRESS, id_number=CANARY_ID
    )


def _assess(guard: pg.Guard, *purposes: str) -> None:
    """The impact assessment a share's purpose needs first (PIPL Art. 55)."""
    for purpose in purposes:
        guard.records.assessment(
            purpose,
            risks=["a courier copies labels"],
            measures=["masked names"],
            author="dpo",
            covers=("providing", "cross_border"),  # recipients are registered afterwards
        )


def _key(kind: str = "ec") -> Any:
    if kind == "rsa":
        return RSAKey.generate_key(2048)
    if kind == "okp":
        return OKPKey.generate_key("X25519")
    return ECKey.generate_key("P-256")


def _open(token: str, private: Any) -> dict[str, Any]:
    """What the recipient does: open the JWE with its own private key, in another library."""
    key = jwcrypto_jwk.JWK(**private.as_dict(private=True))
    envelope = jwcrypto_jwe.JWE()
    envelope.deserialize(token, key=key)
    found: dict[str, Any] = json.loads(envelope.payload)
    return found


WAYBILL = {"name": "masked", "phone": "token", "address": "clear"}


def _courier(private: Any, **terms: Any) -> pg.Recipient:
    given: dict[str, Any] = {
        "public_key": private.as_dict(private=False),
        "purposes": {"delivery"},
        "fields": WAYBILL,
        "assessed_until": date(2026, 6, 30),
    } | terms
    return pg.Recipient("sf-express", **given)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def shop(store_target: StoreTarget, kek: LocalKEK, clock: SettableClock) -> Iterator[pg.Guard]:
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, clock=clock) as guard:
        allow_test_reveals(guard)
        guard.consent.register(
            pg.Purpose("delivery", basis="contract", kinds={"person_name", "phone", "address"})
        )
        _assess(guard, "delivery")
        yield guard


@pytest.fixture
def private() -> Any:
    return _key()


@pytest.fixture
def courier(shop: pg.Guard, private: Any) -> pg.Recipient:
    return shop.sharing.register(_courier(private))


def _count(guard: pg.Guard, table: Any) -> int:
    with guard.store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _nothing_made(guard: pg.Guard) -> None:
    tables = guard.store.tables
    assert _count(guard, tables.shares) == 0
    assert _count(guard, tables.vault) == 0
    assert [e for e in guard.audit.events(action="share") if e.result == "ok"] == []


# -- a share, opened by the recipient ------------------------------------------------------


@pytest.mark.parametrize("kind", ["ec", "rsa", "okp"])
def test_a_share_is_a_compact_jwe_another_jose_library_opens(shop: pg.Guard, kind: str) -> None:
    private = _key(kind)
    shop.sharing.register(_courier(private))
    token = shop.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="svc:wb")
    assert token.count(".") == 4  # compact serialisation: five parts
    header = json.loads(jwcrypto_jwe.base64url_decode(token.split(".")[0]))
    assert header["enc"] == "A256GCM"
    assert header["alg"] == ("RSA-OAEP-256" if kind == "rsa" else "ECDH-ES+A256KW")
    body = _open(token, private)
    assert body["piiguard"] == "share/1"
    assert (body["recipient"], body["purpose"]) == ("sf-express", "delivery")
    fields = body["fields"]
    assert set(fields) == {"name", "phone", "address"}  # only what the recipient names
    assert fields["name"] == "张**"
    assert fields["address"] == ADDRESS
    assert CANARY_PHONE not in json.dumps(fields)
    assert CANARY_ID not in json.dumps(body)
    # the privacy waybill: the shop resolves the courier's token when the courier calls
    resolved = shop.vault.detokenize(fields["phone"], actor="cs-1", purpose="delivery")
    assert resolved.endswith(CANARY_PHONE)


def test_a_share_is_not_readable_without_the_recipient_s_private_key(
    shop: pg.Guard, courier: pg.Recipient
) -> None:
    token = shop.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="svc:wb")
    with pytest.raises(Exception):  # noqa: B017, PT011 - any failure: another key
        _open(token, _key())
    assert NAME not in token
    assert ADDRESS not in token


def test_a_mapping_takes_its_kinds_from_the_caller(shop: pg.Guard, courier: pg.Recipient) -> None:
    record = {"name": NAME, "phone": CANARY_PHONE, "address": ADDRESS, "secret": "x"}
    with pytest.raises(pg.PolicyViolation):  # a token of no known kind: refused
        shop.share(record, to="sf-express", purpose="delivery", subject="u1", actor="svc:wb")
    _nothing_made(shop)
    kinds = {"name": "person_name", "phone": "phone", "address": "address"}
    token = shop.share(
        record, to="sf-express", purpose="delivery", subject="u1", actor="svc:wb", kinds=kinds
    )
    assert shop.sharing.recipients_of("u1")[0].fields == WAYBILL
    assert token


def test_nested_fields_are_named_by_their_path(shop: pg.Guard, private: Any) -> None:
    class Parcel(pg.PIIModel):
        order: Order
        weight: float

    shop.sharing.register(
        _courier(
            private, fields={"order.address": "clear", "order.name": "masked", "weight": "clear"}
        )
    )
    parcel = Parcel(order=_order(), weight=1.5)
    body = _open(
        shop.share(parcel, to="sf-express", purpose="delivery", subject="u1", actor="svc:wb"),
        private,
    )
    assert body["fields"] == {"order.address": ADDRESS, "order.name": "张**", "weight": 1.5}


def test_a_field_of_no_known_kind_shared_masked_is_hidden_whole(
    shop: pg.Guard, private: Any
) -> None:
    shop.sharing.register(_courier(private, fields={"note": "masked", "order_id": "clear"}))
    order = _order().model_copy(update={"note": NAME})
    body = _open(
        shop.share(order, to="sf-express", purpose="delivery", subject="u1", actor="svc:wb"),
        private,
    )
    assert body["fields"] == {"note": "***", "order_id": "o1"}


# -- refusals: nothing is made ---------------------------------------------------------------


def _refused(shop: pg.Guard, reason: str, subject: str = "u1", **call: Any) -> None:
    given: dict[str, Any] = {"to": "sf-express", "purpose": "delivery", "actor": "svc:wb"} | call
    with pytest.raises(pg.ShareRefused) as raised:
        shop.share(_order(), subject=subject, **given)
    assert raised.value.reason == reason
    assert isinstance(raised.value, pg.PolicyViolation)
    assert subject not in str(raised.value)
    _nothing_made(shop)
    denied = [e for e in shop.audit.events(action="share") if e.result == "denied"]
    assert denied[-1].detail["context"]["reason"] == reason  # refusals are audited


def test_a_purpose_without_an_impact_assessment_is_refused_unless_configured_off(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock, private: Any
) -> None:
    url, schema = store_target
    for required in (True, False):
        with pg.Guard.open(
            url, kek=kek, schema=schema, clock=clock, require_assessments=required
        ) as guard:
            guard.consent.register(
                pg.Purpose("delivery", basis="contract", kinds={"person_name", "address"})
            )
            guard.sharing.register(_courier(private))
            call: dict[str, Any] = {
                "to": "sf-express",
                "purpose": "delivery",
                "subject": "u1",
                "actor": "a",
            }
            if required:
                with pytest.raises(pg.ShareRefused) as raised:
                    guard.share(_order(), **call)
                assert raised.value.reason == "no_assessment"
                _nothing_made(guard)
            else:
                assert guard.share(_order(), **call)


def test_an_assessment_admits_only_what_it_was_made_for(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock, private: Any
) -> None:
    """Made before any recipient, an assessment does not cover providing; made for a
    domestic recipient, it does not cover a transfer abroad (PIPL Art. 55(3)-(4); found by
    an attack review: any assessment of the purpose admitted a share abroad)."""
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, clock=clock) as guard:
        guard.consent.register(
            pg.Purpose("delivery", basis="contract", kinds={"person_name", "address"})
        )
        guard.consent.register(pg.Purpose("xb", basis="consent", separate=True))
        guard.consent.publish_notice("n1", purposes=["xb"], text="transfers abroad")
        guard.consent.grant("u1", "xb", notice="n1", evidence={"channel": "app"})
        bare = guard.records.assessment("delivery", risks=["r"], measures=["m"], author="dpo")
        assert bare.required_for == ()
        guard.sharing.register(_courier(private))
        call: dict[str, Any] = {"purpose": "delivery", "subject": "u1", "actor": "a"}
        with pytest.raises(pg.ShareRefused) as raised:
            guard.share(_order(), to="sf-express", **call)
        assert raised.value.reason == "no_assessment"
        domestic = guard.records.assessment("delivery", risks=["r"], measures=["m"], author="dpo")
        assert domestic.required_for == ("providing",)
        assert guard.share(_order(), to="sf-express", **call)
        abroad = pg.Recipient(
            "sg-forwarder",
            public_key=private.as_dict(private=False),
            purposes={"delivery"},
            fields={"address": "clear"},
            assessed_until=date(2027, 1, 1),
            cross_border=pg.CrossBorder("SG", "exempt", None, consent="xb"),
        )
        guard.sharing.register(abroad)
        with pytest.raises(pg.ShareRefused) as raised:
            guard.share(_order(), to="sg-forwarder", **call)
        assert raised.value.reason == "no_assessment"
        assert guard.share(_order(), to="sf-express", **call)  # the domestic one still goes
        made = guard.records.assessment("delivery", risks=["r"], measures=["m"], author="dpo")
        assert made.required_for == ("providing", "cross_border")
        assert guard.share(_order(), to="sg-forwarder", **call)
        with pytest.raises(pg.InvalidArgument):
            guard.records.assessment(
                "delivery", risks=["r"], measures=["m"], author="dpo", covers=["automated"]
            )


def test_an_unregistered_recipient_is_refused(shop: pg.Guard) -> None:
    _refused(shop, "unknown_recipient", to="yto")


def test_a_purpose_the_recipient_may_not_receive_for_is_refused(
    shop: pg.Guard, courier: pg.Recipient
) -> None:
    shop.consent.register(pg.Purpose("analytics", basis="contract", kinds={"address"}))
    _refused(shop, "purpose_not_allowed", purpose="analytics")


def test_an_expired_assessment_is_refused_from_the_next_day(
    shop: pg.Guard, courier: pg.Recipient, clock: SettableClock
) -> None:
    clock.set(DEFAULT_START.replace(month=6, day=30, hour=23))  # its last day: still fine
    shop.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="svc:wb")
    clock.set(DEFAULT_START.replace(month=7, day=1))
    with pytest.raises(pg.ShareRefused) as raised:
        shop.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="svc:wb")
    assert raised.value.reason == "assessment_expired"


def test_an_expired_contract_is_refused(shop: pg.Guard, private: Any, clock: SettableClock) -> None:
    shop.sharing.register(_courier(private, contract=pg.Contract("C-2025-17", date(2025, 12, 31))))
    _refused(shop, "contract_expired")


def test_providing_on_consent_needs_separate_consent_granted_by_the_subject(
    shop: pg.Guard, private: Any
) -> None:
    shop.consent.register(pg.Purpose("partner_promo", basis="consent", kinds={"phone"}))
    shop.sharing.register(_courier(private, purposes={"partner_promo"}, fields={"phone": "clear"}))
    _assess(shop, "partner_promo")
    _refused(shop, "not_separate", purpose="partner_promo")
    shop.consent.register(
        pg.Purpose("partner_promo", basis="consent", kinds={"phone"}, separate=True)
    )
    _assess(shop, "partner_promo")  # redefined: a new version needs a new assessment
    _refused(shop, "consent_required", purpose="partner_promo")
    shop.consent.publish_notice("2026-01", purposes=["partner_promo"], text="promo by partners")
    shop.consent.grant("u1", "partner_promo", notice="2026-01", evidence={"channel": "app"})
    token = shop.share(
        _order(), to="sf-express", purpose="partner_promo", subject="u1", actor="svc:wb"
    )
    assert _open(token, private)["fields"] == {"phone": "+86" + CANARY_PHONE}
    shop.consent.withdraw("u1", "partner_promo")  # withdrawal takes effect at once
    with pytest.raises(pg.ShareRefused):
        shop.share(_order(), to="sf-express", purpose="partner_promo", subject="u1", actor="svc:wb")


def test_a_clear_field_the_purpose_does_not_cover_is_denied(shop: pg.Guard, private: Any) -> None:
    shop.sharing.register(_courier(private, fields={"id_number": "clear"}))
    with pytest.raises(pg.AccessDenied) as raised:
        shop.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="svc:wb")
    assert raised.value.reason == "kind_not_covered"
    _nothing_made(shop)


def test_a_share_names_its_actor(shop: pg.Guard, courier: pg.Recipient) -> None:
    with pytest.raises(pg.AccessDenied):
        shop.share(_order(), to="sf-express", purpose="delivery", subject="u1")
    with pg.acting(actor="svc:wb", purpose="delivery"):
        assert shop.share(_order(), to="sf-express", subject="u1")


# -- recipients ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"public_key": "not json"}, "JWK"),
        ({"fields": {"phone": "plain"}}, "rule"),
        ({"fields": {}}, "fields"),
        ({"purposes": set()}, "purposes"),
        ({"purposes": "delivery"}, "purposes"),
        ({"assessed_until": "2026-06-30"}, "date"),
    ],
)
def test_a_recipient_with_bad_terms_is_refused(
    private: Any, change: dict[str, Any], words: str
) -> None:
    with pytest.raises(pg.InvalidArgument) as raised:
        _courier(private, **change)
    assert words in str(raised.value)


def test_a_private_or_weak_or_signing_key_is_refused_and_never_echoed(private: Any) -> None:
    secret = private.as_dict(private=True)
    with pytest.raises(pg.InvalidArgument) as raised:
        _courier(private, public_key=secret)
    assert secret["d"] not in str(raised.value)
    assert secret["d"] not in repr(raised.value.args)
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505 - refused
    weak = jwcrypto_jwk.JWK.from_pyca(small).export_public(as_dict=True)
    with pytest.raises(pg.InvalidArgument):
        _courier(private, public_key=weak)
    signing = private.as_dict(private=False) | {"use": "sig"}
    with pytest.raises(pg.InvalidArgument):
        _courier(private, public_key=signing)


def test_cross_border_terms_are_checked() -> None:
    with pytest.raises(pg.InvalidArgument):
        pg.CrossBorder("sg", "standard_contract", "SC-1", consent="xb_sg")
    with pytest.raises(pg.InvalidArgument):
        pg.CrossBorder("SG", "standard_contract", consent="xb_sg")  # no filing
    with pytest.raises(pg.InvalidArgument):
        pg.CrossBorder("SG", "adequacy", "SC-1", consent="xb_sg")  # type: ignore[arg-type]
    with pytest.raises(pg.InvalidArgument):
        pg.CrossBorder("SG", "exempt")  # no separate consent purpose named
    assert pg.CrossBorder("SG", "exempt", consent="xb_sg").filing_ref is None


def test_a_recipient_registered_on_one_instance_is_known_to_another(
    shop: pg.Guard, store_target: StoreTarget, kek: LocalKEK, clock: SettableClock, private: Any
) -> None:
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, clock=clock) as other:
        other.sharing.register(_courier(private))
        assert shop.share(
            _order(), to="sf-express", purpose="delivery", subject="u1", actor="svc:wb"
        )
        other.sharing.register(_courier(private, assessed_until=date(2025, 12, 31)))
    with pytest.raises(pg.ShareRefused):  # new terms reach every instance at once
        shop.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="svc:wb")
    assert [r.name for r in shop.sharing.recipients()] == ["sf-express"]
    assert shop.sharing.recipient("sf-express").assessed_until == date(2025, 12, 31)


# -- the audit event and the record ------------------------------------------------------------


def test_a_share_is_audited_and_recorded_and_the_subject_can_see_who_received_it(
    shop: pg.Guard, courier: pg.Recipient
) -> None:
    shop.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="svc:wb")
    (event,) = [e for e in shop.audit.events(action="share") if e.result == "ok"]
    assert (event.actor, event.purpose, event.result, event.count) == (
        "svc:wb",
        "delivery",
        "ok",
        3,
    )
    assert event.subjects == (shop.audit.pseudonym("u1"),)
    assert event.detail["context"]["recipient"] == "sf-express"
    scope = shop.audit.scope()
    assert scope.recipients == {"sf-express"}
    assert scope.kinds == {"address"}  # the name went masked, the phone as a token
    (record,) = shop.sharing.recipients_of("u1")
    assert (record.recipient, record.purpose, dict(record.fields)) == (
        "sf-express",
        "delivery",
        WAYBILL,
    )
    exported = shop.export("u1", actor="dpo", purpose="testing")
    assert [s["recipient"] for s in exported["sharing"]] == ["sf-express"]
    assert shop.sharing.recipients_of("u2") == []
    dumped = repr(list(shop.audit.events())) + repr(shop.sharing.recipients_of("u1"))
    for canary in (CANARY_PHONE, CANARY_ID, NAME, ADDRESS, "u1"):
        assert canary not in dumped.replace("'u1'", "")


def test_a_share_whose_event_cannot_be_recorded_is_not_returned(
    store_target: StoreTarget, kek: LocalKEK, private: Any
) -> None:
    class Failing:
        def record(self, event: pg.AccessEvent) -> None:
            if event.action == "share":
                raise RuntimeError("sink down")

    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, events=Failing()) as guard:
        guard.consent.register(
            pg.Purpose("delivery", basis="contract", kinds={"person_name", "phone", "address"})
        )
        guard.sharing.register(_courier(private, assessed_until=date(2099, 1, 1)))
        _assess(guard, "delivery")
        with pytest.raises(pg.EventNotRecorded):
            guard.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="a")
        assert guard.sharing.recipients_of("u1") == []


def test_a_share_whose_record_cannot_be_written_leaves_no_event_saying_it_was_made(
    shop: pg.Guard, courier: pg.Recipient
) -> None:
    """Found by an attack review: the audit event said "ok" while no record existed (the
    record used to be written after the event)."""
    table = shop.store.tables.shares
    name = f'"{table.schema}".{table.name}' if table.schema else table.name
    with shop.store.engine.begin() as connection:
        if shop.store.engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    f"CREATE TRIGGER refuse BEFORE INSERT ON {name} "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            connection.execute(
                text(
                    f'CREATE FUNCTION "{table.schema}".refuse() RETURNS trigger AS '
                    "$$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql"
                )
            )
            connection.execute(
                text(
                    f"CREATE TRIGGER refuse BEFORE INSERT ON {name} "
                    f'FOR EACH ROW EXECUTE FUNCTION "{table.schema}".refuse()'
                )
            )
    with pytest.raises(pg.StoreError):
        shop.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="a")
    assert [e for e in shop.audit.events(action="share") if e.result == "ok"] == []


def test_erasure_unlinks_the_subject_s_shares(shop: pg.Guard, courier: pg.Recipient) -> None:
    shop.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="svc:wb")
    receipt = shop.erase("u1")
    assert "sharing" in {step.target for step in receipt.steps} | {
        step.step for step in receipt.steps
    }
    assert shop.sharing.recipients_of("u1") == []
    assert _count(shop, shop.store.tables.shares) == 1  # the record of processing stays


def test_share_many_is_one_event_and_one_refusal_refuses_all(shop: pg.Guard, private: Any) -> None:
    shop.consent.register(
        pg.Purpose("partner_promo", basis="consent", kinds={"phone"}, separate=True)
    )
    shop.consent.publish_notice("2026-01", purposes=["partner_promo"], text="promo by partners")
    shop.sharing.register(
        _courier(private, purposes={"delivery", "partner_promo"}, fields={"phone": "clear"})
    )
    _assess(shop, "partner_promo")
    for subject in ("u1", "u2"):
        shop.consent.grant(subject, "partner_promo", notice="2026-01", evidence={"c": "app"})
    orders = [_order(n) for n in range(3)]
    with pytest.raises(pg.ShareRefused) as raised:
        shop.share_many(
            orders, to="sf-express", purpose="partner_promo", subjects=["u1", "u2", "u3"], actor="a"
        )
    assert raised.value.missing == ("partner_promo",)
    assert "u3" not in str(raised.value)
    _nothing_made(shop)
    tokens = shop.share_many(
        orders, to="sf-express", purpose="delivery", subjects=["u1", "u2", "u3"], actor="a"
    )
    assert [_open(t, private)["fields"]["phone"] for t in tokens] == ["+86" + CANARY_PHONE] * 3
    (event,) = [e for e in shop.audit.events(action="share") if e.result == "ok"]
    assert (event.count, len(event.subjects)) == (3, 3)
    assert len({_open(t, private)["id"] for t in tokens}) == 3
    with pytest.raises(pg.InvalidArgument):
        shop.share_many(orders, to="sf-express", purpose="delivery", subjects=["u1"], actor="a")


def test_shares_count_for_the_access_watch(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock, private: Any
) -> None:
    url, schema = store_target
    watch = pg.AccessWatch(limits={"*": 4}, block=True, refresh=timedelta(0))
    with pg.Guard.open(url, kek=kek, schema=schema, clock=clock, watch=watch) as guard:
        guard.consent.register(
            pg.Purpose("delivery", basis="contract", kinds={"person_name", "phone", "address"})
        )
        guard.sharing.register(_courier(private))
        _assess(guard, "delivery")
        guard.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="a")
        with pytest.raises(pg.AccessDenied) as raised:  # 3 + 3 > 4
            guard.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="a")
        assert raised.value.reason == "watch_blocked"


# -- found by an attack review -----------------------------------------------------------------


class Parcel(pg.PIIModel):
    order: Order
    weight: float


def test_a_field_naming_a_nested_record_or_collection_is_refused(
    shop: pg.Guard, private: Any
) -> None:
    """Naming ``order`` would send everything in it, unmasked and unchecked."""
    shop.sharing.register(_courier(private, fields={"order": "clear"}))
    with pytest.raises(pg.PolicyViolation):
        shop.share(
            Parcel(order=_order(), weight=1.0),
            to="sf-express",
            purpose="delivery",
            subject="u1",
            actor="a",
        )
    with pytest.raises(pg.PolicyViolation):
        shop.share(
            {"order": [CANARY_PHONE]}, to="sf-express", purpose="delivery", subject="u1", actor="a"
        )
    _nothing_made(shop)
    with pytest.raises(pg.InvalidArgument):
        _courier(private, fields={"order": "clear", "order.phone": "token"})


@pytest.mark.parametrize(
    "value",
    [
        CANARY_PHONE,
        CANARY_ID,
        13812345678,
        f"call {CANARY_PHONE}",
        CANARY_PHONE.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
        CANARY_PHONE.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
        "110105 19491231 002X",
        "110105-19491231-002X",
        "138.1234.5678",
        "138\u200b1234\u200b5678",
    ],
)
def test_a_clear_value_of_no_declared_kind_that_holds_pii_is_refused(
    shop: pg.Guard, private: Any, value: Any
) -> None:
    shop.sharing.register(_courier(private, fields={"mobile": "clear"}))
    with pytest.raises(pg.PolicyViolation):
        shop.share({"mobile": value}, to="sf-express", purpose="delivery", subject="u1", actor="a")
    _nothing_made(shop)
    (denied,) = [e for e in shop.audit.events(action="share") if e.result == "denied"]
    assert denied.detail["context"]["reason"] == "field_refused"  # audited like any refusal
    token = shop.share(
        {"mobile": "o-1001"}, to="sf-express", purpose="delivery", subject="u1", actor="a"
    )
    assert _open(token, private)["fields"] == {"mobile": "o-1001"}


class Secret(Enum):
    ID = CANARY_ID


class Deeper(Enum):
    PHONE = Secret.ID


class Labelled(pg.PIIModel):
    label: Secret


@pytest.mark.parametrize(
    ("record", "kinds"),
    [
        ({"note": CANARY_ID}, {"note": "address"}),  # an address takes any text
        ({"note": f"北京市朝阳区 {CANARY_PHONE}"}, {"note": "address"}),
        ({"note": 13812345678}, {"note": "phone"}),  # a number is not a phone's value
        ({"note": Secret.ID}, None),
        ({"note": Deeper.PHONE}, None),
        ({"note": pg.Address(f"收件人身份证 {CANARY_ID}")}, None),
    ],
)
def test_a_declared_kind_does_not_explain_other_pii_in_clear(
    shop: pg.Guard, private: Any, record: dict[str, Any], kinds: dict[str, str] | None
) -> None:
    """Found by an attack review: an ID number left in clear as an "address", an Enum's
    value was never read, a number was taken for its declared kind."""
    shop.sharing.register(_courier(private, fields={"note": "clear", "label": "clear"}))
    with pytest.raises(pg.PolicyViolation):
        shop.share(
            record, to="sf-express", purpose="delivery", subject="u1", actor="a", kinds=kinds
        )
    with pytest.raises(pg.PolicyViolation):
        shop.share(
            Labelled(label=Secret.ID), to="sf-express", purpose="delivery", subject="u1", actor="a"
        )
    _nothing_made(shop)
    token = shop.share(
        {"note": "北京市朝阳区建国路88号"},
        to="sf-express",
        purpose="delivery",
        subject="u1",
        actor="a",
        kinds={"note": "address"},
    )
    assert _open(token, private)["fields"] == {"note": "北京市朝阳区建国路88号"}


def test_a_cross_border_consent_purpose_must_be_a_separate_consent(
    shop: pg.Guard, private: Any
) -> None:
    shop.consent.register(pg.Purpose("xb_contract", basis="contract", kinds={"address"}))
    abroad = pg.CrossBorder("SG", "exempt", consent="xb_contract")
    shop.sharing.register(_courier(private, cross_border=abroad))
    _refused(shop, "cross_border_consent")


def test_a_batch_that_fails_on_a_bad_value_makes_no_token(
    shop: pg.Guard, courier: pg.Recipient
) -> None:
    good = {"name": "张三", "phone": CANARY_PHONE, "address": ADDRESS}
    bad = {"name": "李四", "phone": "12", "address": ADDRESS}
    kinds = {"name": "person_name", "phone": "phone", "address": "address"}
    with pytest.raises(pg.ShareRefused):  # "12" is no phone: a token of no known kind
        shop.share_many(
            [good, bad],
            to="sf-express",
            purpose="delivery",
            subjects=["u1", "u2"],
            actor="a",
            kinds=kinds,
        )
    _nothing_made(shop)


def test_a_share_is_kept_in_utc_whatever_the_clock_s_zone(
    store_target: StoreTarget, kek: LocalKEK, private: Any
) -> None:
    east = timezone(timedelta(hours=8))
    clock = SettableClock(datetime(2027, 1, 1, 7, 0, tzinfo=east))  # 2026-12-31 23:00 UTC
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, clock=clock) as guard:
        guard.consent.register(pg.Purpose("delivery", basis="contract", kinds={"person_name"}))
        guard.consent.register(pg.Purpose("xb", basis="consent", separate=True))
        guard.consent.publish_notice("n1", purposes=["xb"], text="abroad")
        guard.consent.grant("u1", "xb", notice="n1", evidence={"c": "app"})
        _assess(guard, "delivery")
        guard.sharing.register(
            _courier(
                private,
                fields={"name": "masked"},
                assessed_until=date(2027, 6, 30),
                cross_border=pg.CrossBorder("SG", "exempt", consent="xb"),
            )
        )
        guard.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="a")
        (record,) = guard.sharing.recipients_of("u1")
        assert record.at == datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
        assert guard.sharing.cross_border_report(2026).by_country["SG"]["people"] == 1
        assert guard.sharing.cross_border_report(2027).by_country == {}


def test_a_recipient_row_changed_by_hand_is_not_honoured(
    shop: pg.Guard, courier: pg.Recipient
) -> None:
    """An insider who can write the database but not use the KEK swaps in their own key."""
    table = shop.store.tables.recipients
    forged = _courier(_key(), fields={"name": "clear", "phone": "clear", "address": "clear"})
    with shop.store.engine.begin() as connection:
        connection.execute(update(table).values(definition=forged.definition()))
    with pytest.raises(pg.ShareRefused) as raised:
        shop.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="a")
    assert raised.value.reason == "unknown_recipient"
    assert shop.sharing.recipients() == []


def test_a_recipient_row_put_back_from_an_old_copy_is_not_honoured(
    store_target: StoreTarget, kek: LocalKEK, shop: pg.Guard, clock: SettableClock
) -> None:
    """An insider saves the row, the shop rotates a compromised key and narrows the fields,
    the insider writes the saved row back: its seal holds, but it is older than the newest
    registration the audit log has, so no instance honours it (found by an attack review:
    the next share went to the old key with every field in clear)."""
    old = _key()
    shop.sharing.register(
        _courier(old, fields={"name": "clear", "phone": "clear", "address": "clear"})
    )
    table = shop.store.tables.recipients
    with shop.store.engine.connect() as connection:
        saved = connection.execute(
            select(table.c.definition, table.c.seal, table.c.registered_at)
        ).one()
    clock.advance(timedelta(hours=1))
    new = _key()
    shop.sharing.register(_courier(new))
    with shop.store.engine.begin() as connection:
        connection.execute(
            update(table).values(
                definition=saved.definition, seal=saved.seal, registered_at=saved.registered_at
            )
        )
    url, schema = store_target
    with (
        structlog.testing.capture_logs() as logged,
        pg.Guard.open(url, kek=kek, schema=schema, clock=clock) as second,
    ):
        with pytest.raises(pg.ShareRefused) as raised:
            second.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="a")
        assert raised.value.reason == "unknown_recipient"
        assert second.sharing.recipients() == []
    assert "recipient_rolled_back" in {entry["event"] for entry in logged}
    shop.sharing.register(_courier(new))  # registering again restores the newest terms
    token = shop.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="a")
    assert _open(token, new)["fields"]["name"] == "张**"


def test_a_row_put_back_is_refused_whatever_the_instances_clocks_say(
    store_target: StoreTarget, kek: LocalKEK, clock: SettableClock, shop: pg.Guard
) -> None:
    """Found by the second review of issue 13: a row written by an instance whose clock ran
    ten minutes ahead could be put back after another instance's newer registration, since
    rows newer (by time) than the newest event were honoured. The event now comes first and
    the terms must match the newest one, whatever the clocks."""
    url, schema = store_target
    ahead = SettableClock(clock() + timedelta(minutes=10))
    old, new = _key(), _key()
    with (
        pg.Guard.open(url, kek=kek, schema=schema, clock=ahead) as fast,
        pg.Guard.open(url, kek=kek, schema=schema, clock=clock) as right,
    ):
        fast.sharing.register(
            _courier(old, fields={"name": "clear", "phone": "clear", "address": "clear"})
        )
        table = right.store.tables.recipients
        with right.store.engine.connect() as connection:
            saved = connection.execute(
                select(table.c.definition, table.c.seal, table.c.registered_at)
            ).one()
        clock.advance(timedelta(minutes=1))
        right.sharing.register(_courier(new))
        with right.store.engine.begin() as connection:
            connection.execute(
                update(table).values(
                    definition=saved.definition, seal=saved.seal, registered_at=saved.registered_at
                )
            )
        with pytest.raises(pg.ShareRefused) as raised:
            right.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="a")
        assert raised.value.reason == "unknown_recipient"


def test_share_many_takes_ordered_lists_only(shop: pg.Guard, courier: pg.Recipient) -> None:
    with pytest.raises(pg.InvalidArgument):
        shop.share_many(
            [_order(), _order(2)],
            to="sf-express",
            purpose="delivery",
            subjects={"u1", "u2"},  # type: ignore[arg-type]
            actor="a",
        )
    _nothing_made(shop)


@pytest.mark.parametrize(
    "extra", [{"key_ops": ["verify"]}, {"alg": "ES256"}, {"alg": "RSA1_5"}, {"key_ops": "wrapKey"}]
)
def test_a_key_the_jwe_cannot_use_is_refused_at_registration(
    private: Any, extra: dict[str, Any]
) -> None:
    with pytest.raises(pg.InvalidArgument):
        _courier(private, public_key=private.as_dict(private=False) | extra)


@pytest.mark.parametrize("member", ["q", "dp", "dq", "qi", "oth", "D", "priv", "x5u", "jku"])
def test_a_key_with_any_member_a_public_jwk_lacks_is_refused(member: str) -> None:
    """With n and q, anyone who reads the recipients table rebuilds the private key (found
    by an attack review: only d, p and k were refused)."""
    private = RSAKey.generate_key(2048).as_dict(private=True)
    public = {name: private[name] for name in ("kty", "n", "e")}
    with pytest.raises(pg.InvalidArgument) as raised:
        _courier(RSAKey.generate_key(2048), public_key=public | {member: private.get(member, "x")})
    assert str(private["q"]) not in piiguard_frames_text(raised.value)


class Timestamp(datetime):
    """What pandas and pendulum hand out: a datetime subclass."""


class Day(date):
    """A date subclass."""


def test_a_datetime_subclass_is_no_day_and_a_date_subclass_is_made_plain(
    shop: pg.Guard, private: Any
) -> None:
    """Found by an attack review: a datetime subclass was accepted, stored with its time
    and could never be read back, breaking every recipient listing."""
    for bad in (Timestamp(2027, 1, 1, 12), datetime(2027, 1, 1)):
        with pytest.raises(pg.InvalidArgument):
            _courier(private, assessed_until=bad)
        with pytest.raises(pg.InvalidArgument):
            pg.Contract("SF-1", bad)
    recipient = _courier(
        private, assessed_until=Day(2027, 1, 1), contract=pg.Contract("SF-1", Day(2027, 1, 2))
    )
    assert type(recipient.assessed_until) is date
    assert recipient.contract is not None
    assert type(recipient.contract.until) is date
    shop.sharing.register(recipient)
    assert [r.name for r in shop.sharing.recipients()] == ["sf-express"]
    assert shop.records.processing()["recipients"]


@pytest.mark.parametrize("kid", [CANARY_PHONE + "\n", "a b", "", 7, "x" * 129])
def test_a_key_id_that_is_not_one_is_refused(private: Any, kid: object) -> None:
    """The kid travels in the JWE's clear header."""
    with pytest.raises(pg.InvalidArgument):
        _courier(private, public_key=private.as_dict(private=False) | {"kid": kid})


def test_changing_a_recipient_s_terms_is_audited_and_handed_out_terms_are_frozen(
    shop: pg.Guard, private: Any
) -> None:
    with pg.acting(actor="ops-1", purpose="testing"):
        shop.sharing.register(_courier(private))
        shop.sharing.register(_courier(private, fields={"address": "clear"}))
    first, second = shop.audit.events(action="recipient_register")
    assert (first.actor, first.detail["context"]["recipient"]) == ("ops-1", "sf-express")
    assert first.detail["context"]["terms"] != second.detail["context"]["terms"]
    terms = shop.sharing.recipient("sf-express")
    with pytest.raises(TypeError):
        terms.fields["name"] = "clear"  # type: ignore[index]
    with pytest.raises(TypeError):
        terms.jwk["x"] = "y"  # type: ignore[index]


class Contact(pg.PIIModel):
    contact: str | pg.Phone


def test_plain_text_under_a_union_kind_is_that_kind_only_if_it_is_one(
    shop: pg.Guard, private: Any
) -> None:
    """``contact: str | pg.Phone`` holding an e-mail is no phone: read for PII, refused."""
    shop.sharing.register(_courier(private, fields={"contact": "clear"}))
    record = Contact(contact="zhang.san@example.com")
    with pytest.raises(pg.ShareRefused) as raised:
        shop.share(record, to="sf-express", purpose="delivery", subject="u1", actor="a")
    assert raised.value.reason == "field_refused"
    _nothing_made(shop)


def test_a_purpose_redefined_after_its_assessment_needs_a_new_one(
    shop: pg.Guard, courier: pg.Recipient
) -> None:
    shop.consent.register(
        pg.Purpose("delivery", basis="contract", kinds={"person_name", "phone", "address", "email"})
    )
    _refused(shop, "no_assessment")
    _assess(shop, "delivery")
    assert shop.share(_order(), to="sf-express", purpose="delivery", subject="u1", actor="a")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), Decimal("-Infinity")])
def test_a_number_json_cannot_hold_is_refused_before_anything_is_made(
    shop: pg.Guard, private: Any, value: Any
) -> None:
    """Strict JSON parsers refuse NaN and Infinity: the courier could not read the share."""
    shop.sharing.register(_courier(private, fields={"weight": "clear", "phone": "token"}))
    record = {"weight": value, "phone": CANARY_PHONE}
    with pytest.raises(pg.InvalidArgument):
        shop.share(
            record,
            to="sf-express",
            purpose="delivery",
            subject="u1",
            actor="a",
            kinds={"phone": "phone"},
        )
    _nothing_made(shop)


@pytest.mark.parametrize(
    "numbers", [{"contract_people": -1}, {"assessment_people": 0}, {"contract_people": 2_000_000}]
)
def test_cross_border_thresholds_are_checked(numbers: dict[str, int]) -> None:
    with pytest.raises(pg.InvalidArgument):
        pg.CrossBorderThresholds(**numbers)


def _opens(token: str, private: Any) -> bool:
    try:
        _open(token, private)
    except Exception:  # another key's JWE: jwcrypto's own errors
        return False
    return True


def test_recipients_registered_at_once_by_several_instances_stay_usable(
    store_target: StoreTarget, kek: LocalKEK, shop: pg.Guard, clock: SettableClock
) -> None:
    """Instances registering one recipient with other terms at the same moment: the row
    ends with the terms of the registration the audit log records last, so the recipient
    is never taken for a row put back (found by a review: it was then refused everywhere
    until registered again)."""
    url, schema = store_target
    keys = [_key() for _ in range(4)]
    with contextlib.ExitStack() as stack:
        guards = [
            stack.enter_context(pg.Guard.open(url, kek=kek, schema=schema, clock=clock))
            for _ in range(4)
        ]
        for _ in range(3):
            start = threading.Barrier(len(guards))

            def register(guard: pg.Guard, key: Any, start: threading.Barrier = start) -> None:
                start.wait()
                guard.sharing.register(_courier(key))

            threads = [
                threading.Thread(target=register, args=(guard, key))
                for guard, key in zip(guards, keys, strict=True)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert [r.name for r in shop.sharing.recipients()] == ["sf-express"]
            token = shop.share(
                _order(), to="sf-express", purpose="delivery", subject="u1", actor="a"
            )
            opened = [key for key in keys if _opens(token, key)]
            assert len(opened) == 1
