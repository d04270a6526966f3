"""mask() and mask_many() take a policy and a role as mask_model() does; PhoneMask(national=True)
shows a Chinese mobile in its national form whatever way it was written."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import piiguard as pg
from tests.helpers import CANARY_PHONE, exception_text
from tests.strategies import mobiles

NATIONAL = pg.PhoneMask(national=True)
POLICY = pg.MaskingPolicy(
    {"cs": {"phone": NATIONAL}, "courier": {"phone": pg.KeepEnds(0, 4)}},
    default={"cn_resident_id": pg.MaskAll()},
)

#: Ways a shop's forms and imports write one mobile number.
LAYOUTS = (
    "{m}",
    "+86{m}",
    "+86 {a} {b} {c}",
    "+86-{a}-{b}-{c}",
    "0086{m}",
    "86{m}",
    "{a} {b} {c}",
    "({a}) {b}-{c}",
)


def _written(mobile: str, layout: str) -> str:
    return layout.format(m=mobile, a=mobile[:3], b=mobile[3:7], c=mobile[7:])


@given(mobiles, st.sampled_from(LAYOUTS))
def test_national_form_is_the_masked_eleven_digits_whatever_the_layout(
    mobile: str, layout: str
) -> None:
    expected = mobile[:3] + "****" + mobile[7:]
    assert NATIONAL(_written(mobile, layout)) == expected
    assert pg.mask(_written(mobile, layout), "phone", rule=NATIONAL) == expected


@given(mobiles, st.integers(0, 7), st.integers(0, 7))
def test_national_form_keeps_only_the_digits_asked_for(mobile: str, first: int, last: int) -> None:
    if first + last >= 11:
        return
    shown = pg.PhoneMask(first=first, last=last, national=True)(f"+86 {mobile}")
    assert len(shown) == 11
    assert shown[:first] == mobile[:first]
    assert shown[first : 11 - last] == "*" * (11 - first - last)
    assert shown[11 - last :] == mobile[11 - last :]


def test_national_form_is_stable_on_masked_input_and_leaves_other_numbers_alone() -> None:
    assert NATIONAL("+86 138-****-5678") == "138****5678"
    assert NATIONAL("138****5678") == "138****5678"
    assert NATIONAL("+1 415 555 2671") == pg.mask("+1 415 555 2671", "phone")
    assert NATIONAL("not a phone") == pg.mask("not a phone", "phone")
    with pytest.raises(TypeError):
        pg.PhoneMask(national="yes")  # type: ignore[arg-type]


def test_mask_takes_a_policy_and_a_role_as_mask_model_does() -> None:
    assert pg.mask("+8613812345678", "phone", policy=POLICY, role="cs") == "138****5678"
    assert pg.mask("13812345678", "phone", policy=POLICY, role="courier") == "*******5678"
    # no role: the policy's default table, then the kind's own rule
    assert pg.mask("11010519491231002X", "cn_resident_id", policy=POLICY) == "*" * 18
    assert pg.mask("13812345678", "phone", policy=POLICY) == "138****5678"
    assert (
        pg.mask_many(["+8613812345678"] * 2, "phone", policy=POLICY, role="cs")
        == ["138****5678"] * 2
    )


class Contact(pg.PIIModel):
    phone: pg.Phone
    id_number: pg.CNResidentID


@given(mobiles, st.sampled_from(["cs", "courier", None]))
def test_mask_and_mask_model_agree_for_every_role(mobile: str, role: str | None) -> None:
    contact = Contact(phone=mobile, id_number="11010519491231002X")
    masked = pg.mask_model(contact, policy=POLICY, role=role)
    assert masked["phone"] == pg.mask(contact.phone, "phone", policy=POLICY, role=role)
    assert masked["id_number"] == pg.mask(
        contact.id_number, "cn_resident_id", policy=POLICY, role=role
    )


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"role": "cs"}, pg.InvalidArgument),  # a role without a policy
        ({"policy": POLICY, "rule": pg.MaskAll()}, pg.InvalidArgument),  # two sources of rule
        ({"policy": {"cs": {}}}, pg.InvalidArgument),  # not a MaskingPolicy
        ({"policy": POLICY, "role": "intern"}, pg.UnknownRole),  # the policy has no such role
    ],
)
def test_rules_policies_and_roles_that_do_not_go_together_are_refused_cleanly(
    arguments: dict[str, object], error: type[Exception]
) -> None:
    for call in (
        lambda: pg.mask(CANARY_PHONE, "phone", **arguments),  # type: ignore[arg-type]
        lambda: pg.mask_many([CANARY_PHONE], "phone", **arguments),  # type: ignore[arg-type]
    ):
        with pytest.raises(error) as caught:
            call()
        assert CANARY_PHONE not in exception_text(caught.value)
