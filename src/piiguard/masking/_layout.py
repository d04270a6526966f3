"""Layout-preserving building blocks shared by the masking rules."""

from __future__ import annotations

from collections.abc import Collection

__all__ = ["MASK", "is_digit_or_mask", "is_maskable", "mask_whole", "reveal_positions"]

#: The character that stands for a masked one. Rules treat it as already masked, which is
#: what makes masking idempotent: ``mask(mask(x)) == mask(x)``.
MASK = "*"


def is_maskable(char: str) -> bool:
    """A letter or digit, or a character masked already."""
    return char.isalnum() or char == MASK


def is_digit_or_mask(char: str) -> bool:
    """A digit, or a character masked already."""
    return char.isdigit() or char == MASK


def mask_whole(value: str) -> str:
    """Mask every character: what rules return for input that does not have their shape."""
    return "*" * len(value)


def reveal_positions(value: str, keep: Collection[int], maskable: str = "alnum") -> str:
    """Replace maskable characters by ``*`` except at the indexes in ``keep``.

    Separators (characters that are not letters or digits, or not digits when ``maskable``
    is ``"digits"``) stay where they are.
    """
    test = is_digit_or_mask if maskable == "digits" else is_maskable
    return "".join(
        char if index in keep or not test(char) else "*" for index, char in enumerate(value)
    )
