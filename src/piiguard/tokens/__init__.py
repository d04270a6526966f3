"""Tokenization: keyed tokens, FF1, format-preserving tokens per kind, and the token vault."""

from piiguard.tokens.ff1 import FF1
from piiguard.tokens.service import Tokens
from piiguard.tokens.vault import TokenVault

__all__ = ["FF1", "TokenVault", "Tokens"]
