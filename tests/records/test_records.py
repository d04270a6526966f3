"""Records (issue 12): minimisation at collection (a model's purposes), the record of
processing built from the registers, and impact assessments kept three years, on SQLite
and PostgreSQL; the ``piiguard records`` command."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Generic, NewType, TypeVar

import pydantic
import pytest
from joserfc.jwk import ECKey
from sqlalchemy import insert, update
from typing_extensions import TypeAliasType, TypedDict

import piiguard as pg
from piiguard.keys import LocalKEK
from piiguard.sharing import requirements
from piiguard.testing import SettableClock
from tests.conftest import StoreTarget

DELIVERY = pg.Purpose("delivery", basis="contract", kinds={"person_name", "phone", "address"})
PAYMENT = pg.Purpose("payment", basis="contract", kinds={"bank_card"}, separate=True)


class Checkout(pg.PIIModel, purposes=(DELIVERY, PAYMENT)):
    """What a checkout collects, each field for a purpose that needs it."""

    receiver: pg.PersonName
    phone: pg.Phone
    address: pg.Address
    card: pg.BankCard | None = None


# -- minimisation at collection ----------------------------------------------------------------


def test_a_field_no_purpose_needs_fails_at_class_definition() -> None:
    with pytest.raises(pg.PolicyViolation) as raised:

        class Greedy(pg.PIIModel, purposes=(DELIVERY,)):
            receiver: pg.PersonName
            id_number: pg.CNResidentID  # delivery does not need an ID number

    assert "id_number" in str(raised.value)
    assert "cn_resident_id" in str(raised.value)


def test_nested_models_are_held_to_the_outer_model_s_purposes() -> None:
    class Contact(pg.PIIModel):
        email: pg.Email

    with pytest.raises(pg.PolicyViolation):

        class Order(pg.PIIModel, purposes=(DELIVERY,)):
            receiver: pg.PersonName
            contact: Contact


@pytest.mark.parametrize("purposes", ["delivery", ("delivery",), (object(),)])
def test_purposes_are_purpose_objects(purposes: Any) -> None:
    with pytest.raises(pg.InvalidArgument):

        class Wrong(pg.PIIModel, purposes=purposes):
            receiver: pg.PersonName


def test_the_inventory_lists_each_field_s_purposes() -> None:
    found = {spec.name: spec.purposes for spec in pg.inventory(Checkout)}
    assert found == {
        "receiver": ("delivery",),
        "phone": ("delivery",),
        "address": ("delivery",),
        "card": ("payment",),
    }
    plain = pg.inventory(pg.PIIModel)
    assert plain == []


# -- the record of processing ------------------------------------------------------------------


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def shop(store_target: StoreTarget, kek: LocalKEK, clock: SettableClock) -> Iterator[pg.Guard]:
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, clock=clock) as guard:
        guard.consent.register(DELIVERY)
        guard.consent.register(PAYMENT)
        guard.retention.policy(
            pg.RetentionPolicy(
                "orders", keep=timedelta(days=3 * 365), after="completed", legal_minimum=True
            )
        )
        guard.sharing.register(
            pg.Recipient(
                "sf-express",
                public_key=ECKey.generate_key("P-256").as_dict(private=False),
                purposes={"delivery"},
                fields={"receiver": "masked", "phone": "token", "address": "clear"},
                assessed_until=date(2027, 6, 30),
                contract=pg.Contract("SF-1", date(2027, 12, 31)),
            )
        )
        yield guard


def test_an_assessment_is_kept_three_years_and_says_why_it_was_needed(
    shop: pg.Guard, clock: SettableClock
) -> None:
    made = shop.records.assessment(
        "delivery", risks=["labels copied"], measures=["masked names"], author="dpo"
    )
    assert made.required_for == ("providing",)
    assert made.keep_until - made.created_at >= timedelta(days=3 * 365)
    assert shop.records.assessments("delivery") == [made]
    assert shop.records.assessments("payment") == []
    assert shop.records.assessed("delivery")
    assert not shop.records.assessed("payment")


@pytest.mark.parametrize(
    "call",
    [
        {"purpose": "nope"},
        {"risks": []},
        {"risks": "one risk"},
        {"measures": [""]},
        {"author": ""},
    ],
)
def test_a_bad_assessment_is_refused_and_nothing_is_kept(
    shop: pg.Guard, call: dict[str, Any]
) -> None:
    given: dict[str, Any] = {
        "purpose": "delivery",
        "risks": ["r"],
        "measures": ["m"],
        "author": "dpo",
    } | call
    purpose = given.pop("purpose")
    with pytest.raises((pg.InvalidArgument, pg.UnknownPurpose)):
        shop.records.assessment(purpose, **given)
    assert shop.records.assessments() == []


def test_which_purposes_need_an_assessment() -> None:
    key = ECKey.generate_key("P-256").as_dict(private=False)
    terms: dict[str, Any] = {"public_key": key, "assessed_until": date(2027, 1, 1)}
    home = pg.Recipient("a", purposes={"delivery"}, fields={"address": "clear"}, **terms)
    abroad = pg.Recipient(
        "b",
        purposes={"delivery"},
        fields={"address": "clear"},
        cross_border=pg.CrossBorder("SG", "exempt", consent="xb"),
        **terms,
    )
    assert requirements(DELIVERY, []) == ()
    assert requirements(PAYMENT, []) == ("sensitive",)
    assert requirements(DELIVERY, [home]) == ("providing",)
    assert requirements(DELIVERY, [home, abroad]) == ("providing", "cross_border")


def test_the_record_of_processing_is_built_from_the_registers(shop: pg.Guard) -> None:
    shop.records.assessment("delivery", risks=["r"], measures=["m"], author="dpo")
    record = shop.records.processing(models=[Checkout])
    assert record["format"] == "piiguard.records/1"
    json.dumps(record, ensure_ascii=False)  # machine-readable
    purposes = {p["name"]: p for p in record["purposes"]}
    delivery, payment = purposes["delivery"], purposes["payment"]
    assert delivery["basis"] == "contract"
    assert delivery["recipients"] == ["sf-express"]
    assert delivery["assessment_required"] == ["providing"]
    assert len(delivery["assessments"]) == 1
    (collected,) = delivery["collected_by"].values()
    assert [f["field"] for f in collected] == ["receiver", "phone", "address"]
    assert payment["sensitive"] == ["bank_card"]
    assert payment["assessment_required"] == ["sensitive"]
    assert payment["assessments"] == []
    assert record["retention"] == [
        {
            "category": "orders",
            "keep_days": 1095.0,
            "after": "completed",
            "action": "delete",
            "legal_minimum": True,
        }
    ]
    (recipient,) = record["recipients"]
    assert recipient["contract"] == {"ref": "SF-1", "until": "2027-12-31"}
    assert "public_key" not in recipient
    by_default = shop.records.processing()  # every model declared with purposes=
    names = {m for p in by_default["purposes"] for m in p["collected_by"]}
    assert any(name.endswith("Checkout") for name in names)


def test_the_record_reads_for_people_in_markdown(shop: pg.Guard) -> None:
    text = shop.records.markdown(shop.records.processing(models=[Checkout]))
    assert text.startswith("# Record of processing")
    assert "### delivery (version 1)" in text
    assert "sf-express" in text
    assert "| orders | 1095 | completed | delete | yes |" in text
    assert "required (sensitive)" in text


def test_the_records_command_prints_markdown_and_json(
    shop: pg.Guard, store_target: StoreTarget, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from piiguard.cli import app

    url, schema = store_target
    options = ["records", "--store", url, "--kek", str(tmp_path / "kek.key")]
    if schema:
        options += ["--schema", schema]
    runner = CliRunner()
    as_text = runner.invoke(app, options)
    assert as_text.exit_code == 0, as_text.output
    assert "# Record of processing" in as_text.output
    as_json = runner.invoke(app, [*options, "--format", "json", "--model", f"{__name__}:Checkout"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["format"] == "piiguard.records/1"
    wrong = runner.invoke(app, [*options, "--format", "xml"])
    assert wrong.exit_code != 0


# -- found by an attack review -----------------------------------------------------------------

T = TypeVar("T")
Card = NewType("Card", pg.BankCard)
CardAlias = TypeAliasType("CardAlias", pg.BankCard | None)


@pydantic.dataclasses.dataclass
class PayDC:
    card: pg.BankCard


class PayTD(TypedDict):
    card: pg.BankCard


@dataclasses.dataclass
class Holder(Generic[T]):
    card: pg.BankCard
    extra: T


@pytest.mark.parametrize(
    "annotation",
    [
        Card,
        CardAlias,
        PayDC,
        PayTD,
        list[PayTD],
        Annotated[str, pg.BankCard],
        Annotated[str, pydantic.AfterValidator(pg.BankCard)],
        Holder[int],
    ],
)
def test_a_kind_no_purpose_names_is_found_through_every_annotation_form(
    annotation: Any,
) -> None:
    with pytest.raises(pg.PolicyViolation):
        pydantic.create_model(
            "Sneaky",
            __base__=(pg.PIIModel,),
            __cls_kwargs__={"purposes": (DELIVERY,)},
            card=(annotation, None),
        )


def test_a_model_with_purposes_must_be_complete_when_defined() -> None:
    with pytest.raises(pg.PolicyViolation):

        class Order(pg.PIIModel, purposes=(DELIVERY,)):
            receiver: pg.PersonName
            pay: Later | None = None  # type: ignore[name-defined]  # noqa: F821 - on purpose


class Node(pg.PIIModel):
    name: pg.PersonName
    children: list[Node] = pydantic.Field(default_factory=list)


def test_the_inventory_of_a_self_referencing_model_ends() -> None:
    assert [(s.name, s.kind) for s in pg.inventory(Node)] == [
        ("name", "person_name"),
        ("children.name", "person_name"),
    ]


def test_an_assessment_inserted_by_hand_is_not_an_assessment(shop: pg.Guard) -> None:
    made = shop.records.assessment("delivery", risks=["r"], measures=["m"], author="dpo")
    (event,) = shop.audit.events(action="assessment")
    assert event.detail["context"]["purpose"] == "delivery"
    table = shop.store.tables.assessments
    with shop.store.engine.begin() as connection:
        connection.execute(
            insert(table).values(
                id="pia_forged",
                purpose="payment",
                created_at=made.created_at,
                keep_until=made.keep_until,
                author="dpo",
                body=json.dumps({"risks": ["r"], "measures": ["m"], "required_for": []}),
                seal=bytes(32),
            )
        )
    assert not shop.records.assessed("payment")
    assert [a.assessment_id for a in shop.records.assessments()] == [made.assessment_id]


@pytest.mark.parametrize("author", ["13812345678", "dpo\n# forged", "138.1234.5678"])
def test_an_author_is_a_name_not_a_value_or_markup(shop: pg.Guard, author: str) -> None:
    with pytest.raises(pg.InvalidArgument):
        shop.records.assessment("delivery", risks=["r"], measures=["m"], author=author)
    assert shop.records.assessments() == []


def test_an_assessment_whose_dates_were_changed_by_hand_is_not_an_assessment(
    shop: pg.Guard,
) -> None:
    made = shop.records.assessment("payment", risks=["r"], measures=["m"], author="dpo")
    table = shop.store.tables.assessments
    with shop.store.engine.begin() as connection:
        connection.execute(update(table).values(keep_until=made.created_at + timedelta(days=30)))
    assert shop.records.assessments() == []
    assert not shop.records.assessed("payment")


def test_consent_to_a_purpose_made_sensitive_after_its_assessment_needs_a_new_one(
    shop: pg.Guard,
) -> None:
    survey = pg.Purpose("survey", basis="consent", kinds={"person_name"})
    shop.consent.register(survey)
    shop.records.assessment("survey", risks=["r"], measures=["m"], author="dpo")
    shop.consent.register(
        pg.Purpose("survey", basis="consent", kinds={"person_name", "health"}, separate=True)
    )
    shop.consent.publish_notice("n1", purposes=["survey"], text="a health survey")
    with pytest.raises(pg.PolicyViolation):
        shop.consent.grant("u1", "survey", notice="n1", evidence={"c": "app"})
    shop.records.assessment("survey", risks=["health data"], measures=["m"], author="dpo")
    shop.consent.grant("u1", "survey", notice="n1", evidence={"c": "app"})


# -- found by the sixth attack review --------------------------------------------------------


def test_a_subclass_cannot_shed_its_purposes_to_skip_the_check() -> None:
    """purposes=() used to reset the declaration and so skip the check: it now means that
    no personal information may be collected at all."""
    with pytest.raises(pg.PolicyViolation):

        class Sneaky(Checkout, purposes=()):
            id_number: pg.CNResidentID

    class Plain(pg.PIIModel, purposes=()):
        order_id: str

    assert pg.inventory(Plain) == []


def test_the_record_marks_stale_assessments_escapes_text_and_shows_contracts(
    shop: pg.Guard,
) -> None:
    """An assessment of an earlier version, or made for less than is needed now, is listed
    but marked as not covering; an author's markup shows literally; contracts appear."""
    from joserfc.jwk import ECKey

    shop.records.assessment("delivery", risks=["r"], measures=["m"], author="dpo [lead]")
    shop.sharing.register(
        pg.Recipient(
            "yto",
            public_key=ECKey.generate_key("P-256").as_dict(private=False),
            purposes={"delivery"},
            fields={"address": "clear"},
            assessed_until=date(2027, 1, 1),
            contract=pg.Contract("YTO-2026-7", date(2027, 1, 1)),
        )
    )
    assert shop.records.processing()["purposes"][0]["assessment_covered"] is True
    shop.consent.register(  # a new version: the assessment kept is of the old one
        pg.Purpose("delivery", basis=DELIVERY.basis, kinds={*DELIVERY.kinds, "email"})
    )
    record = shop.records.processing(models=[Checkout])
    (delivery,) = [p for p in record["purposes"] if p["name"] == "delivery"]
    assert delivery["assessment_covered"] is False
    text = shop.records.markdown(record)
    assert "NOT covered" in text
    assert "dpo \\[lead\\]" in text
    assert "contract YTO\\-2026\\-7 until 2027-01-01" in text
    shop.records.assessment("delivery", risks=["r"], measures=["m"], author="dpo")
    again = shop.records.processing(models=[Checkout])
    assert [p["assessment_covered"] for p in again["purposes"] if p["name"] == "delivery"] == [True]


