"""scan(): what is found, what is not, and where."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from piiguard import Finding, scan, scan_many
from tests.strategies import cards, mobiles, resident_ids


def _found(text: str) -> list[tuple[str, str]]:
    return [(finding.kind, text[finding.start : finding.end]) for finding in scan(text)]


def test_design_example() -> None:
    """DESIGN §3: a phone in a sentence, with its exact span."""
    assert scan("call 13812345678") == [Finding(kind="phone", start=5, end=16)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("手机13812345678，谢谢", [("phone", "13812345678")]),
        ("身份证11010519491231002X。", [("cn_resident_id", "11010519491231002X")]),
        ("身份证11010519491231002x", [("cn_resident_id", "11010519491231002x")]),
        ("卡号6222021234567890128", [("bank_card", "6222021234567890128")]),
        ("卡号 6222 0212 3456 7890 128 ok", [("bank_card", "6222 0212 3456 7890 128")]),
        ("邮箱zhangsan@example.com呢", [("email", "zhangsan@example.com")]),
        ("13812345678@163.com", [("email", "13812345678@163.com")]),
        ("tel:+86 138-1234-5678.", [("phone", "+86 138-1234-5678")]),
        ("US office +1 415 555 2671", [("phone", "+1 415 555 2671")]),
        ("手机 138 1234 5678", [("phone", "138 1234 5678")]),
        ("8613812345678", [("phone", "8613812345678")]),
        ("from 192.168.1.20 today", [("ipv4", "192.168.1.20")]),
        ("addr 2001:db8:85a3::8a2e:370:7334.", [("ipv6", "2001:db8:85a3::8a2e:370:7334")]),
        ("护照E12345678号", [("cn_passport", "E12345678")]),
        ("ID 11010519491231002Xyz", [("cn_resident_id", "11010519491231002X")]),
        ("call 13812345678x2", [("phone", "13812345678")]),
    ],
)
def test_kinds_are_found_next_to_chinese_text(text: str, expected: list[tuple[str, str]]) -> None:
    """Digits touching CJK characters are found: no reliance on \\b."""
    assert _found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "tracking 4242424242424241",  # Luhn-invalid card
        "number 12345678901",  # 11 digits not in the mobile plan
        "123138123456789",  # a mobile inside a longer run is not a mobile
        "version 1.2.3.4.5 and 999.1.1.1",  # not IPv4 addresses
        "at 12:30:45 and note::",  # times and colons are not IPv6
        "E12345678901",  # letter + 11 digits: not a passport
        "+12 34",  # too short to be a number
        "+1 415 555 267",  # not a valid US number
        "1****************X 138****5678",  # masked values are not findings
    ],
)
def test_invalid_candidates_are_not_reported(text: str) -> None:
    """Check digits, numbering plans and boundaries weed out look-alikes."""
    assert scan(text) == []


def test_a_valid_id_is_an_id_not_a_card() -> None:
    """An 18-digit run valid as an ID wins over a card reading of the same digits."""
    text = "no. 440308199901101512"
    assert _found(text) == [("cn_resident_id", "440308199901101512")]


def test_an_eighteen_digit_luhn_number_that_is_no_id_is_a_card() -> None:
    """When the ID reading fails, the card reading of the same run is tried."""
    text = "card 621234567890000002"
    assert _found(text) == [("bank_card", "621234567890000002")]


@given(
    st.lists(st.one_of(mobiles, resident_ids(), cards), min_size=1, max_size=5),
    st.sampled_from(["，", "。", " ", "：", "和", "; "]),
)
def test_every_planted_value_is_found_with_its_span(values: list[str], joint: str) -> None:
    """Values joined by Chinese or ASCII punctuation are all found, in order, exactly."""
    text = "开始" + joint.join(values) + "结束"
    assert [text[f.start : f.end] for f in scan(text)] == values


@given(st.text(max_size=200))
def test_findings_are_ordered_disjoint_and_inside_the_text(text: str) -> None:
    """For any text, findings are sorted, do not overlap, and lie within the text."""
    findings = scan(text)
    end = 0
    for finding in findings:
        assert end <= finding.start < finding.end <= len(text)
        end = finding.end


def test_scan_many_scans_each_text() -> None:
    """The batch form equals scanning each text."""
    texts = ["call 13812345678", "nothing here", "11010519491231002X"]
    assert scan_many(texts) == [scan(text) for text in texts]


def test_scan_refuses_non_text() -> None:
    """Bytes or None are a TypeError naming the type only."""
    with pytest.raises(TypeError, match="bytes"):
        scan(b"13812345678")  # type: ignore[arg-type]


def test_findings_hold_no_value() -> None:
    """A finding is kind and span only: its repr cannot leak the value."""
    finding = scan("call 13812345678")[0]
    assert not re.search(r"\d{5}", repr(finding))


def test_a_mistyped_id_is_a_likely_id_never_a_card() -> None:
    """18 ID-shaped digits with a wrong check character: reported as a likely ID (score
    0.6), left out when only confirmed values are asked for, and never a card even when the
    digits pass Luhn."""
    text = "订单号 110105194912310021"
    assert scan(text) == [Finding("cn_resident_id", 4, 22, 0.6)]
    assert scan(text, min_score=1.0) == []
