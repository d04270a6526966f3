"""Access policy (issue 11): guard.reveal shows each field clear, masked or absent as the
role and the purpose allow, audits it and every refusal; just-in-time grants need a ticket
and someone else's approval, expire, and are seen (and revoked) by every instance."""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any, Generic, NamedTuple, NewType, TypeVar

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from sqlalchemy import insert, select, update
from typing_extensions import TypeAliasType, TypedDict

import piiguard as pg
from piiguard.audit.access import view
from piiguard.events import actor_name, same_person
from piiguard.keys import LocalKEK
from piiguard.testing import SettableClock
from tests.conftest import StoreTarget
from tests.helpers import CANARY_ID, CANARY_PHONE

KINDS = ["phone", "email", "person_name", "address", "cn_resident_id", "bank_card"]


class Customer(pg.PIIModel):
    name: pg.PersonName
    phone: pg.Phone
    id_number: pg.CNResidentID | None = None
    note: str = ""
    total: int = 0


class Order(pg.PIIModel):
    order_id: str
    customer: Customer
    contacts: list[pg.Phone] = Field(default_factory=list)


POLICY = pg.AccessPolicy(
    [
        pg.Role("cs", purposes={"after_sales"}, clear={"phone"}, masked={"person_name"}),
        pg.Role(
            "cs_lead",
            purposes={"after_sales"},
            clear={"phone", "person_name", "cn_resident_id"},
            jit=True,
            max_ttl=timedelta(hours=4),
        ),
        pg.Role(
            "auditor",
            purposes={"after_sales"},
            clear={"cn_resident_id"},
            jit=True,
            approvers={"dpo"},
        ),
        pg.Role("courier", purposes={"delivery"}, masked={"phone", "address"}),
    ]
)


def _customer() -> Customer:
    return Customer(
        name="张三",
        phone=CANARY_PHONE,
        id_number=CANARY_ID,
        note="或拨 13912345678",
        total=3,
    )


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def shop(store_target: StoreTarget, kek: LocalKEK, clock: SettableClock) -> Iterator[pg.Guard]:
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, access=POLICY, clock=clock) as guard:
        guard.consent.register(
            pg.Purpose(
                "after_sales",
                basis="contract",
                kinds={"phone", "person_name", "cn_resident_id"},
                separate=True,
            )
        )
        guard.consent.register(pg.Purpose("delivery", basis="contract", kinds={"phone"}))
        yield guard


def _second(shop: pg.Guard, store_target: StoreTarget, kek: LocalKEK, clock: Any) -> pg.Guard:
    url, schema = store_target
    return pg.Guard.open(url, kek=kek, schema=schema, access=POLICY, clock=clock)


def _events(guard: pg.Guard, action: str | None = None) -> list[pg.AuditEvent]:
    return list(guard.audit.events(action=action))


# -- the one rule ---------------------------------------------------------------------------


@given(
    clear=st.frozensets(st.sampled_from(KINDS)),
    masked=st.frozensets(st.sampled_from(KINDS)),
    covered=st.frozensets(st.sampled_from(KINDS)),
    kind=st.sampled_from(KINDS),
)
def test_a_value_is_clear_only_when_role_and_purpose_both_allow_it(
    clear: frozenset[str], masked: frozenset[str], covered: frozenset[str], kind: str
) -> None:
    role = pg.Role("r", purposes={"p"}, clear=clear, masked=masked - clear)
    expected = (
        "clear"
        if kind in clear and kind in covered
        else "masked"
        if kind in clear or kind in masked
        else "absent"
    )
    assert view(role, kind, covered) == expected


@pytest.mark.parametrize(
    "make",
    [
        lambda: pg.Role("r", purposes=set()),
        lambda: pg.Role("r", purposes="after_sales"),
        lambda: pg.Role("r", purposes={"p"}, clear={"phone"}, masked={"phone"}),
        lambda: pg.Role("r", purposes={"p"}, max_ttl=timedelta(0)),
        lambda: pg.Role("", purposes={"p"}),
        lambda: pg.Role("r", purposes={"p"}, jit="yes"),  # type: ignore[arg-type]
        lambda: pg.AccessPolicy([pg.Role("r", purposes={"p"}), pg.Role("r", purposes={"q"})]),
        lambda: pg.AccessPolicy(["cs"]),  # type: ignore[list-item]
    ],
)
def test_a_malformed_role_or_policy_is_refused_when_built(make: Any) -> None:
    with pytest.raises(pg.InvalidArgument):
        make()


