"""The one regular expression that finds every PII candidate in a single pass.

No ``\\b``: Chinese characters are word characters to ``re``, so ``\\b`` would miss
``手机13812345678``. Boundaries are lookarounds on the characters that would extend a
number (digits) or an address (its own alphabet) instead.

Numbers are one alternative, judged afterwards (ID, card, mobile, landline, +CC), so an
18-digit run is judged whole, never split into a card and a remainder. The pattern runs on
the normalised view of the text (``_view``): full-width and other scripts' digits are ASCII
there, and zero-width characters gone.
"""

from __future__ import annotations

import re

from piiguard.validate.documents import CN_PASSPORT_PATTERN, CN_PLATE_FIRST_CHARS
from piiguard.validate.email import EMAIL_PATTERN

__all__ = ["CANDIDATES", "IPV4"]

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_HEX = r"[0-9A-Fa-f]{1,4}"
_IPV4 = rf"(?<![0-9A-Za-z.])(?:{_OCTET}\.){{3}}{_OCTET}(?![0-9]|\.[0-9])"
#: An IPv4 address alone: looked for again inside digits that made no number.
IPV4 = re.compile(_IPV4)
_PLATE_FIRST = "".join(sorted(CN_PLATE_FIRST_CHARS))
_PLATE_CHAR = "[A-HJ-NP-Za-hj-np-z0-9]"

# The leading lookahead lets the engine skip, with one set test, every position (Chinese
# text, spaces, punctuation) where no alternative can start: it halves the time of a scan.
CANDIDATES = re.compile(
    f"(?=[0-9A-Za-z+:({_PLATE_FIRST}])(?:"
    + "|".join(
        (
            # e-mail first: at the same start it beats the digits of 13812345678@qq.com
            rf"(?P<email>(?<![A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]){EMAIL_PATTERN}(?![A-Za-z0-9-]))",
            # IPv6 with an IPv4 inside (::ffff:10.12.34.56, what dual-stack servers log): one
            rf"(?P<ipv6_mapped>(?<![0-9A-Za-z:])(?:{_HEX})?(?::(?:{_HEX})?){{1,6}}:"
            rf"(?:{_OCTET}\.){{3}}{_OCTET}(?![0-9]|\.[0-9]))",
            rf"(?P<ipv4>{_IPV4})",
            # numbers: digits with short separators, maybe a +CC, 0086 or (+86) before them,
            # maybe an ID's X after; judged (and cut where they ran on) by _numbers
            r"(?P<number>(?<![0-9+])(?:\(\+?[0-9]{1,4}\)[ -]?|\+[0-9]{1,3}[ -]?\(?|\()?"
            r"[0-9](?:[ .()-]{0,2}[0-9]){6,40}[Xx]?(?![0-9]))",
            rf"(?P<ipv6>(?<![0-9A-Za-z:])(?:{_HEX})?(?::(?:{_HEX})?){{2,7}}(?![0-9A-Za-z:]))",
            # licence plates: a province, a letter, maybe a dot or space, 5 or 6 more (checked
            # whole by the plate validator afterwards)
            rf"(?P<cn_license_plate>[{_PLATE_FIRST}] ?{_PLATE_CHAR}[·•・‧∙. -]?{_PLATE_CHAR}{{4}}"
            rf"(?:{_PLATE_CHAR}|[挂学警港澳]){_PLATE_CHAR}?(?![0-9A-Za-z]))",
            rf"(?P<cn_passport>(?<![A-Za-z0-9]){CN_PASSPORT_PATTERN}(?![A-Za-z0-9]))",
        )
    )
    + ")"
)
