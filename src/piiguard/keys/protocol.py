"""The key-encryption-key Protocol: two methods, wrap and unwrap, plus an id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

__all__ = ["KEKProvider"]


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