def test_the_records_command_refuses_a_store_that_is_not_there(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from piiguard.cli import app

    LocalKEK.generate(tmp_path / "kek.key")
    typo = tmp_path / "typo.db"
    result = CliRunner().invoke(
        app, ["records", "--store", f"sqlite:///{typo}", "--kek", str(tmp_path / "kek.key")]
    )
    assert result.exit_code != 0
    assert not typo.exists()


def test_an_assessment_deleted_or_changed_by_hand_is_counted_missing(shop: pg.Guard) -> None:
    """Kept three years at least: the audit log recorded each one, so a row deleted or
    changed in the database shows in the record (it used to go unnoticed)."""
    kept = shop.records.assessment("delivery", risks=["r"], measures=["m"], author="dpo")
    gone = shop.records.assessment("payment", risks=["r"], measures=["m"], author="dpo")
    assert shop.records.missing_assessments() == 0
    table = shop.store.tables.assessments
    with shop.store.engine.begin() as connection:
        connection.execute(table.delete().where(table.c.id == gone.assessment_id))
        connection.execute(
            table.update().where(table.c.id == kept.assessment_id).values(author="someone")
        )
    assert shop.records.missing_assessments() == 2
    record = shop.records.processing(models=[Checkout])
    assert record["assessments_missing"] == 2
    assert "2 assessment(s) recorded in the audit log" in shop.records.markdown(record)
