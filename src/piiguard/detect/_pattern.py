"""The one regular expression that finds every PII candidate in a single pass.

No ``\\b``: Chinese characters are word characters to ``re``, so ``\\b`` would miss
``手机13812345678``. Boundaries are lookarounds on the characters that would extend a
number (digits) or an address (its own alphabet) instead.

Digit runs are one alternative, classified afterwards (ID, card, mobile), so an 18-digit
run is judged whole, never split into a card and a remainder.
"""

from __future__ import annotations

import re

from piiguard.validate.documents import CN_PASSPORT_PATTERN
from piiguard.validate.email import EMAIL_PATTERN

__all__ = ["CANDIDATES"]

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_HEX = r"[0-9A-Fa-f]{1,4}"

# The leading lookahead lets the engine skip, with one set test, every position (Chinese
# text, spaces, punctuation) where no alternative can start: it halves the time of a scan.
CANDIDATES = re.compile(
    "(?=[0-9A-Za-z+:])(?:"
    + "|".join(
        (
            # e-mail first: at the same start it beats the digits of 13812345678@qq.com
            rf"(?P<email>(?<![A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]){EMAIL_PATTERN}(?![A-Za-z0-9-]))",
            # +CC numbers, separators allowed: +86 138-1234-5678, +1 415 555 2671
            r"(?P<intl>(?<![0-9A-Za-z+])\+[1-9](?:[ -]?[0-9]){6,14}(?![0-9]))",
            # mobiles written in groups: 138 1234 5678, 138-1234-5678
            r"(?P<grouped_mobile>(?<![0-9])1[3-9][0-9][ -][0-9]{4}[ -][0-9]{4}(?![0-9]))",
            # cards written in groups of four: 6222 0212 3456 7890 128
            r"(?P<grouped_card>(?<![0-9])[0-9]{4}(?:[ -][0-9]{4}){2,3}"
            r"(?:[ -][0-9]{1,4})?(?![0-9]))",
            # an unbroken run of 11 to 19 digits, with an ID's trailing X
            r"(?P<digits>(?<![0-9])[0-9]{11,19}[Xx]?(?![0-9]))",
            rf"(?P<ipv4>(?<![0-9.])(?:{_OCTET}\.){{3}}{_OCTET}(?![0-9]|\.[0-9]))",
            rf"(?P<ipv6>(?<![0-9A-Za-z:])(?:{_HEX})?(?::(?:{_HEX})?){{2,7}}(?![0-9A-Za-z:]))",
            rf"(?P<cn_passport>(?<![A-Za-z0-9]){CN_PASSPORT_PATTERN}(?![A-Za-z0-9]))",
        )
    )
    + ")"
)
