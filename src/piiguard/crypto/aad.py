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

import struct
from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import Any

from piiguard.errors import InvalidArgument

__all__ = ["encode_context", "encode_context_keyed", "key_prefix"]

_MAX_ENTRIES = 64
_MAX_TEXT = 65535
_MAX_SHAPES = 1024


class _Shape:
    """What every context with the same keys shares: the encoded keys, and a value getter."""

    __slots__ = ("lengths", "prefix", "values")

    def __init__(self, keys: tuple[str, ...]) -> None:
        ordered = sorted(keys)
        parts = [struct.pack(">H", len(key)) + key.encode() for key in ordered]
        self.prefix = struct.pack(">H", len(ordered)) + b"".join(parts)
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


def key_prefix(encoded: bytes) -> bytes:
    """The part of an encoded context that names its keys (count and keys, not values): what
    a version-2 ciphertext's fingerprint is computed from."""
    count, end = int.from_bytes(encoded[:2], "big"), 2
    for _ in range(count):  # lengths count characters: step over each key's UTF-8
        characters, end = int.from_bytes(encoded[end : end + 2], "big"), end + 2
        for _ in range(characters):
            lead = encoded[end] if end < len(encoded) else 0
            end += 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    return encoded[:end]


def encode_context_keyed(context: Mapping[str, str]) -> tuple[bytes, bytes]:
    """:func:`encode_context` and the part of it that names the keys (:func:`key_prefix`)."""
    encoded = encode_context(context)
    shape = _shapes.get(tuple(context))
    return encoded, shape.prefix if shape is not None else key_prefix(encoded)


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
