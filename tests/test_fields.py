"""Typed PII fields and PIIModel: normalisation, masked reprs, inventory, schema."""

from __future__ import annotations

import pickle
from datetime import date

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import piiguard as pg
from piiguard import Category, FieldSpec


class Customer(pg.PIIModel):
    name: pg.PersonName
    phone: pg.Phone
    email: pg.Email
    id_number: pg.CNResidentID | None = None
    card: pg.BankCard | None = None
    address: pg.Address | None = None


SAMPLE = {
    "name": "张三丰",
    "phone": "138 1234 5678",
    "email": "Zhangsan@Example.com",
    "id_number": "11010519491231002x",
    "card": "6222 0212 3456 7890 128",
    "address": "北京市朝阳区建国路８８号",
}


def test_fields_hold_normalised_values() -> None:
    """E.164 phones, lower-case domains, upper-case X, digits-only cards."""
    customer = Customer(**SAMPLE)
    assert customer.phone == "+8613812345678"
    assert customer.email == "Zhangsan@example.com"
    assert customer.id_number == "11010519491231002X"
    assert customer.card == "6222021234567890128"
    assert customer.address == "北京市朝阳区建国路88号"
    assert isinstance(customer.phone, str)
    assert isinstance(customer.phone, pg.Phone)


def test_model_repr_and_str_are_masked() -> None:
    """repr() and str() of the model show masked values only."""
    customer = Customer(**SAMPLE)
    expected = (
        "name=PersonName('张**') phone=Phone('+86138****5678') email=Email('Z***@example.com') "
        "id_number=CNResidentID('1****************X') card=BankCard('***************0128') "
        "address=Address('北京市朝阳区****')"
    )
    assert str(customer) == expected
    assert repr(customer) == f"Customer({expected.replace(') ', '), ')})"


def test_value_repr_is_masked_but_the_value_is_whole() -> None:
    """A field value is the full str; only its repr is masked."""
    phone = pg.Phone("13812345678")
    assert repr(phone) == "Phone('+86138****5678')"
    assert f"{phone}" == "+8613812345678"
    assert phone.masked() == "+86138****5678"


def test_values_are_idempotent_and_pickle_to_themselves() -> None:
    """Constructing from a value of the same type returns it; pickling round-trips."""
    phone = pg.Phone("13812345678")
    assert pg.Phone(phone) is phone
    restored = pickle.loads(pickle.dumps(phone))  # noqa: S301 - our own data
    assert restored == phone
    assert type(restored) is pg.Phone


def test_date_of_birth_accepts_dates() -> None:
    """A datetime.date becomes ISO text."""

    class Person(pg.PIIModel):
        born: pg.DateOfBirth

    assert Person(born=date(1990, 5, 17)).born == "1990-05-17"
    assert repr(Person(born="1990-05-17")) == "Person(born=DateOfBirth('1990-**-**'))"


def test_all_declared_types_validate() -> None:
    """Every typed field of DESIGN §3 and the other kinds validates a sample."""

    class Everything(pg.PIIModel):
        passport: pg.CNPassport
        plate: pg.CNLicensePlate
        ip4: pg.IPv4
        ip6: pg.IPv6
        note: pg.PIIStr

    record = Everything(
        passport="e12345678", plate="京A·12345", ip4="10.0.0.1", ip6="::1", note="x"
    )
    assert (record.passport, record.plate, record.ip6) == ("E12345678", "京A12345", "::1")
    assert repr(record.note) == "PIIStr('****')"


def test_custom_pii_types_take_a_kind() -> None:
    """An application types its own PII by subclassing PIIStr with a kind."""

    class Diagnosis(pg.PIIStr, kind="health"):
        __slots__ = ()

    class Patient(pg.PIIModel):
        diagnosis: Diagnosis

    patient = Patient(diagnosis="type 2 diabetes")
    assert repr(patient) == "Patient(diagnosis=Diagnosis('****'))"
    assert pg.inventory(Patient) == [FieldSpec("diagnosis", "health", Category.HEALTH, True)]


