"""Key-encryption keys: where the keys that wrap piiguard's data keys live."""

from piiguard.keys.local import LocalKEK
from piiguard.keys.protocol import KEKProvider

__all__ = ["KEKProvider", "LocalKEK"]
