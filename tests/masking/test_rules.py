"""Masking rules: construction checks and the properties every rule keeps."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import piiguard as pg
from piiguard import (
    AddressMask,
    DateOfBirthMask,
    EmailMask,
    IPv4Mask,
    IPv6Mask,
    KeepEnds,
    MaskAll,
    PersonNameMask,
    PhoneMask,
    Replace,
    mask,
)
from piiguard.masking.api import _build_masker, _fast_cn_mobile, _fast_cn_resident_id, masker_for
from tests.strategies import cards, mobiles, resident_ids

LAYOUT_RULES = [
    KeepEnds(3, 4),
    KeepEnds(0, 4),
    KeepEnds(1, 1),
    MaskAll(),
    PhoneMask(),
    PersonNameMask(),
    DateOfBirthMask(),
    IPv6Mask(),
]
ALL_RULES = [*LAYOUT_RULES, EmailMask(), AddressMask(), IPv4Mask(), Replace()]
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)


@pytest.mark.parametrize("rule", LAYOUT_RULES, ids=repr)
@given(text=ANY_TEXT)
def test_layout_rules_keep_length_and_separators(rule: object, text: str) -> None:
    """Same length; every character either kept in place or replaced by '*'."""
    assert callable(rule)
    masked = rule(text)
    assert len(masked) == len(text)
    assert all(out in (original, "*") for original, out in zip(text, masked, strict=True))


@pytest.mark.parametrize("rule", ALL_RULES, ids=repr)
@given(text=ANY_TEXT)
def test_every_rule_is_idempotent(rule: object, text: str) -> None:
    """Masking a masked value changes nothing."""
    assert callable(rule)
    once = rule(text)
    assert rule(once) == once


@given(st.integers(0, 8), st.integers(0, 8), st.text(alphabet="0123456789ABCxyz-张 ", max_size=30))
def test_keep_ends_keeps_only_first_and_last(first: int, last: int, text: str) -> None:
    """At most first + last letters or digits survive, and never all of them."""
    masked = KeepEnds(first, last)(text)
    alnum = [i for i, char in enumerate(text) if char.isalnum()]
    shown = [i for i in alnum if masked[i] == text[i]]
    if len(alnum) <= first + last:
        assert shown == []
    else:
        assert shown == alnum[:first] + alnum[len(alnum) - last :]


@given(ANY_TEXT)
def test_fast_phone_path_equals_the_rule(text: str) -> None:
    """The inlined mobile path gives exactly what PhoneMask gives."""
    assert _fast_cn_mobile(text) == PhoneMask()(text)


@given(st.one_of(ANY_TEXT, resident_ids(), st.text("0123456789Xx", min_size=18, max_size=18)))
def test_fast_id_path_equals_the_guarded_rule(text: str) -> None:
    """The inlined ID path gives exactly what the shape-guarded KeepEnds(1, 1) gives."""
    assert _fast_cn_resident_id(text) == _build_masker("cn_resident_id", KeepEnds(1, 1))(text)


@given(mobiles)
def test_mobile_mask_shows_first_three_and_last_four(mobile: str) -> None:
    """Any CN mobile keeps 3 + 4 digits, in every common layout."""
    assert mask(mobile, "phone") == mobile[:3] + "****" + mobile[7:]
    assert mask("+86" + mobile, "phone") == "+86" + mobile[:3] + "****" + mobile[7:]


@given(resident_ids())
def test_id_mask_shows_first_and_last_only(number: str) -> None:
    """Any valid ID keeps its first and last characters."""
    assert mask(number, "cn_resident_id") == number[0] + "*" * 16 + number[-1]


@given(cards)
def test_card_mask_shows_the_last_four_only(card: str) -> None:
    """Any card keeps its last four digits."""
    assert mask(card, "bank_card") == "*" * (len(card) - 4) + card[-4:]


@pytest.mark.parametrize(
    "kind",
    [
        "phone",
        "cn_resident_id",
        "bank_card",
        "cn_passport",
        "cn_license_plate",
        "email",
        "date_of_birth",
        "ipv4",
        "ipv6",
    ],
)
@given(text=st.text(alphabet="abcdefghijklmnopqrstuvwxyz ,;!?", min_size=4, max_size=30))
def test_input_of_the_wrong_shape_is_masked_whole(kind: str, text: str) -> None:
    """Prose passed as a phone, an ID, ... comes back as stars only: nothing is echoed."""
    assume(text.strip())
    assert set(mask(text, kind)) == {"*"}


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: KeepEnds(-1, 0), ValueError),
        (lambda: KeepEnds(0, 65), ValueError),
        (lambda: KeepEnds("3", 4), TypeError),  # type: ignore[arg-type]
        (lambda: KeepEnds(True, 4), TypeError),
        (lambda: PhoneMask(first=7, last=4), ValueError),
        (lambda: EmailMask(first=-2), ValueError),
        (lambda: IPv4Mask(keep=4), ValueError),
        (lambda: IPv6Mask(keep=8), ValueError),
        (lambda: Replace(text=None), TypeError),  # type: ignore[arg-type]
    ],
)
def test_bad_rule_parameters_fail_when_the_rule_is_built(build: object, error: type) -> None:
    """Misuse raises TypeError or ValueError at construction, not at masking time."""
    assert callable(build)
    with pytest.raises(error):
        build()


def test_rules_are_frozen_values() -> None:
    """Rules compare by value, hash, and refuse mutation."""
    assert KeepEnds(3, 4) == KeepEnds(first=3, last=4)
    assert len({KeepEnds(3, 4), KeepEnds(3, 4)}) == 1
    with pytest.raises(AttributeError):
        KeepEnds(3, 4).first = 0  # type: ignore[misc]


def test_rules_mask_batches() -> None:
    """Every shipped rule has a batch form equal to calling it per value."""
    assert KeepEnds(0, 4).mask_many(["12345678", "abcdefgh"]) == ["****5678", "****efgh"]


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        (PhoneMask(first=0, last=4), "13812345678", "*******5678"),
        (PhoneMask(other_last=2), "+1 415 555 2671", "+1 *** *** **71"),
        (PhoneMask(), "+999 1234 5678", "+*** **** 5678"),  # no such country code
        (PhoneMask(), "+86 10 6552 9988", "+86 ** **** 9988"),  # a landline keeps CC + 4
        (PhoneMask(), "12345", "*****"),
        (PhoneMask(), "call me", "*******"),
        (EmailMask(first=2), "zhangsan@example.com", "zh***@example.com"),
        (EmailMask(), "not an address", "**************"),
        (EmailMask(), "a b@example.com", "***************"),
        (PersonNameMask(), "R2-D2", "*****"),
        (PersonNameMask(), "张", "*"),
        (PersonNameMask(), "", ""),
        (DateOfBirthMask(), "90-05-17", "********"),
        (IPv4Mask(keep=3), "10.1.2.3", "10.1.2.*"),
        (IPv4Mask(), "1.2.3", "*****"),
        (IPv6Mask(), "not:an:address", "**************"),
        (Replace("[removed]"), "anything", "[removed]"),
        (MaskAll(), "ab-12 cd", "**-** **"),
    ],
)
def test_rule_examples(rule: object, value: str, expected: str) -> None:
    """Parameters change what is kept; the wrong shape is masked whole."""
    assert callable(rule)
    assert rule(value) == expected


def test_masker_for_returns_the_fast_default_for_built_in_kinds() -> None:
    """Resolving once gives the same function mask() uses, by name or by kind object."""
    assert masker_for("cn_resident_id") is _fast_cn_resident_id
    assert masker_for(pg.get_kind("phone")) is _fast_cn_mobile
    assert masker_for("phone", KeepEnds(3, 4)) is not _fast_cn_mobile
