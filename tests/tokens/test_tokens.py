"""Deterministic keyed tokens and format-preserving tokens through guard.tokens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import piiguard as pg
from piiguard.crypto import wire
from piiguard.keys import LocalKEK
from tests.conftest import StoreTarget
from tests.helpers import (
    CANARY_ID,
    CANARY_PHONE,
    assert_no_canary,
    exception_text,
    luhn_complete,
    piiguard_frames_text,
)
from tests.strategies import mobiles, resident_ids

FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=80)


def test_tokens_are_deterministic_over_the_normalised_value(guard: pg.Guard) -> None:
    """Every way of writing one phone gives one token; another phone another."""
    token = guard.tokens.token(CANARY_PHONE, kind="phone")
    assert token == guard.tokens.token("+86 138-1234-5678", kind="phone")
    assert token != guard.tokens.token("13912345678", kind="phone")
    assert CANARY_PHONE not in token


def test_tokens_are_self_describing(guard: pg.Guard) -> None:
    """tok_ + base64 of version 1, a key id and a 20-byte HMAC."""
    token = guard.tokens.token(CANARY_PHONE, kind="phone")
    assert token.startswith("tok_")
    raw = wire.from_text(token[4:])
    assert raw is not None
    assert len(raw) == 25
    assert raw[0] == 1
    assert int.from_bytes(raw[1:5], "big") > 0


def test_each_kind_has_its_own_key(guard: pg.Guard) -> None:
    """The same string as two kinds gives two unrelated tokens."""
    assert guard.tokens.token("type 2", kind="health") != guard.tokens.token(
        "type 2", kind="personal_info"
    )


def test_tokens_are_stable_across_guards_on_one_store_only(
    store_target: StoreTarget, tmp_path: object
) -> None:
    """Two Guards on one store agree; a Guard on another store does not."""
    url, schema = store_target
    kek = LocalKEK.generate(tmp_path / "a.key")  # type: ignore[operator]
    with pg.Guard.open(url, kek=kek, schema=schema) as first:
        token = first.tokens.token(CANARY_PHONE, kind="phone")
    with pg.Guard.open(url, kek=kek, schema=schema) as second:
        assert second.tokens.token(CANARY_PHONE, kind="phone") == token
    with pg.Guard.open(f"sqlite:///{tmp_path}/other.db", kek=kek) as other:
        assert other.tokens.token(CANARY_PHONE, kind="phone") != token


def test_token_many_equals_single_tokens(guard: pg.Guard) -> None:
    """The batch form gives the same tokens in order, and refuses a batch with a bad value."""
    values = [CANARY_PHONE, "13912345678", "+86 137 1234 5678"]
    assert guard.tokens.token_many(values, kind="phone") == [
        guard.tokens.token(v, kind="phone") for v in values
    ]
    with pytest.raises(pg.InvalidPII) as caught:
        guard.tokens.token_many([CANARY_PHONE, CANARY_ID], kind="phone")
    assert_no_canary(piiguard_frames_text(caught.value))


def test_invalid_values_are_refused_without_echo(guard: pg.Guard) -> None:
    """Tokens of invalid values raise InvalidPII that holds no value."""
    calls: list[Callable[[], object]] = [
        lambda: guard.tokens.token(CANARY_ID[:-1] + "3", kind="cn_resident_id"),
        lambda: guard.tokens.fpe(CANARY_ID[:-1] + "3", kind="cn_resident_id"),
        lambda: guard.tokens.fpe(CANARY_PHONE, kind="address"),
    ]
    for call in calls:
        with pytest.raises(pg.InvalidPII) as caught:
            call()
        assert_no_canary(exception_text(caught.value))


@FIXTURE_OK
@given(mobiles, st.binary(max_size=12))
def test_mobile_tokens_stay_mobiles_with_their_carrier(
    guard: pg.Guard, mobile: str, tweak: bytes
) -> None:
    """11 digits, the carrier prefix kept, a valid CN mobile; reversible."""
    token = guard.tokens.fpe(mobile, kind="phone", tweak=tweak)
    assert token.startswith(mobile[:3])
    assert pg.is_valid(token, "phone")
    assert len(token) == 11
    assert token.isdigit()
    assert (
        guard.tokens.fpe_decrypt(
            token, kind="phone", tweak=tweak, actor="tester", purpose="testing"
        )
        == mobile
    )
    e164 = guard.tokens.fpe("+86" + mobile, kind="phone", tweak=tweak)
    assert e164 == "+86" + token


def test_phone_and_card_tokens_keep_the_layout(guard: pg.Guard) -> None:
    """DESIGN §3: same length and alphabet; separators stay where they were."""
    token = guard.tokens.fpe("138 1234 5678", kind="phone")
    assert (len(token), token[3], token[8]) == (13, " ", " ")
    assert (
        guard.tokens.fpe_decrypt(token, kind="phone", actor="tester", purpose="testing")
        == "138 1234 5678"
    )
    card = guard.tokens.fpe("6222 0212 3456 7890 128", kind="bank_card")
    assert [i for i, c in enumerate(card) if c == " "] == [4, 9, 14, 19]
    assert (
        guard.tokens.fpe_decrypt(card, kind="bank_card", actor="tester", purpose="testing")
        == "6222 0212 3456 7890 128"
    )


@FIXTURE_OK
@given(st.integers(16, 19).flatmap(lambda n: st.text("0123456789", min_size=n - 3, max_size=n - 3)))
def test_card_tokens_keep_bin_and_last_four_and_pass_luhn(guard: pg.Guard, body: str) -> None:
    """First 6 and last 4 kept, the middle encrypted, the token Luhn-valid, reversible."""
    card = luhn_complete("62" + body)
    token = guard.tokens.fpe(card, kind="bank_card")
    assert (token[:6], token[-4:], len(token)) == (card[:6], card[-4:], len(card))
    assert pg.is_valid(token, "bank_card")
    assert (
        guard.tokens.fpe_decrypt(token, kind="bank_card", actor="tester", purpose="testing") == card
    )


@FIXTURE_OK
@given(resident_ids(earliest=date(1900, 1, 1)).filter(lambda number: number[6:10] < "2020"))
def test_id_tokens_stay_valid_ids_of_the_same_region(guard: pg.Guard, number: str) -> None:
    """Same region and length; a real birth date in 1900-2019; a right check character."""
    token = guard.tokens.fpe(number, kind="cn_resident_id")
    assert token[:6] == number[:6]
    assert pg.is_valid(token, "cn_resident_id")
    assert "19000101" <= token[6:14] <= "20191231"
    assert (
        guard.tokens.fpe_decrypt(token, kind="cn_resident_id", actor="tester", purpose="testing")
        == number
    )


def test_email_tokens_keep_domain_and_punctuation(guard: pg.Guard) -> None:
    """Letters and digits of the local part are encrypted; dots, plus signs and the domain stay."""
    token = guard.tokens.fpe("Zhang.San+shop@example.com", kind="email")
    assert token.endswith("@example.com")
    assert (token[5], token[9]) == (".", "+")
    assert pg.is_valid(token, "email")
    assert (
        guard.tokens.fpe_decrypt(token, kind="email", actor="tester", purpose="testing")
        == "zhang.san+shop@example.com"
    )


def test_tweaks_bind_tokens_to_a_tenant(guard: pg.Guard) -> None:
    """The same value under two tweaks: two tokens, each reversible only with its tweak."""
    first = guard.tokens.fpe(CANARY_PHONE, kind="phone", tweak=b"tenant-1")
    second = guard.tokens.fpe(CANARY_PHONE, kind="phone", tweak=b"tenant-2")
    assert first != second
    assert (
        guard.tokens.fpe_decrypt(
            first, kind="phone", tweak=b"tenant-1", actor="tester", purpose="testing"
        )
        == CANARY_PHONE
    )
    assert (
        guard.tokens.fpe_decrypt(
            first, kind="phone", tweak=b"tenant-2", actor="tester", purpose="testing"
        )
        != CANARY_PHONE
    )


@pytest.mark.parametrize(
    ("value", "kind", "code"),
    [
        ("378282246310005", "bank_card", "fpe_domain"),  # 15 digits: a 5-digit middle
        ("440308202006150021", "cn_resident_id", "fpe_domain"),  # born 2020
        ("+1 415 555 2671", "phone", "fpe_unsupported"),  # not a CN mobile
        ("ab@example.com", "email", "fpe_domain"),  # too few characters to encrypt
        ("北京市朝阳区建国路88号", "address", "fpe_unsupported"),
    ],
)
def test_small_or_unsupported_domains_are_refused(
    guard: pg.Guard, value: str, kind: str, code: str
) -> None:
    """Below FF1's 10^6 domain the value is refused, never tokenized weakly."""
    if kind == "cn_resident_id":
        from piiguard.validate import cn_resident_id_check_char

        value = value[:17] + cn_resident_id_check_char(value[:17])
    with pytest.raises(pg.InvalidPII) as caught:
        guard.tokens.fpe(value, kind=kind)
    assert caught.value.code == code