def test_a_role_names_only_known_kinds() -> None:
    with pytest.raises(pg.UnknownKind):
        pg.Role("r", purposes={"p"}, clear={"phone_number"})


# -- guard.reveal ---------------------------------------------------------------------------


def test_a_role_sees_clear_masked_or_nothing_and_the_reveal_is_audited(shop: pg.Guard) -> None:
    shown = shop.reveal(_customer(), actor="cs-7", role="cs", purpose="after_sales", subject="u1")
    assert shown["phone"] == "+86" + CANARY_PHONE  # clear: E.164 as the field normalised it
    assert shown["name"] == "张*"  # masked by the kind's rule
    assert "id_number" not in shown  # the role does not name the kind: absent
    assert shown["total"] == 3  # not personal information
    assert shown["note"] == "或拨 13912345678"  # a phone found in free text: clear, as phone
    (event,) = _events(shop, "reveal")
    assert (event.actor, event.purpose, event.result, event.count) == (
        "cs-7",
        "after_sales",
        "ok",
        3,  # two phones in clear, the name masked
    )
    assert {row.get("view") for row in event.detail["rows"]} == {None, "masked"}
    assert event.subjects == (shop.audit.pseudonym("u1"),)
    assert event.detail["context"]["role"] == "cs"
    assert shop.audit.scope().fields == frozenset()  # no table named: fields are paths only
    assert shop.audit.scope().kinds == {"phone"}  # the name was shown masked only


def test_a_clear_value_keeps_its_masked_repr(shop: pg.Guard) -> None:
    shown = shop.reveal(_customer(), actor="cs-7", role="cs", purpose="after_sales")
    assert CANARY_PHONE not in repr(shown["phone"])
    assert str(shown["phone"]).endswith(CANARY_PHONE)


def test_the_purpose_limits_what_a_role_sees_in_clear(shop: pg.Guard) -> None:
    """The courier role is masked-only; a cs acting for a purpose that does not cover the
    name sees the name masked even where the role would show it."""
    shop.consent.register(pg.Purpose("phone_only", basis="contract", kinds={"phone"}))
    policy = pg.AccessPolicy(
        [pg.Role("cs", purposes={"phone_only"}, clear={"phone", "person_name"})]
    )
    shop.access.policy = policy
    shown = shop.reveal(_customer(), actor="cs-7", role="cs", purpose="phone_only")
    assert shown["name"] == "张*"
    assert shown["phone"].endswith(CANARY_PHONE)


def test_nested_models_lists_and_mappings_are_walked(shop: pg.Guard) -> None:
    order = Order(order_id="o-1", customer=_customer(), contacts=[CANARY_PHONE, "13912345678"])
    shown = shop.reveal(order, actor="courier-1", role="courier", purpose="delivery")
    assert shown["order_id"] == "o-1"
    assert shown["customer"]["phone"] == "+86138****5678"
    assert "name" not in shown["customer"]
    assert shown["contacts"] == ["+86138****5678", "+86139****5678"]
    assert shown["customer"]["note"] == "或拨 139****5678"
    (event,) = _events(shop, "reveal")
    assert event.count == 4  # nothing in clear, four values masked
    assert shop.audit.scope().kinds == frozenset()


def test_a_mapping_s_plain_text_is_typed_by_the_kinds_given(shop: pg.Guard) -> None:
    record = {"receiver": "张三", "mobile": CANARY_PHONE, "card": "6222021234567890128"}
    shown = shop.reveal(
        record,
        actor="cs-7",
        role="cs",
        purpose="after_sales",
        kinds={"receiver": "person_name", "mobile": "phone", "card": "bank_card"},
    )
    assert shown == {"receiver": "张*", "mobile": CANARY_PHONE}
    (event,) = _events(shop, "reveal")
    common = event.detail.get("common", {})
    assert [{**common, **row}["field"] for row in event.detail["rows"]] == ["mobile", "receiver"]
    assert [{**common, **row}.get("view") for row in event.detail["rows"]] == [None, "masked"]


def test_a_found_kind_the_role_may_not_see_is_hidden_whole_in_free_text(
    shop: pg.Guard,
) -> None:
    shown = shop.reveal(
        {"note": f"身份证 {CANARY_ID}"}, actor="cs-7", role="cs", purpose="after_sales"
    )
    assert shown == {"note": "身份证 " + "*" * 18}


