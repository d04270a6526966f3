"""redact(): findings masked in place, everything else untouched."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from piiguard import KeepEnds, MaskingPolicy, Replace, redact, redact_many, scan
from tests.strategies import mobiles, resident_ids


def test_design_example() -> None:
    """DESIGN §3: the phone is masked by its default rule."""
    assert redact("call 13812345678") == "call 138****5678"


def test_order_note_is_redacted_kind_by_kind() -> None:
    """A realistic note: every kind gets its own default mask, the prose stays."""
    note = (
        "收件人手机13812345678，身份证11010519491231002X，"
        "邮箱zhangsan@example.com，卡6222021234567890128。"
    )
    assert redact(note) == (
        "收件人手机138****5678，身份证1****************X，"
        "邮箱z***@example.com，卡***************0128。"
    )


def test_policy_and_role_choose_the_rules() -> None:
    """With a policy, the role's rules replace the defaults."""
    policy = MaskingPolicy(
        {"courier": {"phone": KeepEnds(0, 4), "cn_resident_id": Replace("[ID]")}}
    )
    text = "13812345678 / 11010519491231002X"
    assert redact(text, policy, role="courier") == "*******5678 / [ID]"
    with pytest.raises(ValueError, match="policy"):
        redact(text, role="courier")


def test_text_without_findings_is_returned_as_is() -> None:
    """No findings, no copy."""
    text = "nothing personal here"
    assert redact(text) is text


@given(
    st.lists(st.one_of(mobiles, resident_ids()), min_size=1, max_size=4),
    st.text(alphabet="的了是 ", min_size=1, max_size=5),
)
def test_redacted_text_has_no_findings_left_and_keeps_its_length(
    values: list[str], joint: str
) -> None:
    """After redaction nothing is found again, and layout-preserving masks keep the length."""
    text = "x" + joint.join(values) + "y"
    redacted = redact(text)
    assert scan(redacted) == []
    assert len(redacted) == len(text)
    for value in values:
        assert value not in redacted


def test_redact_many_redacts_each_text() -> None:
    """The batch form equals redacting each text."""
    assert redact_many(["13812345678", "none"]) == ["138****5678", "none"]
