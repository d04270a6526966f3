"""The wrap context of a data key, as associated data for KEKs that take bytes (the providers
here and the epoch keys in crypto/ encode it the same way)."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["context_bytes"]


def context_bytes(context: Mapping[str, str]) -> bytes:
    """Sorted entries, each key and value length-prefixed: distinct contexts never collide."""
    parts = [len(context).to_bytes(2, "big")]
    for key in sorted(context):
        encoded_key, encoded_value = key.encode(), context[key].encode()
        parts += (
            len(encoded_key).to_bytes(2, "big"),
            encoded_key,
            len(encoded_value).to_bytes(2, "big"),
            encoded_value,
        )
    return b"".join(parts)
