"""The audit chain's one rule: how an event's row and the chain value before it make its own.

Each stored event carries ``chain = MAC(previous chain || encoding of the row)`` under a key
derived from a root key the KEK wraps. Writing and verifying both call :func:`link`, so the two
can never disagree. Whoever can write the database but cannot use the KEK cannot compute a
chain value: an edited, deleted, inserted or reordered row breaks the chain at that row, and a
plain SHA-256 recomputation does not match.
"""

from __future__ import annotations

from collections.abc import Mapping

from piiguard.seals import Digest, encode

__all__ = ["FIELDS", "GENESIS", "Digest", "checkpoint_signature", "link", "outbox_seal"]

#: The chain value before the first event.
GENESIS = bytes(32)
#: The columns an event's chain value covers, in the order they are encoded.
FIELDS = (
    "seq",
    "at_us",
    "actor",
    "action",
    "purpose",
    "kind",
    "result",
    "count",
    "subjects",
    "detail",
)
_DOMAIN = b"piiguard-audit-v1"
_CHECKPOINT_DOMAIN = b"piiguard-audit-checkpoint-v1"
_PRUNE_DOMAIN = b"piiguard-audit-prune-v1"
_OUTBOX_DOMAIN = b"piiguard-audit-outbox-v1"


def link(mac: Digest, previous: bytes, row: Mapping[str, object]) -> bytes:
    """The chain value of ``row`` (its :data:`FIELDS`), following ``previous``.

    Length-prefixed fields, with None distinct from the empty string, so no two rows encode
    alike; the sequence number is covered, so rows cannot change places.
    """
    encoded = b"".join(encode(row[name]) for name in FIELDS)
    return mac.digest(_DOMAIN + previous + encoded)


def checkpoint_signature(
    mac: Digest, seq: int, at_us: int, chain: bytes, *, pruned: bool = False
) -> bytes:
    """What vouches for a checkpoint (the chain value after event ``seq``, which happened at
    ``at_us``): verification may start there when asked. Only a ``pruned`` checkpoint (one a
    prune signed as it deleted the events up to it) explains a log that begins after it: a
    checkpoint any sweep makes at the head cannot stand in for a prune."""
    domain = _PRUNE_DOMAIN if pruned else _CHECKPOINT_DOMAIN
    return mac.digest(
        domain + seq.to_bytes(8, "big") + at_us.to_bytes(8, "big", signed=True) + chain
    )


def outbox_seal(mac: Digest, body: bytes) -> bytes:
    """What vouches for an event waiting in the outbox (``body``, its stored form as JSON):
    only rows piiguard wrote there are ever chained into the log."""
    return mac.digest(_OUTBOX_DOMAIN + len(body).to_bytes(8, "big") + body)
