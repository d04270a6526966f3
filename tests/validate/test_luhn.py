"""Bank cards: published test numbers, the Luhn check, normalisation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from piiguard import InvalidPII, is_valid, normalise
from piiguard.validate import check_bank_card, luhn_valid
from tests.helpers import load_vectors, luhn_reference
from tests.strategies import cards

CARDS = load_vectors("luhn_cards.json")["cards"]


@pytest.mark.parametrize("card", CARDS, ids=lambda card: card["number"])
def test_published_luhn_verdicts(card: dict[str, object]) -> None:
    """luhn_valid agrees with every published verdict, whatever the length."""
    assert luhn_valid(str(card["number"])) is card["luhn_valid"]


@pytest.mark.parametrize("card", CARDS, ids=lambda card: card["number"])
def test_bank_card_kind_needs_luhn_and_12_to_19_digits(card: dict[str, object]) -> None:
    """A card is valid exactly when it passes Luhn and has 12 to 19 digits."""
    number = str(card["number"])
    expected = bool(card["luhn_valid"]) and 12 <= len(number) <= 19
    assert is_valid(number, "bank_card") is expected


@given(st.text("0123456789", min_size=1, max_size=40))
def test_fast_luhn_equals_the_textbook_loop(digits: str) -> None:
    """The byte-sum implementation agrees with the loop for any digit string."""
    assert luhn_valid(digits) is luhn_reference(digits)


@given(cards, st.sampled_from([" ", "-"]))
def test_separators_are_removed(card: str, separator: str) -> None:
    """Groups of four with spaces or hyphens normalise to digits only."""
    grouped = separator.join(card[i : i + 4] for i in range(0, len(card), 4))
    assert normalise(grouped, "bank_card") == card


@given(cards, st.integers(0, 100), st.integers(1, 9))
def test_a_changed_digit_is_refused(card: str, position: int, delta: int) -> None:
    """Luhn detects every single-digit substitution."""
    index = position % len(card)
    changed = card[:index] + str((int(card[index]) + delta) % 10) + card[index + 1 :]
    assert not is_valid(changed, "bank_card")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("4242 4242 4242 424a", "format"),
        ("42424242424", "length"),
        ("4242424242424241", "checksum"),
        (4242424242424242, "type"),
    ],
)
def test_errors_carry_a_stable_code(value: object, code: str) -> None:
    """Format, length, checksum and type failures are told apart."""
    result = check_bank_card(value)
    assert isinstance(result, InvalidPII)
    assert result.code == code
