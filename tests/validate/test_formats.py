"""E-mail, IP, passport, licence plate, name, address and birth date checks."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from piiguard import InvalidPII, get_kind, is_valid, normalise
from piiguard.validate import check_date_of_birth
from piiguard.validate.email import EMAIL_PATTERN


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("zhangsan@example.com", "zhangsan@example.com"),
        (" Zhang.San+shop@Example.COM ", "Zhang.San+shop@example.com"),
        ("li_si@mail.example.com.cn", "li_si@mail.example.com.cn"),
        ("user@xn--fiqs8s.xn--fiqz9s", "user@xn--fiqs8s.xn--fiqz9s"),
    ],
)
def test_valid_emails_normalise_the_domain_only(written: str, expected: str) -> None:
    """The domain is lower-cased; the local part is kept as typed (RFC 5321)."""
    assert normalise(written, "email") == expected


@pytest.mark.parametrize(
    "value",
    [
        "plainaddress",
        "@example.com",
        "a@b",
        "a..b@example.com",
        ".a@example.com",
        "a@-x.com",
        "a b@example.com",
        "a@example.c",
        f"{'a' * 65}@example.com",
        f"a@{'b' * 250}.com",
        "张三@例子.中国",
    ],
)
def test_invalid_emails_are_refused(value: str) -> None:
    """Missing parts, bad dots, spaces, over-long parts and raw Unicode are refused."""
    assert not is_valid(value, "email")


@pytest.mark.parametrize(
    ("kind", "written", "expected"),
    [
        ("ipv4", " 192.168.1.20 ", "192.168.1.20"),
        ("ipv6", "2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("cn_passport", "e12345678", "E12345678"),
        ("cn_passport", "EA1234567", "EA1234567"),
        ("cn_passport", "G12345678", "G12345678"),
        ("cn_passport", "DE1234567", "DE1234567"),
        ("cn_license_plate", "京A·12345", "京A12345"),
        ("cn_license_plate", "粤B D12345", "粤BD12345"),
        ("cn_license_plate", "沪A12345D", "沪A12345D"),
        ("cn_license_plate", "苏A1234学", "苏A1234学"),
        ("person_name", "  John   Smith ", "John Smith"),
        ("person_name", "阿依古丽·买买提", "阿依古丽·买买提"),
        ("person_name", "O'Neil-Brown", "O'Neil-Brown"),
        ("address", "北京市朝阳区建国路８８号", "北京市朝阳区建国路88号"),
        ("address", " 1 Main St,\n Springfield ", "1 Main St, Springfield"),
        ("date_of_birth", "1990/05/17", "1990-05-17"),
        ("date_of_birth", "19900517", "1990-05-17"),
    ],
)
def test_formats_normalise(kind: str, written: str, expected: str) -> None:
    """Each kind's normal form: trimmed, separators dropped or collapsed, case fixed."""
    assert normalise(written, kind) == expected


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("ipv4", "192.168.1.256"),
        ("ipv4", "192.168.01.2"),
        ("ipv6", "2001:db8::g"),
        ("cn_passport", "E1234567"),
        ("cn_passport", "EI1234567"),
        ("cn_license_plate", "京I12345"),
        ("cn_license_plate", "XA12345"),
        ("person_name", ""),
        ("person_name", "R2D2"),
        ("person_name", "x" * 101),
        ("address", "北"),
        ("address", "北京市\x00朝阳区"),
        ("date_of_birth", "1990-02-30"),
        ("date_of_birth", "17-05-1990"),
        ("date_of_birth", "1849-12-31"),
        ("ipv4", 3232235796),
        ("cn_passport", None),
        ("cn_license_plate", b"A12345"),
        ("person_name", 42),
        ("address", 42),
    ],
)
def test_invalid_formats_are_refused(kind: str, value: object) -> None:
    """Each kind refuses what is certainly not a value of it, with InvalidPII."""
    with pytest.raises(InvalidPII) as caught:
        normalise(value, kind)
    assert caught.value.kind == kind


def test_date_of_birth_accepts_dates_and_refuses_the_future() -> None:
    """A datetime.date is accepted; a date after the injected today is refused."""
    assert check_date_of_birth(date(1990, 5, 17)) == "1990-05-17"
    result = check_date_of_birth("2026-11-29", today=date(2026, 11, 28))
    assert isinstance(result, InvalidPII)
    assert result.code == "range"


@pytest.mark.parametrize("kind", ["personal_info", "health", "biometric", "religion", "location"])
def test_category_kinds_accept_any_text_and_refuse_other_types(kind: str) -> None:
    """Kinds without a format accept any text as it is, and only text."""
    assert normalise("  any text  ", kind) == "  any text  "
    with pytest.raises(InvalidPII):
        normalise(42, kind)


@given(st.text(max_size=60))
def test_every_check_returns_text_or_invalid_pii(text: str) -> None:
    """No check raises on any text: each returns the normal form or an InvalidPII."""
    for kind in (
        "email",
        "ipv4",
        "ipv6",
        "cn_passport",
        "cn_license_plate",
        "person_name",
        "address",
        "date_of_birth",
        "cn_resident_id",
        "bank_card",
    ):
        result = get_kind(kind).check(text)
        assert isinstance(result, str | InvalidPII)


# The dot-atom grammar written the plain way (nested optional groups), to check the
# backtracking-free pattern piiguard uses against.
_REFERENCE_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_REFERENCE_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
REFERENCE_EMAIL = re.compile(
    rf"{_REFERENCE_ATEXT}+(?:\.{_REFERENCE_ATEXT}+)*@(?:{_REFERENCE_LABEL}\.)+"
    r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})"
)


@given(st.text(alphabet="ab1-.@_xn", max_size=30) | st.from_regex(REFERENCE_EMAIL, fullmatch=True))
def test_email_pattern_equals_the_plain_grammar(text: str) -> None:
    """The possessive pattern accepts exactly what the plain grammar accepts."""
    assert (re.fullmatch(EMAIL_PATTERN, text) is not None) is (
        REFERENCE_EMAIL.fullmatch(text) is not None
    )
