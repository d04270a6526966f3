"""Hypothesis strategies for synthetic PII: valid by construction, never real data."""

from __future__ import annotations

from datetime import date

from hypothesis import strategies as st

from tests.helpers import id_check_char_reference, luhn_complete

# Prefixes of China's numbering plan (phonenumbers' CN mobile metadata) used in the tests.
MOBILE_PREFIXES = ("130", "133", "135", "138", "139", "147", "150", "158", "166", "177", "186")
PROVINCE_CITIES = ("4403", "4401", "3301", "3205", "5101", "1101", "3101", "6101")

mobiles = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(MOBILE_PREFIXES),
    st.text("0123456789", min_size=8, max_size=8),
)


@st.composite
def resident_ids(draw: st.DrawFn, earliest: date = date(1900, 1, 1)) -> str:
    """A valid 18-character ID: a real region prefix, a past birth date, a right check char."""
    region = draw(st.sampled_from(PROVINCE_CITIES)) + draw(
        st.text("0123456789", min_size=2, max_size=2)
    )
    born = draw(st.dates(min_value=earliest, max_value=date(2020, 12, 31)))
    sequence = draw(st.text("0123456789", min_size=3, max_size=3))
    first17 = region + born.strftime("%Y%m%d") + sequence
    return first17 + id_check_char_reference(first17)


#: (issuer prefix, length) pairs the card schemes issue (piiguard.validate.cards)
_ISSUED = (
    *[("62", size) for size in range(16, 20)],
    ("4", 16),
    ("51", 16),
    ("55", 16),
    ("2221", 16),
    ("2720", 16),
    ("37", 15),
    ("3528", 16),
    ("6011", 16),
    ("9558", 19),
)
cards = st.sampled_from(_ISSUED).flatmap(
    lambda issued: st.text(
        "0123456789",
        min_size=issued[1] - len(issued[0]) - 1,
        max_size=issued[1] - len(issued[0]) - 1,
    ).map(lambda body: luhn_complete(issued[0] + body))
)