def test_the_masking_policy_of_the_role_masks(shop: pg.Guard) -> None:
    rules = pg.MaskingPolicy({"courier": {"phone": pg.KeepEnds(0, 4)}})
    shop.access.policy = pg.AccessPolicy(
        [pg.Role("courier", purposes={"delivery"}, masked={"phone"})], masking=rules
    )
    shown = shop.reveal(
        {"phone": CANARY_PHONE},
        actor="c-1",
        role="courier",
        purpose="delivery",
        kinds={"phone": "phone"},
    )
    assert shown == {"phone": "*******5678"}


@pytest.mark.parametrize(
    ("role", "purpose", "reason"),
    [
        ("admin", "after_sales", "unknown_role"),
        ("courier", "after_sales", "purpose_not_allowed"),
        ("cs_lead", "after_sales", "no_grant"),
    ],
)
def test_a_refused_reveal_shows_nothing_and_is_audited(
    shop: pg.Guard, role: str, purpose: str, reason: str
) -> None:
    with pytest.raises(pg.AccessDenied) as raised:
        shop.reveal(_customer(), actor="cs-7", role=role, purpose=purpose)
    assert raised.value.reason == reason
    (event,) = _events(shop, "reveal")
    assert (event.result, event.detail["context"]["reason"]) == ("denied", reason)
    rendered = "".join(traceback.TracebackException.from_exception(raised.value).format())
    assert CANARY_PHONE not in rendered
    assert CANARY_ID not in rendered


def test_an_unregistered_purpose_or_no_actor_is_refused(shop: pg.Guard) -> None:
    shop.access.policy = pg.AccessPolicy([pg.Role("cs", purposes={"unlisted"}, clear={"phone"})])
    with pytest.raises(pg.AccessDenied) as raised:
        shop.reveal(_customer(), actor="cs-7", role="cs", purpose="unlisted")
    assert raised.value.reason == "unknown_purpose"
    with pytest.raises(pg.AccessDenied) as raised:
        shop.reveal(_customer(), role="cs", purpose="unlisted")
    assert raised.value.reason == "no_actor"
    assert [e.result for e in _events(shop, "reveal")] == ["denied"]


def test_acting_names_the_actor_and_purpose_of_a_reveal(shop: pg.Guard) -> None:
    with pg.acting(actor="cs-9", purpose="after_sales"):
        shop.reveal(_customer(), role="cs")
    (event,) = _events(shop, "reveal")
    assert (event.actor, event.purpose) == ("cs-9", "after_sales")


def test_without_a_policy_every_reveal_is_refused(tmp_path: Any) -> None:
    from piiguard.testing import throwaway_guard

    with throwaway_guard() as guard, pytest.raises(pg.AccessDenied) as raised:
        guard.reveal(_customer(), actor="cs-7", role="cs", purpose="testing")
    assert raised.value.reason == "unknown_role"


def test_a_record_that_is_not_a_model_or_mapping_is_refused(shop: pg.Guard) -> None:
    with pytest.raises(pg.InvalidArgument):
        shop.reveal([CANARY_PHONE], actor="cs-7", role="cs", purpose="after_sales")


def test_nothing_revealed_reaches_the_audit_table(shop: pg.Guard) -> None:
    shop.reveal(
        _customer(),
        actor="cs-7",
        role="cs",
        purpose="after_sales",
        subject=CANARY_ID,
        context={"table": "customers", "id": CANARY_PHONE},
    )
    events = shop.store.tables.audit_events
    with shop.store.engine.connect() as connection:
        dumped = repr(list(connection.execute(select(events))))
    for canary in (CANARY_PHONE, CANARY_ID, "13912345678", "张三"):
        assert canary not in dumped


# -- just-in-time grants --------------------------------------------------------------------


def test_a_grant_lets_the_actor_act_in_the_role_on_every_instance_until_it_ends(
    shop: pg.Guard, store_target: StoreTarget, kek: LocalKEK, clock: SettableClock
) -> None:
    grant = shop.access.grant(
        "cs-7", role="cs_lead", ticket="INC-42", approved_by="lead-1", ttl=timedelta(hours=1)
    )
    with _second(shop, store_target, kek, clock) as other:
        shown = other.reveal(_customer(), actor="cs-7", role="cs_lead", purpose="after_sales")
        assert shown["id_number"] == CANARY_ID
        assert [g.id for g in other.access.grants("cs-7")] == [grant.id]
        clock.advance(timedelta(hours=1))  # expired: a grant is time-bound
        with pytest.raises(pg.AccessDenied) as raised:
            other.reveal(_customer(), actor="cs-7", role="cs_lead", purpose="after_sales")
        assert raised.value.reason == "no_grant"
        assert other.access.grants("cs-7") == []
        assert len(other.access.grants("cs-7", live=False)) == 1
    (granted,) = _events(shop, "access_grant")
    assert granted.actor == "lead-1"
    assert granted.detail["context"] == {
        "grant": grant.id,
        "grantee": "cs-7",
        "role": "cs_lead",
        "ticket": "INC-42",
    }


