"""Detection of what shoppers actually type (issue 14): each miss the issue lists, and
properties over planted values written the ways input methods and copy-paste write them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import piiguard as pg
from piiguard import scan
from tests.helpers import CANARY_ID, CANARY_PHONE
from tests.strategies import cards, mobiles, resident_ids

_FULLWIDTH = str.maketrans("0123456789@.X", "０１２３４５６７８９＠．Ｘ")
_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _found(text: str, **options: object) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in scan(text, **options)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("手机１７３５９６４２２４６", [("phone", "１７３５９６４２２４６")]),
        ("邮箱 shopper＠example.com", [("email", "shopper＠example.com")]),
        ("138\u200b1234\u200b5678", [("phone", "138\u200b1234\u200b5678")]),
        ("138\u00ad1234\u00ad5678 到了", [("phone", "138\u00ad1234\u00ad5678")]),
        ("138\u00a01234\u00a05678", [("phone", "138\u00a01234\u00a05678")]),
        ("电话138\u30001234\u30005678", [("phone", "138\u30001234\u30005678")]),
        ("138.1234.5678", [("phone", "138.1234.5678")]),
        ("（138）1234-5678", [("phone", "（138）1234-5678")]),
        ("١٣٨١٢٣٤٥٦٧٨", [("phone", "١٣٨١٢٣٤٥٦٧٨")]),
        ("0086 138 1234 5678", [("phone", "0086 138 1234 5678")]),
        ("(+86) 13812345678", [("phone", "(+86) 13812345678")]),
        ("+1 (415) 555-2671", [("phone", "+1 (415) 555-2671")]),
    ],
)
def test_full_width_split_and_other_script_numbers_are_found(
    text: str, expected: list[tuple[str, str]]
) -> None:
    assert _found(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("收件电话+8616620146009 3单元502", [("phone", "+8616620146009")]),
        ("退款卡号5368 3473 4801 4127 2件商品", [("bank_card", "5368 3473 4801 4127")]),
        (
            "卡 6222 0212 3456 7890 128 6212 3456 7890 1265 4242 4242 4242 4242",
            [
                ("bank_card", "6222 0212 3456 7890 128"),
                ("bank_card", "6212 3456 7890 1265"),
                ("bank_card", "4242 4242 4242 4242"),
            ],
        ),
        ("订单 2023 11 05 13812345678", [("phone", "13812345678")]),
    ],
)
def test_a_number_that_runs_into_the_next_is_cut_back(
    text: str, expected: list[tuple[str, str]]
) -> None:
    assert _found(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("身份证 110105 19491231 002X", [("cn_resident_id", "110105 19491231 002X")]),
        ("身份证 110105 1949 1231 002X", [("cn_resident_id", "110105 1949 1231 002X")]),
        ("手机 1381 2345 678", [("phone", "1381 2345 678")]),
        ("卡号 3782 822463 10005", [("bank_card", "3782 822463 10005")]),
        ("座机 010-62345678", [("phone", "010-62345678")]),
        ("座机 (0755)8234567", [("phone", "(0755)8234567")]),
        ("座机 021 6234 5678", [("phone", "021 6234 5678")]),
    ],
)
def test_grouped_forms_and_landlines_are_found(text: str, expected: list[tuple[str, str]]) -> None:
    assert _found(text) == expected


def test_an_ipv4_mapped_ipv6_address_is_one_finding_and_masked_whole() -> None:
    text = "登录 ::ffff:10.12.34.56 失败"
    assert _found(text) == [("ipv6", "::ffff:10.12.34.56")]
    redacted = pg.redact(text)
    assert "12" not in redacted
    assert "34" not in redacted
    assert "56" not in redacted


@pytest.mark.parametrize(
    "text",
    [
        "下单时间 20231105123045",  # a compact timestamp
        "订单号 7420231105123456789",  # an order number outside every issuer range
        "条码 4006381333931",  # an EAN-13 barcode (Luhn happens to hold)
        "编号 1234 5678 1234 5670",  # Luhn-valid, grouped, but no scheme issues 1234
        "SKU 3847-2291-8812",
        "版本 10.2.3",
        "金额 1380.00 元",
    ],
)
def test_hard_negatives_are_not_reported(text: str) -> None:
    assert scan(text) == []


def test_a_mistyped_id_is_masked_as_a_likely_id_not_left_as_a_card() -> None:
    """17 real digits and a wrong check character: Luhn-valid, yet an ID, not a card."""
    mistyped = CANARY_ID[:17] + ("3" if CANARY_ID[17] != "3" else "4")
    text = f"身份证号 {mistyped} 请核对"
    assert [f.kind for f in scan(text)] == ["cn_resident_id"]
    assert scan(text)[0].score < 1.0
    assert mistyped[6:14] not in pg.redact(text)


def test_scan_filters_by_kind_and_score() -> None:
    text = f"手机 {CANARY_PHONE} 身份证 110105194912310021"
    assert [f.kind for f in scan(text)] == ["phone", "cn_resident_id"]
    assert [f.kind for f in scan(text, kinds=["phone"])] == ["phone"]
    assert [f.kind for f in scan(text, min_score=1.0)] == ["phone"]
    with pytest.raises(pg.InvalidArgument):
        scan(text, kinds="phone")
    with pytest.raises(pg.InvalidArgument):
        scan(text, min_score=2)


def test_the_address_mask_keeps_no_community_market_or_mall() -> None:
    assert pg.mask("天津市谢花园小区16栋5单元730室", "address") == "天津市****"
    assert pg.mask("天津市阳光花园市场2号", "address") == "天津市****"
    assert pg.mask("北京市朝阳区建国路88号", "address") == "北京市朝阳区****"


@pytest.mark.parametrize("surname", ["太叔", "仲孙", "仉督", "段干", "南门", "归海"])
def test_the_missing_compound_surnames_are_kept_whole(surname: str) -> None:
    assert pg.mask(surname + "伯阳", "person_name") == surname + "**"


_FORMAT = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u00ad", "\u2060", "\ufeff"])


@given(
    value=st.one_of(mobiles, resident_ids(), cards),
    width=st.sampled_from(["ascii", "full", "arabic"]),
    fillers=st.lists(st.tuples(st.integers(1, 17), _FORMAT), max_size=3),
    before=st.sampled_from(["手机", "号码：", "卡号 ", "", "请联系"]),
    after=st.sampled_from(["", "。", " 谢谢", "，尽快"]),
)
def test_a_planted_value_is_found_however_it_is_typed(
    value: str, width: str, fillers: list[tuple[int, str]], before: str, after: str
) -> None:
    """A valid value in full-width or Arabic-Indic digits, with format characters inside it,
    is found with the span of exactly its original characters, and redact leaves none of
    its digits in place."""
    typed = value
    if width == "full":
        typed = typed.translate(_FULLWIDTH)
    elif width == "arabic":
        typed = typed.translate(_ARABIC_INDIC)
    for wanted, filler in sorted(fillers, reverse=True):
        position = min(wanted, len(typed) - 1)
        typed = typed[:position] + filler + typed[position:]
    text = before + typed + after
    findings = scan(text)
    assert [text[f.start : f.end] for f in findings] == [typed]
    redacted = pg.redact(text)
    assert typed not in redacted
    assert len(redacted) == len(text)