def test_inventory_lists_kinds_categories_and_sensitivity() -> None:
    """DESIGN §3: inventory(Customer) names each PII field's kind and sensitivity."""
    assert pg.inventory(Customer) == [
        FieldSpec("name", "person_name", Category.BASIC, False),
        FieldSpec("phone", "phone", Category.CONTACT, False),
        FieldSpec("email", "email", Category.CONTACT, False),
        FieldSpec("id_number", "cn_resident_id", Category.IDENTITY, True),
        FieldSpec("card", "bank_card", Category.FINANCIAL, True),
        FieldSpec("address", "address", Category.BASIC, False),
    ]


def test_inventory_walks_nested_models_and_containers() -> None:
    """Nested models give dotted names; lists and optionals are looked through; plain
    fields are left out."""

    class Order(BaseModel):
        order_id: str
        buyer: Customer
        contacts: list[pg.Phone]
        extra: dict[str, pg.Email] | None = None
        sizes: tuple[int, ...] = ()

    names = [
        (spec.name, spec.kind)
        for spec in pg.inventory(
            Order(
                order_id="1",
                buyer=Customer(**SAMPLE),
                contacts=[],
            )
        )
    ]
    assert names[:2] == [("buyer.name", "person_name"), ("buyer.phone", "phone")]
    assert names[-2:] == [("contacts", "phone"), ("extra", "email")]
    assert "order_id" not in dict(names)


def test_json_schema_names_the_kind() -> None:
    """The JSON schema of a PII field is a string with its kind as format."""
    schema = Customer.model_json_schema()
    assert schema["properties"]["phone"] == {
        "format": "phone",
        "title": "Phone",
        "type": "string",
        "x-pii-kind": "phone",
    }


def test_json_dump_gives_the_values() -> None:
    """Serialising for an API gives the normalised values as plain strings."""
    customer = Customer(name="张三丰", phone="13812345678", email="a@example.com")
    assert customer.model_dump(mode="json")["phone"] == "+8613812345678"
    assert '"phone":"+8613812345678"' in customer.model_dump_json()


def test_validation_errors_name_kind_and_reason() -> None:
    """Errors are typed invalid_pii with the kind and a stable reason code."""
    with pytest.raises(ValidationError) as caught:
        Customer(**{**SAMPLE, "id_number": "11010519491231002Y", "phone": 13812345678})
    errors = caught.value.errors()
    assert [(e["loc"], e["type"]) for e in errors] == [
        (("phone",), "invalid_pii"),
        (("id_number",), "invalid_pii"),
    ]
    assert errors[1]["msg"] == "invalid cn_resident_id: expected 17 digits and a digit or X"
    assert all(e["input"] == "<redacted>" for e in errors)
    # the context docs/fields.md promises, in every way into the model (issue 10: it was lost)
    assert [e["ctx"] for e in errors] == [
        {"kind": "phone", "reason": "type"},
        {"kind": "cn_resident_id", "reason": "format"},
    ]
    record = Customer(**SAMPLE)
    with pytest.raises(ValidationError) as caught:
        record.card = "6222021234567890129"  # type: ignore[assignment]
    assert caught.value.errors()[0]["ctx"] == {"kind": "bank_card", "reason": "checksum"}
    with pytest.raises(ValidationError) as caught:
        Customer.model_validate_json('{"name": "", "phone": "1", "email": "x"}')
    assert {e["ctx"]["kind"] for e in caught.value.errors()} == {"person_name", "phone", "email"}


@pytest.mark.parametrize(
    "call",
    [
        lambda data: Customer(**data),
        Customer.model_validate,
        lambda data: Customer.model_validate_json(__import__("json").dumps(data)),
        Customer.model_validate_strings,
    ],
    ids=["init", "model_validate", "model_validate_json", "model_validate_strings"],
)
def test_every_validation_entry_point_works_and_fails_alike(call: object) -> None:
    """Each way into a model validates, and refuses bad data with a ValidationError."""
    assert callable(call)
    assert call(SAMPLE).phone == "+8613812345678"
    with pytest.raises(ValidationError):
        call({**SAMPLE, "card": "6222021234567890129"})