def test_tweak_must_be_bytes(guard: pg.Guard) -> None:
    """A str tweak is a TypeError."""
    with pytest.raises(TypeError):
        guard.tokens.fpe(CANARY_PHONE, kind="phone", tweak="tenant")  # type: ignore[arg-type]


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(numbers=st.lists(mobiles, max_size=6))
def test_fpe_many_equals_single_tokens(guard: pg.Guard, numbers: list[str]) -> None:
    """The batch form gives what the single form gives, and reverses to the values."""
    tokens = guard.tokens.fpe_many(numbers, kind="phone", tweak=b"shop")
    assert tokens == [guard.tokens.fpe(n, kind="phone", tweak=b"shop") for n in numbers]
    assert (
        guard.tokens.fpe_decrypt_many(
            tokens, kind="phone", tweak=b"shop", actor="tester", purpose="testing"
        )
        == [pg.normalise(n, "phone").removeprefix("+86") for n in numbers]
        or guard.tokens.fpe_decrypt_many(
            tokens, kind="phone", tweak=b"shop", actor="tester", purpose="testing"
        )
        == numbers
    )


def test_fpe_many_is_all_or_nothing(guard: pg.Guard) -> None:
    with pytest.raises(pg.InvalidPII) as caught:
        guard.tokens.fpe_many([CANARY_PHONE, CANARY_PHONE + "9"], kind="phone")
    assert_no_canary(piiguard_frames_text(caught.value))
    with pytest.raises(pg.InvalidArgument):
        guard.tokens.fpe_many(CANARY_PHONE, kind="phone")  # a str is not a batch


def test_blind_index_many_equals_single_indexes(guard: pg.Guard) -> None:
    values = [CANARY_PHONE, "13912345678", CANARY_PHONE]
    for bits in (None, 16, 64):
        assert guard.blind_index_many(values, field="f", bits=bits) == [
            guard.blind_index(v, field="f", bits=bits) for v in values
        ]
    assert guard.blind_index_many(values, field="f", subject="u1") == [
        guard.blind_index(v, field="f", subject="u1") for v in values
    ]
    assert guard.blind_index_many([], field="f") == []
    with pytest.raises(pg.InvalidArgument):
        guard.blind_index_many(values, field="f", bits=7)
