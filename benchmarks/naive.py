"""The baseline detection is measured against: what a developer writes by hand."""

from __future__ import annotations

import re

__all__ = ["NAIVE", "naive_scan"]

#: What a developer writes by hand: one alternation, no check digits, no boundaries.
NAIVE = re.compile(
    r"1[3-9]\d{9}|\d{17}[\dXx]|\d{16,19}|[\w.+-]+@[\w-]+\.[\w.]+|(?:\d{1,3}\.){3}\d{1,3}"
)


def naive_scan(text: str) -> list[tuple[int, int]]:
    """One regex pass collecting spans, without any validation."""
    return [match.span() for match in NAIVE.finditer(text)]
