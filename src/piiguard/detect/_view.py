"""The normalised view of a text that detection matches on, with a map back to the original.

Shoppers type numbers with Chinese input methods (full-width ``１３８``, ``＠``), paste them
with zero-width characters, soft hyphens or no-break spaces inside, or in another script's
digits. The validators accept those; detection must find them too, and report (and
``redact`` mask) the characters of the *original* text. So matching runs on a view where:

- full-width ASCII forms and the ideographic space are ASCII (NFKC width folding);
- every decimal digit of any script (Unicode category Nd) is its ASCII digit;
- no-break and other fixed-width spaces are a space, dashes and the minus sign are ``-``;
- format characters (zero-width spaces and joiners, the soft hyphen, word joiners, the BOM,
  direction marks) are dropped.

Each character of the view maps to one character of the original, so a span of the view is
a span of the original. ASCII text, and text with none of those characters (one C-level
search), is its own view at no cost.
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = ["View", "view_of"]

_SPACES = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
_SPACES += "\u202f\u205f"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63"
_DROPPED = "\u00ad\u061c\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
_DROPPED += "\u2060\u2061\u2062\u2063\u2064\ufeff"


_DROPPED_RUN = re.compile(f"[{re.escape(_DROPPED)}]+")

#: Full-width forms that can be part of a value: digits, letters and ＠．－＋（）＿：
#: (not the full-width comma, colon or question mark of ordinary Chinese punctuation, so
#: that Chinese text without a full-width value needs no view of its own).
_FULLWIDTH = [*range(0xFF10, 0xFF1B), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B)]
_FULLWIDTH += [0xFF20, 0xFF0E, 0xFF0D, 0xFF0B, 0xFF08, 0xFF09, 0xFF3F]


#: Every decimal digit of Unicode lies below U+20000 (the last block, U+1FBF0, holds the
#: segmented digits): the walk stops there.
_LAST_DIGIT_PLANE = 0x20000
#: Any character beyond the Basic Multilingual Plane (one range: a fast test per character).
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


@functools.cache
def _tables() -> tuple[dict[int, int | None], re.Pattern[str], re.Pattern[str]]:
    """The translation table, and the searches for the characters it changes in the Basic
    Multilingual Plane (a bitmap test per character) and beyond it (built on first use:
    finding every script's digits walks two planes of Unicode, ~15 ms)."""
    table: dict[int, int | None] = {cp: cp - 0xFEE0 for cp in _FULLWIDTH}
    table[0x3000] = 0x20
    table.update({ord(c): 0x20 for c in _SPACES})
    table.update({ord(c): ord("-") for c in _DASHES})
    table.update(dict.fromkeys(map(ord, _DROPPED)))
    digits = [cp for cp in range(0x80, _LAST_DIGIT_PLANE) if chr(cp).isdecimal()]
    table.update({cp: 0x30 + unicodedata.decimal(chr(cp)) for cp in digits})
    basic = "".join(re.escape(chr(cp)) for cp in sorted(table) if cp < 0x10000)
    astral = "".join(re.escape(chr(cp)) for cp in sorted(table) if cp >= 0x10000)
    return table, re.compile(f"[{basic}]"), re.compile(f"[{astral}]")


@functools.cache
def _replacements() -> dict[str, str]:
    """The translation table as characters: what each changed character becomes ("" when
    it is dropped)."""
    table = _tables()[0]
    return {chr(cp): "" if to is None else chr(to) for cp, to in table.items()}


class View:
    """A text as detection matches it (``text``) and where each of its characters came from."""

    __slots__ = ("_origin", "original", "text")

    def __init__(self, original: str, text: str, origin: list[int] | None) -> None:
        self.original = original
        self.text = text
        self._origin = origin  # None: the view is the original, character for character

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original text's span for the view's ``[start, end)``."""
        origin = self._origin
        if origin is None or start == end:
            return start, end
        return origin[start], origin[end - 1] + 1


def view_of(text: str) -> View:
    """The view of ``text`` (itself when nothing in it needs changing)."""
    if text.isascii():
        return View(text, text, None)
    _, basic, astral = _tables()
    if basic.search(text) is None and (_ASTRAL.search(text) is None or astral.search(text) is None):
        return View(text, text, None)
    # the changed characters are few: replace each where the search finds it, instead of
    # looking every character of the text up in the table (str.translate)
    replacements = _replacements()
    folded = basic.sub(lambda match: replacements[match.group()], text)
    if _ASTRAL.search(folded) is not None:
        folded = astral.sub(lambda match: replacements[match.group()], folded)
    if len(folded) == len(text):
        return View(text, folded, None)
    origin: list[int] = []
    kept_from = 0
    for match in _DROPPED_RUN.finditer(text):  # a few dropped characters: copy the ranges
        origin.extend(range(kept_from, match.start()))
        kept_from = match.end()
    origin.extend(range(kept_from, len(text)))
    return View(text, folded, origin)
