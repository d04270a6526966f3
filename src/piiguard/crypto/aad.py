"""The associated data that binds a ciphertext to where it belongs.

The context mapping (table, field, row id, tenant, ...) is encoded canonically::

    count | (len key | key)* over the keys sorted | (len value)* in that order | values

with 2-byte big-endian lengths (keys and values counted in characters, so the UTF-8 of the
concatenated values splits back unambiguously). Equal mappings give equal bytes whatever
their insertion order; ``{"a": "bc"}`` and ``{"ab": "c"}`` differ. The ciphertext's header
is bound too, by the recipes, so a changed suite or key id never decrypts.

The key part depends only on the set of keys, which is the same for every call of a call
site, so it is computed once per key shape and cached; a call then costs a handful of C
operations.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import Any

from piiguard.errors import InvalidArgument

__all__ = ["encode_context", "encode_context_keyed", "keys_fingerprint"]

_MAX_ENTRIES = 64
_MAX_TEXT = 65535
_MAX_SHAPES = 1024


class _Shape:
    """What every context with the same keys shares: the encoded keys, and a value getter."""

    __slots__ = ("fingerprint", "lengths", "prefix", "values")

    def __init__(self, keys: tuple[str, ...]) -> None:
        ordered = sorted(keys)
        parts = [struct.pack(">H", len(key)) + key.encode() for key in ordered]
        self.prefix = struct.pack(">H", len(ordered)) + b"".join(parts)
        self.fingerprint = _fingerprint(self.prefix)
        getter: Callable[[Mapping[str, Any]], Any] = itemgetter(*ordered)
        self.values = getter if len(ordered) > 1 else (lambda context: (getter(context),))
        self.lengths = struct.Struct(f">{len(ordered)}H").pack


_shapes: dict[tuple[Any, ...], _Shape] = {}


def _shape(keys: tuple[Any, ...]) -> _Shape:
    if not keys:
        raise InvalidArgument("context must not be empty: it binds the ciphertext to its place")
    if len(keys) > _MAX_ENTRIES:
        raise InvalidArgument("context has more than 64 entries")
    if not all(isinstance(key, str) and len(key) <= _MAX_TEXT for key in keys):
        raise InvalidArgument("context keys must be str")
    if len(_shapes) >= _MAX_SHAPES:
        _shapes.clear()
    shape = _shapes[keys] = _Shape(keys)
    return shape


def _fingerprint(prefix: bytes) -> bytes:
    return hashlib.sha256(b"piiguard-context-keys-v1" + prefix).digest()[:2]


def keys_fingerprint(encoded: bytes) -> bytes:
    """The 2-byte fingerprint of the keys (not the values) of an encoded context: what a
    version-2 ciphertext carries, so that a context with other keys (a wrong field name) is
    told apart from tampering. The keys are schema names, never secret."""
    count, end = int.from_bytes(encoded[:2], "big"), 2
    for _ in range(count):  # lengths count characters: step over each key's UTF-8
        characters, end = int.from_bytes(encoded[end : end + 2], "big"), end + 2
        for _ in range(characters):
            end += 1
            while end < len(encoded) and encoded[end] & 0xC0 == 0x80:
                end += 1
    return _fingerprint(encoded[:end])


def encode_context_keyed(context: Mapping[str, str]) -> tuple[bytes, bytes]:
    """:func:`encode_context` and the fingerprint of its keys (:func:`keys_fingerprint`)."""
    encoded = encode_context(context)
    keys = tuple(context)
    return encoded, _shapes[keys].fingerprint if keys in _shapes else keys_fingerprint(encoded)


def encode_context(context: Mapping[str, str]) -> bytes:
    """Canonical bytes of a context.

    Raises:
        InvalidArgument: the context is not a mapping of str to str, is empty, has more than
            64 entries, or a text over 65535 characters.
    """
    if type(context) is not dict and not isinstance(context, Mapping):  # ABC checks are slow
        raise InvalidArgument("context must be a mapping of str -> str")
    keys = tuple(context)
    shape = _shapes.get(keys) or _shape(keys)
    values = shape.values(context)
    try:
        joined = "".join(values)  # TypeError for a value that is not a str
        lengths = shape.lengths(*map(len, values))
    except TypeError:
        raise InvalidArgument("context values must be str") from None
    except struct.error:
        raise InvalidArgument("context values are at most 65535 characters") from None
    return shape.prefix + lengths + joined.encode()