def test_a_revoked_grant_ends_on_every_instance(
    shop: pg.Guard, store_target: StoreTarget, kek: LocalKEK, clock: SettableClock
) -> None:
    grant = shop.access.grant(
        "cs-7", role="cs_lead", ticket="INC-42", approved_by="lead-1", ttl=timedelta(hours=1)
    )
    with _second(shop, store_target, kek, clock) as other:
        other.reveal(_customer(), actor="cs-7", role="cs_lead", purpose="after_sales")
        assert shop.access.revoke(grant.id, by="lead-1")
        assert not shop.access.revoke(grant.id, by="lead-1")
        with pytest.raises(pg.AccessDenied):
            other.reveal(_customer(), actor="cs-7", role="cs_lead", purpose="after_sales")
    assert [e.actor for e in _events(shop, "access_revoke")] == ["lead-1"]


def test_nobody_approves_their_own_grant(shop: pg.Guard) -> None:
    with pytest.raises(pg.AccessDenied) as raised:
        shop.access.grant(
            "cs-7", role="cs_lead", ticket="INC-1", approved_by="cs-7", ttl=timedelta(hours=1)
        )
    assert raised.value.reason == "self_approval"
    assert shop.access.grants(live=False) == []


def test_a_grant_an_insider_writes_for_themselves_is_not_honoured(
    shop: pg.Guard, clock: SettableClock
) -> None:
    """A row written straight into the grants table (no seal under the KEK), approved by
    the grantee, gives nothing: separation of duties is checked when the grant is used."""
    now = int(clock().timestamp() * 1_000_000)
    with shop.store.engine.begin() as connection:
        connection.execute(
            insert(shop.store.tables.access_grants).values(
                id="g_forged",
                actor="cs-7",
                role="cs_lead",
                ticket="none",
                approved_by="cs-8",
                granted_us=now,
                expires_us=now + 3_600_000_000,
                seal=bytes(32),
            )
        )
    with pytest.raises(pg.AccessDenied):
        shop.reveal(_customer(), actor="cs-7", role="cs_lead", purpose="after_sales")
    assert shop.access.grants(live=False) == []


def test_a_genuine_grant_an_insider_extends_or_unrevokes_is_not_honoured(
    shop: pg.Guard, clock: SettableClock
) -> None:
    grants = shop.store.tables.access_grants
    made = shop.access.grant(
        "cs-7", role="cs_lead", ticket="INC-42", approved_by="lead-1", ttl=timedelta(hours=1)
    )
    with shop.store.engine.begin() as connection:  # ten years instead of one hour
        connection.execute(
            update(grants)
            .where(grants.c.id == made.id)
            .values(expires_us=grants.c.expires_us + 315_360_000_000_000)
        )
    clock.advance(timedelta(hours=2))
    with pytest.raises(pg.AccessDenied):
        shop.reveal(_customer(), actor="cs-7", role="cs_lead", purpose="after_sales")
    second = shop.access.grant(
        "cs-7", role="cs_lead", ticket="INC-43", approved_by="lead-1", ttl=timedelta(hours=1)
    )
    assert shop.access.revoke(second.id, by="lead-1")
    with shop.store.engine.begin() as connection:  # the revocation undone by hand
        connection.execute(update(grants).where(grants.c.id == second.id).values(revoked_us=None))
    with pytest.raises(pg.AccessDenied):
        shop.reveal(_customer(), actor="cs-7", role="cs_lead", purpose="after_sales")


@pytest.mark.parametrize("approver", ["CS-7", "cs-7 ", " cs-7", "ｃｓ-７", "cs-7\U00016fe4"])
def test_self_approval_is_caught_in_any_case_spacing_or_width(
    shop: pg.Guard, approver: str
) -> None:
    with pytest.raises(pg.AccessDenied) as raised:
        shop.access.grant(
            "cs-7", role="cs_lead", ticket="INC-1", approved_by=approver, ttl=timedelta(hours=1)
        )
    assert raised.value.reason == "self_approval"


@given(
    st.text(
        st.sampled_from("eE\u0301\u3164\ufe0f\u2800\uff25-\u2010 \u00df") | st.characters(),
        max_size=12,
    )
)
@example("jose\u3164\u0301")
def test_an_actor_name_is_its_own_spelling(name: str) -> None:
    """Dropping a filler can bring a letter and an accent together: the one spelling is
    reached in one call, so a stored name, spelled again, names the same person."""
    once = actor_name(name)
    assert actor_name(once) == once


