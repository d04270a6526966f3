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
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from piiguard.errors import InvalidArgument
from piiguard.events import Rows

__all__ = ["encode_context", "encode_context_keyed", "encode_contexts", "key_prefix"]

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
    return _encoded(_shapes.get(keys) or _shape(keys), context)


def encode_contexts(contexts: Sequence[Mapping[str, str]]) -> list[bytes]:
    """:func:`encode_context` of each of a batch: dicts with the keys of the one before
    (a batch's rows) reuse its shape.

    Raises:
        InvalidArgument: as :func:`encode_context`, for the first context that is invalid.
    """
    if isinstance(contexts, Rows):
        return _encoded_rows(contexts)
    out: list[bytes] = []
    keys: frozenset[Any] = frozenset()
    shape: _Shape | None = None
    for context in contexts:
        if shape is not None and type(context) is dict and context.keys() == keys:
            out.append(_encoded(shape, context))
            continue
        out.append(encode_context(context))
        found = _shapes.get(tuple(context))
        shape, keys = (found, frozenset(context)) if type(context) is dict else (None, keys)
    return out


def _encoded_rows(rows: Rows) -> list[bytes]:
    """The bytes of each of a batch's factored contexts: what the base gives computed once,
    each row adding its one value (the same bytes as :func:`encode_context` of the row)."""
    if not rows.values:
        return []
    encode_context(rows[0])  # the shape cached, and every error the base can raise raised
    ordered = sorted([*rows.base, rows.key])
    at = ordered.index(rows.key)
    before = "".join(rows.base[key] for key in ordered[:at])
    after = "".join(rows.base[key] for key in ordered[at + 1 :])
    lengths = [len(rows.base[key]) for key in ordered if key != rows.key]
    head = _shapes[tuple(rows[0])].prefix + struct.pack(f">{at}H", *lengths[:at])
    tail = struct.pack(f">{len(ordered) - at - 1}H", *lengths[at:])
    pack = struct.Struct(">H").pack
    try:
        return [
            head + pack(len(value)) + tail + (before + value + after).encode()
            for value in rows.values
        ]
    except struct.error:
        raise InvalidArgument("context values are at most 65535 characters") from None


def _encoded(shape: _Shape, context: Mapping[str, str]) -> bytes:
    """The bytes of a context whose keys are ``shape``'s."""
    values = shape.values(context)
    try:
        joined = "".join(values)  # TypeError for a value that is not a str
        lengths = shape.lengths(*map(len, values))
    except TypeError:
        raise InvalidArgument("context values must be str") from None
    except struct.error:
        raise InvalidArgument("context values are at most 65535 characters") from None
    return shape.prefix + lengths + joined.encode()
