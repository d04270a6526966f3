"""Tokenization: keyed tokens, FF1 format-preserving encryption, and format-preserving tokens."""

from piiguard.tokens.ff1 import FF1
from piiguard.tokens.service import Tokens

__all__ = ["FF1", "Tokens"]
