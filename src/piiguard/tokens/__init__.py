"""Tokenization: FF1 format-preserving encryption (more to come: keyed tokens, the vault)."""

from piiguard.tokens.ff1 import FF1

__all__ = ["FF1"]
