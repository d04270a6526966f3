"""Phone numbers: the CN mobile fast path agrees with phonenumbers; E.164 output."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from piiguard import InvalidPII, is_valid, normalise
from piiguard.validate import check_phone, is_cn_mobile
from tests.strategies import mobiles


def _phonenumbers_says_mobile(digits: str) -> bool:
    try:
        parsed = phonenumbers.parse(digits, "CN")
    except phonenumbers.NumberParseException:  # e.g. "11000002200": read as too short
        return False
    return phonenumbers.is_valid_number(parsed) and phonenumbers.number_type(parsed) in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


@example("11000002200")  # phonenumbers refuses these outright (found by hypothesis in CI)
@example("11000002100")
@given(st.text("0123456789", min_size=11, max_size=11).map(lambda rest: "1" + rest[1:]))
def test_fast_path_agrees_with_phonenumbers(digits: str) -> None:
    """For any 11 digits starting with 1, the fast path says mobile iff phonenumbers does."""
    assert is_cn_mobile(digits) is _phonenumbers_says_mobile(digits)


@pytest.mark.parametrize("prefix", ["1610", "17400", "17405", "17406", "1440", "1940"])
def test_prefixes_that_depend_on_later_digits(prefix: str) -> None:
    """1610 and 17400-17405 are mobile ranges; 17406, 144 and 194 are not."""
    digits = (prefix + "0000000")[:11]
    assert is_cn_mobile(digits) is _phonenumbers_says_mobile(digits)


@given(mobiles)
def test_mobiles_normalise_to_e164_however_written(mobile: str) -> None:
    """Bare, grouped, +86 and 0086 forms of a mobile all give +86 and the 11 digits."""
    expected = "+86" + mobile
    grouped = f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}"
    for written in (
        mobile,
        grouped,
        f"+86 {mobile}",
        f"+86-{grouped}",
        f"0086{mobile}",
        f" {mobile} ",
    ):
        assert normalise(written, "phone") == expected


def test_full_width_digits_are_accepted() -> None:
    """Full-width digits from a Chinese input method are normalised."""
    assert normalise("１３８１２３４５６７８", "phone") == "+8613812345678"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("+1 415 555 2671", "+14155552671"),
        ("+44 20 7946 0958", "+442079460958"),
        ("010-6552 9988", "+861065529988"),  # a Beijing landline, default region CN
    ],
)
def test_other_numbers_go_through_phonenumbers(written: str, expected: str) -> None:
    """Landlines and foreign numbers are parsed and validated by phonenumbers."""
    assert normalise(written, "phone") == expected


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("12345", "number"),
        ("phone me", "format"),
        ("+1 415 555 267", "number"),
        (13812345678, "type"),
        ("19412345678", "number"),
    ],
)
def test_errors_carry_a_stable_code(value: object, code: str) -> None:
    """A non-number, an impossible number and a non-string are told apart."""
    result = check_phone(value)
    assert isinstance(result, InvalidPII)
    assert result.code == code


def test_region_changes_numbers_without_country_code() -> None:
    """With region US a ten-digit national number is a US number, and a CN mobile is not."""
    assert check_phone("415 555 2671", region="US") == "+14155552671"
    assert isinstance(check_phone("13812345678", region="US"), InvalidPII)


@given(st.text(max_size=30))
def test_any_text_gives_a_number_or_invalid_pii(text: str) -> None:
    """Whatever the input, the check returns E.164 text or an InvalidPII, never raises."""
    result = check_phone(text)
    assert isinstance(result, InvalidPII) or (result.startswith("+") and result[1:].isdigit())
    assert is_valid(text, "phone") is isinstance(result, str)
