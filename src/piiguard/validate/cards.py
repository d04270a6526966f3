"""Card issuer ranges: which leading digits and lengths the card schemes issue.

Luhn alone passes one random number in ten: order numbers, compact timestamps and barcodes
pass it too. Detection in free text asks, on top of Luhn, whether a number lies in a range a
scheme publishes, with a length that scheme issues. (``pg.BankCard`` keeps accepting every
Luhn-valid 12-19 digit number: a value a customer typed into a card field is judged there.)

Sources (read 2026-12): the schemes' published IIN tables as summarised by ISO/IEC 7812 and
the schemes' developer documentation (Visa, Mastercard incl. the 2-series 2221-2720, American
Express, Discover Global Network, JCB, Diners Club, UnionPay incl. its 81 series, Mir,
RuPay), and the Chinese banks' own 19-digit debit ranges that predate UnionPay's 62 (ICBC
9558, ABC 95599 and 103, China Merchants Bank 9555, Bank of China 6013).
"""

from __future__ import annotations

__all__ = ["ISSUER_RANGES", "card_scheme"]

#: (first prefix, last prefix, lengths, scheme): prefixes compare as the leading digits of
#: the same count.
ISSUER_RANGES: tuple[tuple[str, str, frozenset[int], str], ...] = (
    ("4", "4", frozenset({16, 19}), "visa"),
    ("51", "55", frozenset({16}), "mastercard"),
    ("2221", "2720", frozenset({16}), "mastercard"),
    ("34", "34", frozenset({15}), "amex"),
    ("37", "37", frozenset({15}), "amex"),
    ("6011", "6011", frozenset(range(16, 20)), "discover"),
    ("644", "649", frozenset(range(16, 20)), "discover"),
    ("65", "65", frozenset(range(16, 20)), "discover"),
    ("300", "305", frozenset(range(14, 20)), "diners"),
    ("3095", "3095", frozenset(range(14, 20)), "diners"),
    ("36", "36", frozenset(range(14, 20)), "diners"),
    ("38", "39", frozenset(range(16, 20)), "diners"),
    ("3528", "3589", frozenset(range(16, 20)), "jcb"),
    ("62", "62", frozenset(range(14, 20)), "unionpay"),
    ("81", "81", frozenset(range(16, 20)), "unionpay"),
    ("2200", "2204", frozenset(range(16, 20)), "mir"),
    ("60", "60", frozenset({16}), "rupay"),
    ("6013", "6013", frozenset({16, 19}), "cn_bank"),
    ("9558", "9558", frozenset({19}), "cn_bank"),
    ("95599", "95599", frozenset({19}), "cn_bank"),
    ("103", "103", frozenset({19}), "cn_bank"),
    ("9555", "9555", frozenset({16}), "cn_bank"),
    ("5018", "5018", frozenset(range(12, 20)), "maestro"),
    ("5020", "5020", frozenset(range(12, 20)), "maestro"),
    ("5038", "5038", frozenset(range(12, 20)), "maestro"),
    ("5893", "5893", frozenset(range(12, 20)), "maestro"),
    ("6304", "6304", frozenset(range(12, 20)), "maestro"),
    ("6759", "6759", frozenset(range(12, 20)), "maestro"),
    ("6761", "6763", frozenset(range(12, 20)), "maestro"),
)


def card_scheme(digits: str) -> str | None:
    """The scheme whose published range and lengths hold ``digits`` (ASCII digits), or None.

    The Luhn check is separate (:func:`~piiguard.validate.luhn_valid`).
    """
    size = len(digits)
    for first, last, lengths, scheme in ISSUER_RANGES:
        if size in lengths and first <= digits[: len(first)] <= last:
            return scheme
    return None