@pytest.mark.parametrize(
    "spelling",
    [
        "jose\u0301",
        "jose\u3164\u0301",
        "jos\u00e9\ufe0f",
        "jos\u00e9\U000e0100",
        "\u2800jos\u00e9",
        "jos\u00e9\U00016fe4",
        "jos\u00e9\u00ad",
    ],
)
def test_fillers_accents_and_variation_selectors_name_one_person(spelling: str) -> None:
    assert same_person(spelling, "jos\u00e9")


def test_a_role_that_names_its_approvers_takes_no_other(shop: pg.Guard) -> None:
    with pytest.raises(pg.AccessDenied) as raised:
        shop.access.grant(
            "cs-7", role="auditor", ticket="AUD-1", approved_by="lead-1", ttl=timedelta(hours=1)
        )
    assert raised.value.reason == "not_an_approver"
    shop.access.grant(
        "cs-7", role="auditor", ticket="AUD-1", approved_by="dpo", ttl=timedelta(hours=1)
    )
    shown = shop.reveal(_customer(), actor="cs-7", role="auditor", purpose="after_sales")
    assert shown["id_number"] == CANARY_ID


@pytest.mark.parametrize(
    "options",
    [
        {"role": "cs"},  # a standing role needs no grant
        {"role": "nobody"},
        {"role": "cs_lead", "ttl": timedelta(hours=5)},  # over the role's max_ttl
        {"role": "cs_lead", "ttl": timedelta(0)},
        {"role": "cs_lead", "ticket": ""},
        {"role": "cs_lead", "ticket": CANARY_PHONE * 20},
    ],
)
def test_a_bad_grant_is_refused_and_changes_nothing(shop: pg.Guard, options: Any) -> None:
    arguments = {"ticket": "INC-1", "approved_by": "lead-1", "ttl": timedelta(hours=1)}
    with pytest.raises(pg.InvalidArgument) as raised:
        shop.access.grant("cs-7", **{**arguments, **options})
    assert CANARY_PHONE not in str(raised.value)
    assert shop.access.grants(live=False) == []
    assert _events(shop, "access_grant") == []


def test_keys_dataclasses_enums_and_unreadable_values_show_no_more_than_the_role_may(
    shop: pg.Guard,
) -> None:
    """A mapping keyed by phone, a dataclass, an enum, bytes and an arbitrary object: the
    walk shows what it can read as the role may see it, and leaves out what it cannot."""
    import dataclasses
    import enum
    from datetime import date
    from decimal import Decimal

    @dataclasses.dataclass
    class Parcel:
        receiver_id: str
        weight: Decimal

    class Status(enum.Enum):
        SHIPPED = "shipped"
        HELD = f"held for {CANARY_ID}"

    class Opaque:
        def __repr__(self) -> str:
            return CANARY_ID

    record = {
        CANARY_ID: "vip",
        "parcel": Parcel(receiver_id=CANARY_ID, weight=Decimal("1.5")),
        "status": Status.SHIPPED,
        "hold": Status.HELD,
        "raw": CANARY_ID.encode(),
        "blob": Opaque(),
        "day": date(2026, 12, 5),
    }
    shown = shop.reveal(record, actor="cs-7", role="cs", purpose="after_sales")
    assert shown == {
        "*" * 18: "vip",
        "parcel": {"receiver_id": "*" * 18, "weight": Decimal("1.5")},
        "status": "shipped",
        "hold": "held for " + "*" * 18,
        "day": date(2026, 12, 5),
    }
    assert CANARY_ID not in repr(shown)


def test_a_key_or_context_key_holding_a_value_reaches_the_audit_table_digested(
    shop: pg.Guard,
) -> None:
    """Records keyed by phone or ID, and a context keyed by a phone: the role may see the
    phone in clear, but the recorded field paths and context keys never hold it."""
    record = {"by_phone": {CANARY_PHONE: {"mobile": pg.Phone(CANARY_PHONE)}}}
    shown = shop.reveal(
        record,
        actor="cs-7",
        role="cs",
        purpose="after_sales",
        context={CANARY_PHONE: "o1", "table": f"t{CANARY_PHONE}"},
    )
    assert list(shown["by_phone"]) == [CANARY_PHONE]  # the role sees phones in clear
    events = shop.store.tables.audit_events
    with shop.store.engine.connect() as connection:
        dumped = repr(list(connection.execute(select(events))))
    assert CANARY_PHONE not in dumped
    (event,) = _events(shop, "reveal")
    common = event.detail.get("common", {})
    paths = {{**common, **row}["field"] for row in event.detail["rows"]}
    assert paths == {"by_phone.__key__.mobile", "by_phone.__key__"}


