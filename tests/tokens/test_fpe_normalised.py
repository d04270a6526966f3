"""Format-preserving tokens are computed from the normalised value (issue 9).

A value written with non-ASCII digits, with an extension, or in any layout whose digits are
not exactly the normalised digits gets its token in the kind's canonical form; no input comes
back unchanged and no non-ASCII digit reaches a token. Errors carry no key bytes and no value.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import piiguard as pg
from piiguard.kinds import get_kind
from tests.helpers import CANARY_ID, CANARY_PHONE, assert_no_canary, exception_text, luhn_complete
from tests.strategies import mobiles, resident_ids

FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=80)

ASCII_DIGITS = "0123456789"
#: Decimal digits of other scripts: full-width (mapped by the validators), Arabic-Indic
#: (U+0660-0669) and Extended Arabic-Indic, as written in Persian (U+06F0-06F9).
SCRIPTS = {
    "ascii": ASCII_DIGITS,
    "fullwidth": "".join(chr(0xFF10 + digit) for digit in range(10)),
    "arabic_indic": "".join(chr(0x0660 + digit) for digit in range(10)),
    "persian": "".join(chr(0x06F0 + digit) for digit in range(10)),
}
_TO_FULLWIDTH = {code: code + 0xFEE0 for code in range(0x21, 0x7F)} | {0x20: 0x3000}
_FROM_FULLWIDTH_DIGITS = {0xFF10 + digit: 0x30 + digit for digit in range(10)}


def non_ascii_digits(text: str) -> list[str]:
    """The digits of ``text`` that are not ASCII 0-9."""
    return [char for char in text if char.isdigit() and not char.isascii()]


@st.composite
def written(draw: st.DrawFn, text: str) -> str:
    """``text`` with its digits in one script, or each digit in a script of its own."""
    script = draw(st.sampled_from([*SCRIPTS, "mixed"]))
    out = []
    for char in text:
        if char in ASCII_DIGITS:
            chosen = draw(st.sampled_from(list(SCRIPTS))) if script == "mixed" else script
            out.append(SCRIPTS[chosen][int(char)])
        else:
            out.append(char)
    return "".join(out)


def _grouped(digits: str, sizes: tuple[int, ...], separator: str) -> str:
    groups, start = [], 0
    for size in sizes:
        groups.append(digits[start : start + size])
        start += size
    return separator.join(group for group in [*groups, digits[start:]] if group)


@st.composite
def phone_layouts(draw: st.DrawFn) -> str:
    """A synthetic CN mobile: plain, spaced, dashed, with +86/0086/86, with an extension."""
    number = draw(mobiles)
    separator = draw(st.sampled_from(["", " ", "-"]))
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "0086 ", "86 ", "(+86) ", "+86 (0) "]))
    suffix = draw(st.sampled_from(["", "", " ext. 1234"]))
    return prefix + draw(written(_grouped(number, (3, 4), separator))) + suffix


cards_16_to_19 = st.sampled_from(("62", "4", "51", "35")).flatmap(
    lambda issuer: st.text(ASCII_DIGITS, min_size=15 - len(issuer), max_size=18 - len(issuer)).map(
        lambda body: luhn_complete(issuer + body)
    )
)


@st.composite
def card_layouts(draw: st.DrawFn) -> str:
    """A synthetic card of 16-19 digits, plain, in groups of four, or with a suffix."""
    number = draw(cards_16_to_19)
    separator = draw(st.sampled_from(["", " ", "-"]))
    suffix = draw(st.sampled_from(["", "", " ext. 1234"]))
    return draw(written(_grouped(number, (4, 4, 4, 4), separator))) + suffix


@st.composite
def id_layouts(draw: st.DrawFn) -> str:
    """A synthetic resident ID born 1900-2019, possibly spaced, padded or with a lower-case x."""
    number = draw(resident_ids(earliest=date(1900, 1, 1)).filter(lambda n: n[6:10] < "2020"))
    if draw(st.booleans()):
        number = number.lower()
    separator = draw(st.sampled_from(["", "", " "]))
    padding = draw(st.sampled_from(["", " "]))
    return padding + draw(written(_grouped(number, (6, 8), separator))) + padding


@st.composite
def email_layouts(draw: st.DrawFn) -> str:
    """A synthetic address with 4+ letters and digits in its local part, in several cases."""
    core = draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=4, max_size=12))
    local = core[:2] + draw(st.sampled_from(["", ".", "+", "_"])) + core[2:]
    address = local + "@" + draw(st.sampled_from(["example.com", "Mail.Example.CN"]))
    address = draw(st.sampled_from([address, address.upper(), address.title()]))
    address = draw(written(address))
    if draw(st.booleans()):
        address = address.translate(_TO_FULLWIDTH)
    return address


def expected_plain(kind: str, value: str) -> str:
    """What decryption normalises to: the normalised value; for e-mail with its local part
    lower-cased, because FF1 runs over [0-9a-z] there (see docs/tokenization.md)."""
    normalised = get_kind(kind).normalise(value)
    if kind != "email":
        return normalised
    local, _, domain = normalised.rpartition("@")
    return local.lower() + "@" + domain


@FIXTURE_OK
@given(
    st.one_of(
        phone_layouts().map(lambda value: ("phone", value)),
        card_layouts().map(lambda value: ("bank_card", value)),
        id_layouts().map(lambda value: ("cn_resident_id", value)),
        email_layouts().map(lambda value: ("email", value)),
    ),
    st.binary(max_size=8),
)
def test_fpe_tokens_come_from_the_normalised_value(
    guard: pg.Guard, case: tuple[str, str], tweak: bytes
) -> None:
    """Every accepted layout: a new valid value, ASCII digits only, decrypting to the
    normalised original; a layout with foreign digits gives the canonical form."""
    kind, value = case
    if not pg.is_valid(value, kind):
        return  # only values the kind's validator accepts are tokenized
    token = guard.tokens.fpe(value, kind=kind, tweak=tweak)
    assert token != value
    assert non_ascii_digits(token) == []
    assert pg.is_valid(token, kind)
    plain = guard.tokens.fpe_decrypt(
        token, kind=kind, tweak=tweak, actor="tester", purpose="testing"
    )
    assert non_ascii_digits(plain) == []
    assert get_kind(kind).normalise(plain) == expected_plain(kind, value)
    canonical = token == get_kind(kind).normalise(token)
    if non_ascii_digits(value.translate(_FROM_FULLWIDTH_DIGITS)):
        assert canonical, "a layout with foreign digits must give the canonical form"
    if canonical:
        assert plain == expected_plain(kind, value)


@pytest.mark.parametrize(
    "value",
    [
        "\u0661\u0663\u0668\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic
        "\u06f1\u06f3\u06f8\u06f1\u06f2\u06f3\u06f4\u06f5\u06f6\u06f7\u06f8",  # Persian
        "138\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # mixed
        "138 1234 5678 ext. 1234",  # an extension the E.164 form drops
        "+86 (0) 138 1234 5678",  # a trunk 0 the E.164 form drops
    ],
)
def test_phones_outside_the_layout_rule_get_canonical_tokens(guard: pg.Guard, value: str) -> None:
    """The issue's inputs: the token is the E.164 form of an encrypted mobile, never the input."""
    assert pg.normalise(value, "phone") == "+86" + CANARY_PHONE
    token = guard.tokens.fpe(value, kind="phone")
    assert token.startswith("+86138")
    assert len(token) == 14
    assert token[1:].isascii()
    assert token[1:].isdigit()
    assert (
        guard.tokens.fpe_decrypt(token, kind="phone", actor="tester", purpose="testing")
        == "+86" + CANARY_PHONE
    )


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ("\uff11\uff13\uff18 \uff11\uff12\uff13\uff14 \uff15\uff16\uff17\uff18", "138 1234 5678"),
        ("\uff0b\uff18\uff16\u3000138-1234-5678", "+86 138-1234-5678"),
        ("+86 138-1234-5678", "+86 138-1234-5678"),
        ("0086 138 1234 5678", "0086 138 1234 5678"),
        ("86 13812345678", "86 13812345678"),
        (" 13812345678 ", "13812345678"),
    ],
)
def test_phone_layouts_with_the_normalised_digits_are_kept(
    guard: pg.Guard, value: str, plain: str
) -> None:
    """Full-width forms come back half-width, separators and the +86/0086/86 prefix stay."""
    token = guard.tokens.fpe(value, kind="phone")
    assert [i for i, c in enumerate(token) if not c.isdigit()] == [
        i for i, c in enumerate(plain) if not c.isdigit()
    ]
    assert token.isascii()
    assert token != plain
    assert guard.tokens.fpe_decrypt(token, kind="phone", actor="tester", purpose="testing") == plain


