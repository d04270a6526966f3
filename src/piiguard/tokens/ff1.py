"""FF1 lives with the other primitives in :mod:`piiguard.crypto.ff1` (the keyring builds it
from a derived key, so key bytes never leave the key layer); it is public as
``piiguard.tokens.FF1``."""

from piiguard.crypto.ff1 import FF1

__all__ = ["FF1"]
