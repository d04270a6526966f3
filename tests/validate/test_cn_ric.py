"""Chinese resident ID numbers: published vectors, check characters, dates, regions."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from piiguard import InvalidPII, normalise
from piiguard.validate import (
    check_cn_resident_id,
    cn_resident_id_birth_date,
    cn_resident_id_check_char,
    upgrade_legacy_cn_id,
)
from tests.helpers import id_check_char_reference, load_vectors
from tests.strategies import resident_ids

VECTORS = load_vectors("cn_ric.json")
TODAY = date(2026, 11, 28)

# Numbers whose source suite refused them for reasons piiguard deliberately does not check
# (county codes against the yearly GB/T 2260 table, a suite's own address/date consistency
# rule): valid by check character, province, and birth date, so piiguard accepts them.
ACCEPTED_DESPITE_SOURCE = {
    "110111198012010078": "county not yet registered in the birth year",
    "110201199312010077": "county withdrawn by the birth year",
    "500154199301135886": "id-validator.py's address/date consistency rule",
}


def _verdict(number: str) -> bool:
    return isinstance(check_cn_resident_id(number, TODAY), str)


@pytest.mark.parametrize("entry", VECTORS["eighteen_digit"], ids=lambda entry: entry["number"])
def test_published_eighteen_digit_vectors(entry: dict[str, object]) -> None:
    """Every number a source suite calls valid is accepted; every bad check char refused."""
    number = str(entry["number"])
    if entry["source_verdict_valid"] is True:
        assert _verdict(number) is True
    if entry["checksum_valid"] is False:
        assert _verdict(number) is False
    if entry["source_verdict_valid"] is False and entry["checksum_valid"] is True:
        assert _verdict(number) is (number in ACCEPTED_DESPITE_SOURCE)


@pytest.mark.parametrize("entry", VECTORS["synthetic"], ids=lambda entry: entry["number"])
def test_synthetic_vectors(entry: dict[str, object]) -> None:
    """Feb 30, region 111111 and the year 3000 are refused although their check chars fit."""
    assert _verdict(str(entry["number"])) is entry["expect_valid_full"]


def test_check_char_matches_the_published_weights_for_every_vector() -> None:
    """The base-13 shortcut gives the same check character as the GB 11643 weights."""
    for entry in VECTORS["eighteen_digit"] + VECTORS["synthetic"]:
        number = str(entry["number"])
        first17 = number[:17]
        if len(number) == 18 and first17.isdigit():
            assert cn_resident_id_check_char(first17) == id_check_char_reference(first17)


@given(st.text("0123456789", min_size=17, max_size=17))
def test_check_char_shortcut_equals_reference(first17: str) -> None:
    """For any 17 digits the fast check character equals the weighted-sum definition."""
    assert cn_resident_id_check_char(first17) == id_check_char_reference(first17)


@given(resident_ids())
def test_valid_numbers_normalise_to_themselves(number: str) -> None:
    """A valid number comes back unchanged, and with a lower-case x it comes back upper."""
    assert normalise(number, "cn_resident_id") == number
    assert normalise(f"  {number.lower()} ", "cn_resident_id") == number


@given(resident_ids(), st.integers(0, 17), st.sampled_from("0123456789X"))
def test_any_single_substitution_is_refused(number: str, position: int, char: str) -> None:
    """MOD 11-2 detects every single-character error."""
    changed = number[:position] + char + number[position + 1 :]
    if changed != number:
        assert _verdict(changed) is False


def test_full_width_digits_are_accepted() -> None:
    """Full-width digits, as typed by Chinese input methods, are normalised."""
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "11010519491231002X")
    assert normalise(full_width, "cn_resident_id") == "11010519491231002X"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("1101051949123100", "length"),
        ("610104620927690", "legacy"),
        ("1101051949123100XX", "format"),
        ("11010519491231002Y", "format"),
        ("110105194912310021", "checksum"),
        ("990426199112010074", "region"),
        ("110305199001010011", "region"),  # Beijing has no city code 03
        ("810101199001010010", "region"),  # permit prefixes are followed by 0000
        ("360426199113010079", "birth_date"),
        ("440308300001101510", "birth_date"),
        (18, "type"),
        (None, "type"),
    ],
)
def test_errors_carry_a_stable_code(value: object, code: str) -> None:
    """Each way a number can be wrong has its own code, for callers that branch on it."""
    result = check_cn_resident_id(value, TODAY)
    assert isinstance(result, InvalidPII)
    assert result.code == code
    assert result.kind == "cn_resident_id"


def test_region_and_date_failures_are_told_apart_in_checked_numbers() -> None:
    """A valid-checksum number with an 1849 birth year is refused as implausibly old."""
    first17 = "44030818490101151"
    result = check_cn_resident_id(first17 + cn_resident_id_check_char(first17), TODAY)
    assert isinstance(result, InvalidPII)
    assert result.code == "birth_date"


def test_feb_29_only_in_leap_years() -> None:
    """2000-02-29 is a date; 1900-02-29 and 2001-02-29 are not."""
    for year, valid in (("2000", True), ("1900", False), ("2001", False), ("1996", True)):
        first17 = f"440308{year}0229151"
        assert _verdict(first17 + cn_resident_id_check_char(first17)) is valid


def test_birth_date_today_is_accepted_and_tomorrow_refused() -> None:
    """'Not in the future' is inclusive of today, with an injected today."""
    for born, valid in (("20261128", True), ("20261129", False)):
        first17 = f"440308{born}151"
        assert _verdict(first17 + cn_resident_id_check_char(first17)) is valid


def test_default_today_is_the_real_date() -> None:
    """Without an injected date, a birth date of tomorrow is refused too."""
    tomorrow = date.fromordinal(date.today().toordinal() + 1).strftime("%Y%m%d")
    first17 = f"440308{tomorrow}151"
    assert isinstance(
        check_cn_resident_id(first17 + cn_resident_id_check_char(first17)), InvalidPII
    )


def test_residence_permit_numbers_are_accepted() -> None:
    """Hong Kong, Macau and Taiwan residence permits (81/82/83 + 0000) are valid numbers."""
    assert _verdict("810000199408230021")
    assert _verdict("830000199201300022")


def test_birth_date_is_read_from_the_number() -> None:
    """The birth date sits in characters 7 to 14."""
    assert cn_resident_id_birth_date("11010519491231002X") == date(1949, 12, 31)


def test_legacy_numbers_upgrade_to_eighteen_characters() -> None:
    """A valid 15-digit number gains the century and a check character."""
    legacy = VECTORS["fifteen_digit_legacy"][0]["number"]
    upgraded = upgrade_legacy_cn_id(legacy)
    assert upgraded == "610104196209276900"[:17] + cn_resident_id_check_char("61010419620927690")
    assert len(upgraded) == 18


@pytest.mark.parametrize("value", ["610104620932690", "12345", 610104620927690])
def test_legacy_upgrade_refuses_bad_input(value: object) -> None:
    """Day 32, a short number or a non-string is refused with InvalidPII."""
    with pytest.raises(InvalidPII):
        upgrade_legacy_cn_id(value)
