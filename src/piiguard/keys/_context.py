"""The wrap context of a data key, as associated data for KEKs that take bytes."""

from __future__ import annotations

import struct
from collections.abc import Mapping

__all__ = ["context_bytes"]


def context_bytes(context: Mapping[str, str]) -> bytes:
    """Sorted entries, each key and value length-prefixed: distinct contexts never collide."""
    parts = [struct.pack(">H", len(context))]
    for key in sorted(context):
        for text in (key, context[key]):
            encoded = text.encode()
            parts.append(struct.pack(">H", len(encoded)) + encoded)
    return b"".join(parts)