def test_a_field_s_declared_kind_holds_for_plain_values_inside_it(shop: pg.Guard) -> None:
    """A name appended in place to a typed list, a model built without validation, a
    typed key, and a phone kept as a number: each is the kind its field declares."""

    class Crew(pg.PIIModel):
        names: list[pg.PersonName]
        by_name: dict[pg.PersonName, int] = Field(default_factory=dict)

    crew = Crew(names=["李四"], by_name={pg.PersonName("王五"): 1})
    crew.names.append("张三")  # type: ignore[arg-type]  # in place: not validated
    bare = Crew.model_construct(names=["张三"])  # type: ignore[list-item]
    for record in (crew, bare):
        shown = shop.reveal(record, actor="courier-1", role="courier", purpose="delivery")
        assert shown["names"] == []  # person_name is absent for a courier
        assert "张三" not in repr(shown)
    keyed = {"by_name": {pg.PersonName("王五"): 1}}
    shown = shop.reveal(keyed, actor="c-1", role="courier", purpose="delivery")
    assert shown == {"by_name": {"**": 1}}  # a typed key of an absent kind: hidden whole
    shown = shop.reveal(
        {"mobile": int(CANARY_PHONE), "order_no": 20261205123456788},
        actor="courier-1",
        role="courier",
        purpose="delivery",
        kinds={"mobile": "phone"},
    )
    assert shown["mobile"] == "138****5678"
    assert shown["order_no"] == 20261205123456788  # a long number with nothing in it
    shown = shop.reveal(
        {"note": int(CANARY_PHONE)}, actor="courier-1", role="courier", purpose="delivery"
    )
    assert shown == {"note": "138****5678"}  # undeclared, but scanned: a phone


@dataclasses.dataclass
class Parcel:
    """A dataclass nobody validates: its declared types still say each field's kind."""

    receiver: pg.PersonName
    phone: pg.Phone
    backup: list[pg.Phone]


class Ledger(BaseModel):
    """A plain pydantic model (not a PIIModel): ``model_construct`` keeps plain values."""

    by_phone: dict[pg.Phone, pg.PersonName] = Field(default_factory=dict)
    either: pg.Phone | pg.PersonName | None = None


NUMERIC_ID = "110105194912310011"  # synthetic, with a digit for its check character


def test_a_dataclass_field_s_declared_kind_holds_for_its_plain_values(shop: pg.Guard) -> None:
    parcel = Parcel(receiver="张三", phone=CANARY_PHONE, backup=[CANARY_PHONE])  # type: ignore[arg-type, list-item]
    shown = shop.reveal({"parcel": parcel}, actor="courier-1", role="courier", purpose="delivery")
    assert shown == {"parcel": {"phone": "138****5678", "backup": ["138****5678"]}}
    assert "张三" not in repr(shown)  # person_name is absent for a courier


def test_a_mapping_s_declared_key_kind_and_value_kind_stay_apart(shop: pg.Guard) -> None:
    """``dict[Phone, PersonName]`` built without validation: each key is a phone, each
    value a name, and one kind never stands in for the other."""
    ledger = Ledger.model_construct(by_phone={CANARY_PHONE: "张三"})  # type: ignore[dict-item]
    shown = shop.reveal(ledger, actor="courier-1", role="courier", purpose="delivery")
    assert shown["by_phone"] == {}  # the value (a name) is absent, so is its entry
    assert "张三" not in repr(shown)
    shown = shop.reveal(ledger, actor="cs-7", role="cs", purpose="after_sales")
    assert shown["by_phone"] == {CANARY_PHONE: "张*"}  # phone clear, name masked for cs


def test_a_value_declared_as_one_of_several_kinds_is_shown_as_the_most_hidden(
    shop: pg.Guard,
) -> None:
    ledger = Ledger.model_construct(either="张三")  # type: ignore[arg-type]
    shown = shop.reveal(ledger, actor="courier-1", role="courier", purpose="delivery")
    assert "either" not in shown  # phone would be masked, person_name absent: absent


