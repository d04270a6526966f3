"""Chinese-specific helpers for masking (surnames and divisions live in validate.cn_lexicon)."""

from __future__ import annotations

__all__ = ["is_cjk"]


def is_cjk(char: str) -> bool:
    """Return whether a character is a CJK unified ideograph (basic block or extension A)."""
    return "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf"
