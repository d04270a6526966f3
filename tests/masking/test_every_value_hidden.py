"""Every default mask hides at least one character of every valid value of its kind (or masks
it whole), the shortest values included: a value that survives as a subsequence of its mask is
shown whole (issue 10: Phone("+683 4002"), PersonName("A"), IPv6("2001:db8::") were)."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import piiguard as pg
from tests.strategies import cards, mobiles, resident_ids

#: Example numbers of every region in phonenumbers' metadata: published, not anyone's.
EXAMPLE_PHONES = sorted(
    {
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        for region in phonenumbers.SUPPORTED_REGIONS
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)
        if (number := phonenumbers.example_number_for_type(region, kind)) is not None
    }
)
LETTERS = st.characters(categories=["Lu", "Ll", "Lo"], exclude_characters="*")
ADDRESSES = (
    "北京市朝阳区",
    "上海市浦东新区",
    "广东省深圳市南山区",
    "浙江省杭州市",
    "新疆维吾尔自治区",
)

CANDIDATES: dict[str, st.SearchStrategy[str]] = {
    "phone": st.one_of(mobiles, st.sampled_from([*EXAMPLE_PHONES, "+683 4002"])),
    "email": st.one_of(st.emails(), st.just("a@b.co")),
    "person_name": st.lists(st.text(LETTERS, min_size=1, max_size=6), min_size=1, max_size=3).map(
        " ".join
    ),
    "address": st.builds(
        lambda prefix, rest: prefix + rest,
        st.sampled_from(ADDRESSES),
        st.text("建国路号栋单元室0123456789", max_size=8),
    ),
    "date_of_birth": st.dates().map(lambda day: day.isoformat()),
    "cn_resident_id": resident_ids(),
    "cn_passport": st.builds(
        lambda letter, digits: letter + digits,
        st.sampled_from("EGDSP"),
        st.text("0123456789", min_size=8, max_size=8),
    ),
    "bank_card": cards,
    "cn_license_plate": st.builds(
        lambda province, letter, rest: province + letter + rest,
        st.sampled_from("京沪粤浙苏川"),
        st.sampled_from("ABCDEF"),
        st.text("0123456789ABCDEFGHJK", min_size=5, max_size=6),
    ),
    "ipv4": st.ip_addresses(v=4).map(str),
    "ipv6": st.one_of(
        st.ip_addresses(v=6).map(str), st.sampled_from(["2001:db8::", "::", "::1", "fe80::"])
    ),
}
OTHER = st.text(st.characters(exclude_characters="*", exclude_categories=["Cs"]), min_size=1)


def _is_subsequence(value: str, masked: str) -> bool:
    remaining = iter(masked)
    return all(char in remaining for char in value)


@pytest.mark.parametrize("kind", sorted(pg.BUILTIN_KINDS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_default_mask_hides_part_of_every_valid_value(kind: str, data: st.DataObject) -> None:
    candidate = data.draw(CANDIDATES.get(kind, OTHER), label="value")
    if not pg.is_valid(candidate, kind):
        return
    value = pg.normalise(candidate, kind)
    # a value holding the mask character itself ("0*@a.ac") cannot be told from its mask by
    # looking for its characters in order: the property is about the others
    assume("*" not in value)
    masked = pg.mask(value, kind)
    visible = value.replace(" ", "")
    if not visible:  # only spaces (a free-text kind): masked whole when nothing but * shows
        assert masked.strip("* ") == "", (kind, masked)
        return
    assert not _is_subsequence(visible, masked), (kind, masked)


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        (pg.Phone, "+683 4002", "Phone('+683**02')"),
        (pg.PersonName, "A", "PersonName('*')"),
        (pg.PersonName, "J R", "PersonName('J *')"),
        (pg.IPv6, "2001:db8::", "IPv6('2001:***::')"),
        (pg.Address, "北京市朝阳区", "Address('****')"),
        (pg.Email, "*@a.au", "Email('******')"),
    ],
)
def test_the_shortest_values_are_not_shown_whole(field: type, value: str, shown: str) -> None:
    assert repr(field(value)) == shown