@pytest.mark.parametrize(
    "number", [float(CANARY_PHONE), Decimal(CANARY_PHONE), Decimal("1.3812345678E+10")]
)
def test_a_phone_kept_as_a_float_or_decimal_is_still_a_phone(
    shop: pg.Guard, number: float | Decimal
) -> None:
    for kinds in ({"mobile": "phone"}, None):  # declared, and found by a scan
        shown = shop.reveal(
            {"mobile": number}, actor="courier-1", role="courier", purpose="delivery", kinds=kinds
        )
        assert shown == {"mobile": "138****5678"}
    ledger = Ledger.model_construct(either=number)  # type: ignore[arg-type]
    shown = shop.reveal(ledger, actor="courier-1", role="courier", purpose="delivery")
    assert "either" not in shown


def test_an_id_number_kept_as_a_decimal_is_hidden_where_the_role_may_not_see_ids(
    shop: pg.Guard,
) -> None:
    shown = shop.reveal(
        {"id": Decimal(NUMERIC_ID), "nan": Decimal("NaN"), "ratio": 0.5},
        actor="courier-1",
        role="courier",
        purpose="delivery",
    )
    assert shown["id"] == "*" * 18
    assert (shown["nan"].is_nan(), shown["ratio"]) == (True, 0.5)


class Receiver(TypedDict):
    name: pg.PersonName
    phone: pg.Phone


class Stop(NamedTuple):
    name: pg.PersonName
    phone: pg.Phone


CustomerName = NewType("CustomerName", pg.PersonName)
Names = TypeAliasType("Names", list[pg.PersonName])
N = TypeVar("N", bound=pg.PersonName)


class Shipment(BaseModel, Generic[N]):
    """Fields whose kinds come through a nested model, a TypedDict, a NamedTuple, a NewType,
    a type alias and a type variable's bound."""

    customer: Customer | None = None
    customers: list[Customer] = Field(default_factory=list)
    receiver: Receiver | None = None
    stop: Stop | None = None
    alias: CustomerName | None = None
    names: Names = Field(default_factory=list)
    bound: N | None = None


@pytest.mark.parametrize(
    "fields",
    [
        {"customer": {"name": "张三丰", "phone": CANARY_PHONE, "id_number": CANARY_ID}},
        {"customers": [{"name": "张三丰", "phone": CANARY_PHONE}]},
        {"receiver": {"name": "张三丰", "phone": CANARY_PHONE}},
        {"stop": Stop("张三丰", CANARY_PHONE)},  # type: ignore[arg-type]
        {"alias": "张三丰"},
        {"names": ["张三丰"]},
        {"bound": "张三丰"},
    ],
    ids=["model", "models", "typeddict", "namedtuple", "newtype", "alias", "typevar"],
)
def test_kinds_declared_through_any_annotation_hold_for_plain_values(
    shop: pg.Guard, fields: dict[str, Any]
) -> None:
    """Built without validation, each plain value is still the kind its annotation names:
    the courier sees no name and no ID, and phones masked."""
    record = Shipment.model_construct(**fields)
    shown = shop.reveal(record, actor="courier-1", role="courier", purpose="delivery")
    assert "张三丰" not in repr(shown)
    assert CANARY_PHONE not in repr(shown)
    assert CANARY_ID not in repr(shown)


T = TypeVar("T")


@dataclasses.dataclass
class Box(Generic[T]):
    item: T


class Aliased(BaseModel):
    name: pg.PersonName = Field(alias="receiverName")
    phone: pg.Phone = Field(serialization_alias="mobileNo")


class Mismatched(BaseModel):
    """Fields whose values, built without validation, are not of the declared shape."""

    name: pg.PersonName | None = None
    names: list[pg.PersonName] = Field(default_factory=list)
    boxed: Box[pg.PersonName] | None = None
    customer: Customer | None = None
    aliased: Aliased | None = None


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ["张三丰"]},  # a kind declared for a value holds for a list in its place
        {"name": {"first": "张三丰"}},  # ... and for a mapping's values
        {"name": {"张三丰": "x"}},  # ... and keys
        {"names": "张三丰"},  # text where a list of names is declared is a name
        {"boxed": Box("张三丰")},  # a generic dataclass's type argument
        {"boxed": {"item": "张三丰"}},
        {"aliased": {"receiverName": "张三丰", "mobileNo": CANARY_PHONE}},  # aliases
        {"customer": {"nickname": "张三丰"}},  # a key the model does not have
    ],
    ids=["list", "values", "keys", "text", "generic", "generic-map", "aliases", "unknown-key"],
)
def test_values_not_of_the_declared_shape_are_still_of_the_declared_kind(
    shop: pg.Guard, fields: dict[str, Any]
) -> None:
    """The courier sees no name and no phone in clear, whatever shape the value has."""
    record = Mismatched.model_construct(**fields)
    shown = shop.reveal(record, actor="courier-1", role="courier", purpose="delivery")
    assert "张三丰" not in repr(shown)
    assert CANARY_PHONE not in repr(shown)