def test_validate_assignment_is_checked_and_hidden() -> None:
    """With validate_assignment, a bad assignment fails without its input."""

    class Editable(pg.PIIModel):
        model_config = ConfigDict(validate_assignment=True)
        phone: pg.Phone

    record = Editable(phone="13812345678")
    record.phone = "13912345678"  # type: ignore[assignment]
    assert record.phone == "+8613912345678"
    with pytest.raises(ValidationError) as caught:
        record.phone = "12345"  # type: ignore[assignment]
    assert caught.value.errors()[0]["input"] == "<redacted>"


def test_a_pii_model_cannot_show_inputs_in_errors() -> None:
    """Turning hide_input_in_errors off in a subclass is refused at class creation."""
    with pytest.raises(TypeError, match="hide_input_in_errors"):

        class Leaky(pg.PIIModel):
            model_config = ConfigDict(hide_input_in_errors=False)
            phone: pg.Phone


def test_direct_construction_raises_invalid_pii() -> None:
    """Outside pydantic a bad value raises InvalidPII, a ValueError."""
    with pytest.raises(pg.InvalidPII) as caught:
        pg.CNResidentID("11010519491231002Y")
    assert isinstance(caught.value, ValueError)
    assert caught.value.code == "format"


# -- every way a value gets into a model is validated (issue 10) ---------------------------------


def test_assignment_validates_and_masks() -> None:
    """``c.phone = ...`` stores a Phone (masked in reprs), and a bad value is refused without
    echoing it; the old value stays."""
    customer = Customer(**SAMPLE)
    customer.phone = "13912345678"  # type: ignore[assignment]
    assert type(customer.phone) is pg.Phone
    assert "13912345678" not in repr(customer)
    with pytest.raises(ValidationError) as caught:
        customer.phone = "1391234567x"  # type: ignore[assignment]
    assert "1391234567x" not in str(caught.value)
    assert customer.phone == "+8613912345678"


def test_model_copy_validates_its_update() -> None:
    customer = Customer(**SAMPLE)
    copied = customer.model_copy(update={"phone": "13912345678"})
    assert type(copied.phone) is pg.Phone
    assert "13912345678" not in repr(copied)
    assert customer.phone == Customer(**SAMPLE).phone
    with pytest.raises(ValidationError):
        customer.model_copy(update={"phone": "not a phone"})


def test_model_construct_validates() -> None:
    """pydantic's model_construct skips validation; a PIIModel's does not: no PII field is
    ever a plain str shown whole."""
    built = Customer.model_construct(**SAMPLE)  # type: ignore[arg-type]
    assert type(built.phone) is pg.Phone
    assert "12345678" not in repr(built)
    with pytest.raises(ValidationError):
        Customer.model_construct(**{**SAMPLE, "phone": "bad"})  # type: ignore[arg-type]


def test_a_subclass_cannot_turn_assignment_validation_off() -> None:
    with pytest.raises(TypeError, match="validate_assignment"):

        class Loose(pg.PIIModel):
            model_config = ConfigDict(validate_assignment=False)
            phone: pg.Phone


def test_containers_mutated_in_place_still_show_masked() -> None:
    """Appending to a list field skips validation (pydantic cannot see it): the repr and str
    of the model mask any plain str under a PII field all the same (an attack review found
    m.phones.append(...) shown whole)."""

    class Contacts(pg.PIIModel):
        phones: list[pg.Phone] = Field(default_factory=list)
        ids: dict[str, pg.CNResidentID] = Field(default_factory=dict)
        either: list[pg.Phone | pg.Email] = Field(default_factory=list)
        note: str = ""

    record = Contacts(phones=["13912345678"], note="kept as it is")
    record.phones.append("13812345678")  # type: ignore[arg-type]
    record.ids["home"] = "11010519491231002X"  # type: ignore[assignment]
    record.either.append("13812345678")  # type: ignore[arg-type]
    for shown in (repr(record), str(record)):
        assert "13812345678" not in shown
        assert "11010519491231002X" not in shown
        assert "138****5678" in shown
        assert "kept as it is" in shown
    assert "'***********'" in repr(record)  # two kinds share the field: masked whole