def test_full_width_cards_keep_their_groups(guard: pg.Guard) -> None:
    """A full-width card in groups of four: an ASCII token in the same groups."""
    value = "6222 0212 3456 7890 128".translate(_TO_FULLWIDTH)
    token = guard.tokens.fpe(value, kind="bank_card")
    assert token.isascii()
    assert [i for i, c in enumerate(token) if c == " "] == [4, 9, 14, 19]
    assert (
        guard.tokens.fpe_decrypt(token, kind="bank_card", actor="tester", purpose="testing")
        == "6222 0212 3456 7890 128"
    )


# -- no key bytes and no value in what an error tracker records -------------------------------


def _key_forms(key: bytes) -> list[str]:
    """Every way key bytes could be rendered: repr, hex (both cases), base64 (both alphabets)."""
    return [
        repr(bytes(key)),
        repr(bytes(key))[2:-1],
        key.hex(),
        key.hex().upper(),
        base64.b64encode(key).decode().rstrip("="),
        base64.urlsafe_b64encode(key).decode().rstrip("="),
    ]


def assert_no_key(guard: pg.Guard, text: str) -> None:
    """Fail if any token or FPE key of the phone and card kinds appears in ``text``."""
    for purpose, kind in (("token", "phone"), ("fpe", "phone"), ("fpe", "bank_card")):
        _, key = guard._keyring.derived_key(purpose, f"{purpose}/{kind}".encode(), 32)
        for form in _key_forms(key):
            assert form not in text, f"the {purpose} key of {kind} leaked"


