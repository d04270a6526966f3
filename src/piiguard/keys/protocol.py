"""The key-encryption-key Protocols: wrap and unwrap under a KEK, and hold epoch keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

__all__ = ["EpochKeyHolder", "KEKProvider"]


@runtime_checkable
class KEKProvider(Protocol):
    """Wraps and unwraps data keys under a key that never leaves its home (file, HSM, KMS).

    ``context`` is bound to the wrapped key (AES-GCM AAD, KMS encryption context), so a
    wrapped key moved to another row of the key table does not unwrap. Implementations raise
    :class:`~piiguard.KeyProviderError` for every failure, with no key bytes in the message.
    """

    @property
    def kek_id(self) -> str:
        """A stable, non-secret name of this KEK, stored beside each key it wraps."""
        ...

    def wrap(self, dek: bytes, context: Mapping[str, str]) -> bytes:
        """Encrypt a data key under the KEK."""
        ...

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        """Decrypt a data key wrapped by :meth:`wrap` with the same context."""
        ...


@runtime_checkable
class EpochKeyHolder(Protocol):
    """Keeps *epoch objects* outside the store, where destroying one is final.

    Data keys are wrapped under an epoch key; the epoch key is sealed under an epoch object
    that lives here (a token object in an HSM, a KMS key, an entry of an epoch-key file),
    never only in the database. Destroying the object makes every copy of the store that
    still holds keys wrapped under that epoch unreadable, backups included.

    ``ref`` is a non-secret name of one epoch object, stored in the store's epoch table.
    Implementations raise :class:`~piiguard.KeyProviderError` for every failure, and
    :class:`~piiguard.KeyDestroyed` from :meth:`open_epoch_key` once the object is gone.
    """

    @property
    def holder_id(self) -> str:
        """A stable, non-secret name of this holder."""
        ...

    def create_epoch(self) -> str:
        """Create a new epoch object; return its ref."""
        ...

    def seal_epoch_key(self, ref: str, key: bytes, context: Mapping[str, str]) -> bytes:
        """Encrypt an epoch key under the epoch object ``ref``."""
        ...

    def open_epoch_key(self, ref: str, sealed: bytes, context: Mapping[str, str]) -> bytes:
        """Decrypt an epoch key sealed by :meth:`seal_epoch_key`."""
        ...

    def destroy_epoch(self, ref: str) -> None:
        """Destroy the epoch object for good; destroying an absent one is not an error."""
        ...
