"""mask(), mask_many(), mask_model() and MaskingPolicy."""

from __future__ import annotations

import pytest
from pydantic import Field

from piiguard import (
    ALL_KINDS,
    Category,
    KeepEnds,
    MaskAll,
    MaskingPolicy,
    PersonName,
    Phone,
    PIIKind,
    PIIModel,
    Replace,
    UnknownKind,
    UnknownRole,
    mask,
    mask_many,
    mask_model,
)
from piiguard.fields import CNResidentID, Email


class Contact(PIIModel):
    name: PersonName
    phone: Phone


class Order(PIIModel):
    order_id: str
    buyer: Contact
    recipients: list[Contact] = Field(default_factory=list)
    backup_phones: dict[str, Phone] = Field(default_factory=dict)
    id_number: CNResidentID | None = None
    tags: tuple[str, ...] = ()


ORDER = Order(
    order_id="o-1",
    buyer=Contact(name="张三丰", phone="13812345678"),
    recipients=[Contact(name="John Smith", phone="+1 415 555 2671")],
    backup_phones={"home": Phone("13912345678")},
    id_number=CNResidentID("11010519491231002X"),
    tags=("vip",),
)


def test_mask_model_masks_every_pii_value_and_nothing_else() -> None:
    """Nested models, lists and dicts are walked; other values come back as they are."""
    assert mask_model(ORDER) == {
        "order_id": "o-1",
        "buyer": {"name": "张**", "phone": "+86138****5678"},
        "recipients": [{"name": "J*** S****", "phone": "+1******2671"}],  # stored as E.164
        "backup_phones": {"home": "+86139****5678"},
        "id_number": "1****************X",
        "tags": ["vip"],
    }


POLICY = MaskingPolicy(
    {
        "courier": {"phone": KeepEnds(0, 4), "person_name": KeepEnds(1, 0)},
        "analyst": {ALL_KINDS: Replace()},
        "support": {},
    },
    default={"cn_resident_id": MaskAll()},
)


def test_policy_rules_apply_per_role() -> None:
    """A courier sees the last 4 digits; an analyst sees nothing; defaults fill the gaps."""
    courier = mask_model(ORDER, policy=POLICY, role="courier")
    assert courier["buyer"] == {"name": "张**", "phone": "+*********5678"}
    assert courier["id_number"] == "******************"
    analyst = mask_model(ORDER, policy=POLICY, role="analyst")
    assert analyst["buyer"] == {"name": "****", "phone": "****"}
    support = mask_model(ORDER, policy=POLICY, role="support")
    assert support["buyer"] == {"name": "张**", "phone": "+86138****5678"}


def test_policy_without_role_uses_its_default_table() -> None:
    """role=None reads the policy's default table, then the kind's own rule."""
    assert mask_model(ORDER, policy=POLICY)["id_number"] == "******************"
    assert POLICY.rule_for("phone") is None


def test_unknown_role_is_refused_not_defaulted() -> None:
    """Least privilege: a role the policy does not define gets an error, not some rules."""
    with pytest.raises(UnknownRole, match="'intern'"):
        mask_model(ORDER, policy=POLICY, role="intern")


def test_role_without_policy_is_refused() -> None:
    """A role means nothing without a policy."""
    with pytest.raises(ValueError, match="policy"):
        mask_model(ORDER, role="courier")


def test_policy_is_checked_when_built() -> None:
    """Unknown kinds, non-callable rules and malformed tables fail at construction."""
    with pytest.raises(UnknownKind):
        MaskingPolicy({"courier": {"phnoe": KeepEnds(0, 4)}})
    with pytest.raises(TypeError):
        MaskingPolicy({"courier": {"phone": "last4"}})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        MaskingPolicy({"courier": ["phone"]})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        MaskingPolicy({1: {}})  # type: ignore[dict-item]


def test_policy_reports_its_roles() -> None:
    """The roles are listed, and the repr names them without the rules."""
    assert POLICY.roles == {"courier", "analyst", "support"}
    assert repr(POLICY) == "MaskingPolicy(roles=['analyst', 'courier', 'support'])"


def test_custom_kinds_mask_by_their_own_rule_or_whole() -> None:
    """An application kind uses its default_mask, or Replace when it has none."""
    member = PIIKind("member_no", Category.IDENTITY, False, default_mask=KeepEnds(2, 0))
    secret = PIIKind("pet_name", Category.BASIC, False)
    assert mask("VIP12345", member) == "VI******"
    assert mask("Rex", secret) == "****"
    policy = MaskingPolicy({"ops": {member: MaskAll()}})
    assert mask("VIP12345", member, rule=policy.rule_for(member, "ops")) == "********"


def test_explicit_rule_overrides_the_default_but_keeps_the_shape_guard() -> None:
    """KeepEnds(3, 4) on a phone works; on prose passed as a phone it reveals nothing."""
    assert mask("13812345678", "phone", rule=KeepEnds(3, 4)) == "138****5678"
    assert mask("hello world", "phone", rule=KeepEnds(3, 4)) == "***********"


def test_pii_kind_objects_are_accepted_where_names_are() -> None:
    """mask() takes a PIIKind as well as a kind name."""
    assert mask("13812345678", Phone.pii_kind) == "138****5678"
    assert mask_many(["13812345678"], Phone.pii_kind) == ["138****5678"]


def test_unknown_kind_and_non_text_are_refused() -> None:
    """Typed errors, for one value and for batches."""
    with pytest.raises(UnknownKind):
        mask("x", "passport_number")
    with pytest.raises(UnknownKind):
        mask_many(["x"], "passport_number")
    with pytest.raises(TypeError, match="int"):
        mask(13812345678, "phone")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mask_many(["13812345678", 13812345678], "phone")  # type: ignore[list-item]


def test_masked_value_of_a_field() -> None:
    """A PII value masks itself by its kind's default."""
    assert Email("zhangsan@example.com").masked() == "z***@example.com"