#: A synthetic card, named so that source lines in a traceback show the name, not the number.
CARD = "6222021234567890128"
FAILING_CALLS: list[tuple[str, Callable[[pg.Guard], object]]] = [
    (
        "token_many",
        lambda guard: guard.tokens.token_many(
            [CANARY_PHONE, "+86 139 1234 5678", "not-a-phone"], kind="phone"
        ),
    ),
    ("token", lambda guard: guard.tokens.token(CANARY_ID, kind="phone")),
    ("fpe", lambda guard: guard.tokens.fpe(CANARY_ID, kind="phone")),
    (
        "fpe_decrypt",
        lambda guard: guard.tokens.fpe_decrypt(
            CANARY_ID, kind="phone", actor="tester", purpose="testing"
        ),
    ),
    ("fpe_tweak", lambda guard: guard.tokens.fpe(CANARY_PHONE, kind="phone", tweak=bytes(300))),
    (
        "fpe_card_tweak",
        lambda guard: guard.tokens.fpe(CARD, kind="bank_card", tweak=bytes(300)),
    ),
    (
        "fpe_decrypt_tweak",
        lambda guard: guard.tokens.fpe_decrypt(
            CANARY_PHONE, kind="phone", tweak=bytes(300), actor="tester", purpose="testing"
        ),
    ),
]


@pytest.mark.parametrize(
    "call", [call for _, call in FAILING_CALLS], ids=[n for n, _ in FAILING_CALLS]
)
def test_token_errors_hold_no_key_and_no_value(
    guard: pg.Guard, call: Callable[[pg.Guard], object]
) -> None:
    """Issue 9: the error, its chain and every frame's locals hold no key bytes (raw, hex or
    base64) and no canary value, as an error tracker recording locals would see them."""
    with pytest.raises((pg.InvalidPII, ValueError)) as caught:
        call(guard)
    text = exception_text(caught.value)
    assert_no_canary(text)
    for fragment in ("62220212", "7890128", "12345678"):
        assert fragment not in text, "a value leaked"
    assert_no_key(guard, text)