def test_a_mapping_keyed_by_aliases_is_read_by_them(shop: pg.Guard) -> None:
    dumped = {"receiverName": "张三丰", "mobileNo": CANARY_PHONE}  # JSON, as an API sent it
    shown = shop.reveal(
        Mismatched.model_construct(aliased=dumped),  # type: ignore[arg-type]
        actor="cs-7",
        role="cs",
        purpose="after_sales",
    )
    assert shown["aliased"] == {"receiverName": "张**", "mobileNo": CANARY_PHONE}


class FullName(NamedTuple):
    family: str
    given: str


@dataclasses.dataclass
class Text:
    text: str


@dataclasses.dataclass
class Visit:
    name: pg.PersonName
    visits: dict[tuple[pg.PersonName, str], int]


@pytest.mark.parametrize(
    ("record", "kinds"),
    [
        ({"c": {"name": FullName("张", "三丰")}}, {"c.name": "person_name"}),
        ({"c": {"name": Text("张三丰")}}, {"c.name": "person_name"}),
        ({"o": Visit(name=FullName("张", "三丰"), visits={})}, None),  # type: ignore[arg-type]
        ({"o": Visit(name=pg.PersonName("李四"), visits={("张三丰", "北京"): 3})}, None),  # type: ignore[dict-item]
    ],
    ids=["namedtuple", "dataclass", "field", "tuple-keys"],
)
def test_a_structured_value_where_a_kind_is_declared_is_of_that_kind(
    shop: pg.Guard, record: dict[str, Any], kinds: dict[str, str] | None
) -> None:
    """A NamedTuple, a dataclass or a tuple key found where a name is declared holds a
    name: the courier sees none of it."""
    shown = shop.reveal(record, actor="c-1", role="courier", purpose="delivery", kinds=kinds)
    assert "三丰" not in repr(shown)
    assert "李" not in repr(shown)


class Outer(BaseModel):
    inner: Inner | None = None


class Inner(BaseModel):
    outer: Outer | None = None
    name: pg.PersonName | None = None


Outer.model_rebuild()


def test_what_mutually_recursive_models_declare_does_not_depend_on_earlier_reveals(
    shop: pg.Guard,
) -> None:
    earlier = {"x": Outer.model_construct(inner="x")}  # type: ignore[arg-type]
    record = {"y": Inner.model_construct(outer="张三丰")}  # type: ignore[arg-type]
    shop.reveal(earlier, actor="c-1", role="courier", purpose="delivery")
    shown = shop.reveal(record, actor="c-1", role="courier", purpose="delivery")
    assert "张三丰" not in repr(shown)


def test_a_self_referencing_model_is_walked(shop: pg.Guard) -> None:
    children: Any = [{"name": "李四", "phone": CANARY_PHONE}]
    shown = shop.reveal(
        Node.model_construct(name="张三", children=children),  # type: ignore[arg-type]
        actor="courier-1",
        role="courier",
        purpose="delivery",
    )
    assert shown == {"phone": None, "children": [{"phone": "138****5678"}]}


class Node(BaseModel):
    name: pg.PersonName
    phone: pg.Phone | None = None
    children: list[Node] = Field(default_factory=list)


Node.model_rebuild()


_FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize(
    "ticket",
    [
        f"caller {CANARY_PHONE}",
        f"id {CANARY_ID}",
        f"caller {CANARY_PHONE.translate(_FULL_WIDTH)}",
        f"id {CANARY_ID.translate(_FULL_WIDTH)}",
        f"caller {CANARY_PHONE.translate(_ARABIC_INDIC)}",
        "ID 110105 19491231 002X",  # the canary ID in its printed groups
        "ID 110105-19491231-002X",
        "caller 138.1234.5678",
        "caller 138_1234_5678",
        "caller 138/1234/5678",
        "caller 138 12345678",
        "caller 1\u03013812345678",  # a combining mark after a digit
        "caller 1381234\U00016fe45678",  # a filler inside the number
    ],
)
def test_a_ticket_holding_personal_information_is_refused(shop: pg.Guard, ticket: str) -> None:
    with pytest.raises(pg.InvalidArgument) as raised:
        shop.access.grant(
            "cs-7", role="cs_lead", ticket=ticket, approved_by="lead-1", ttl=timedelta(hours=1)
        )
    assert CANARY_PHONE not in str(raised.value)
    assert shop.access.grants() == []
    assert _events(shop, "access_grant") == []
