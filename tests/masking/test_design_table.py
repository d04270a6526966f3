"""DESIGN §4: the default mask of every kind, exactly as the table writes it."""

from __future__ import annotations

import pytest

from piiguard import mask, mask_many

TABLE = [
    ("phone", "13812345678", "138****5678"),
    ("phone", "+86 138-1234-5678", "+86 138-****-5678"),
    ("phone", "+1 415 555 2671", "+1 *** *** 2671"),
    ("cn_resident_id", "11010519491231002X", "1****************X"),
    ("bank_card", "6222021234567890128", "***************0128"),
    ("email", "zhangsan@example.com", "z***@example.com"),
    ("person_name", "张三丰", "张**"),
    ("person_name", "欧阳修", "欧阳*"),
    ("person_name", "John Smith", "J*** S****"),
    ("address", "北京市朝阳区建国路88号", "北京市朝阳区****"),
    ("date_of_birth", "1990-05-17", "1990-**-**"),
    ("ipv4", "192.168.1.20", "192.168.*.*"),
]


@pytest.mark.parametrize(("kind", "value", "expected"), TABLE, ids=[row[1] for row in TABLE])
def test_default_masks_match_the_design_table(kind: str, value: str, expected: str) -> None:
    """Each example of the table, one by one."""
    assert mask(value, kind) == expected


@pytest.mark.parametrize("kind", sorted({row[0] for row in TABLE}))
def test_batch_form_matches_the_single_form(kind: str) -> None:
    """mask_many gives, in order, what mask gives for each value."""
    rows = [(value, expected) for row_kind, value, expected in TABLE if row_kind == kind]
    assert mask_many((value for value, _ in rows), kind) == [expected for _, expected in rows]


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("phone", "+8613812345678", "+86138****5678"),  # the E.164 form fields store
        ("phone", "138 1234 5678", "138 **** 5678"),
        ("phone", "8613812345678", "86138****5678"),
        ("phone", "010-6552 9988", "***-**** 9988"),
        ("phone", "+44 20 7946 0958", "+44 ** **** 0958"),
        ("cn_resident_id", "11010519491231002x", "1****************x"),
        ("cn_resident_id", "610104620927690", "6*************0"),
        ("bank_card", "6222 0212 3456 7890 128", "**** **** **** ***0 128"),
        ("email", "a@example.com", "***@example.com"),
        ("person_name", "诸葛亮", "诸葛*"),
        ("person_name", "司马", "司*"),  # two characters: surname 司, given name 马
        ("person_name", "阿依古丽·买买提", "阿***·***"),
        ("person_name", "Mary-Jane O'Neil", "M***-J*** O'N***"),
        ("address", "广东省深圳市南山区科技园南区1号", "广东省深圳市南山区****"),
        ("address", "上海市浦东新区世纪大道100号", "上海市浦东新区****"),
        ("address", "江苏省苏州市昆山市玉山镇", "江苏省苏州市昆山市****"),
        # only divisions: showing them would show the whole address
        ("address", "内蒙古自治区锡林郭勒盟锡林浩特市", "****"),
        ("address", "北京市建国路88号", "北京市****"),
        ("address", "1 Infinite Loop, Cupertino", "****"),
        ("date_of_birth", "1990年05月17日", "1990年**月**日"),
        ("date_of_birth", "19900517", "1990****"),
        ("ipv6", "2001:db8:85a3::8a2e:370:7334", "2001:db8:****::****:***:****"),
        ("cn_passport", "E12345678", "E******78"),
        ("cn_license_plate", "京A12345", "京A****5"),
        ("health", "type 2 diabetes", "****"),
    ],
)
def test_defaults_beyond_the_table(kind: str, value: str, expected: str) -> None:
    """The documented defaults for other layouts and the kinds the table does not show."""
    assert mask(value, kind) == expected


def test_id_mask_never_shows_birth_date_or_sex_digit() -> None:
    """Characters 7-14 (birth date) and 17 (sex) are always masked."""
    masked = mask("11010519491231002X", "cn_resident_id")
    assert set(masked[6:14]) == {"*"}
    assert masked[16] == "*"


def test_address_mask_keeps_no_street_even_with_a_market_named_city() -> None:
    """A 市 later in the street part (市场) does not extend what is kept."""
    assert mask("北京市朝阳区建国路大望路市场3号", "address") == "北京市朝阳区****"
