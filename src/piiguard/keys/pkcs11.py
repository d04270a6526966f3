"""Pkcs11KEK: a key-encryption key inside an HSM, used over PKCS#11 (python-pkcs11).

The KEK is an AES-256 secret key object, created on first use inside the token as
non-extractable and sensitive, so its bytes never leave the HSM. Data keys are wrapped by
AES-GCM performed inside the HSM, with a random 96-bit nonce and the wrap context as
associated data. Needs the ``hsm`` extra: ``pip install "piiguard[hsm]"``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any, NoReturn

from piiguard.errors import KeyProviderError
from piiguard.keys._context import context_bytes

__all__ = ["Pkcs11KEK"]

_NONCE_SIZE = 12


class Pkcs11KEK:
    """An AES-256 KEK held in a PKCS#11 token (an HSM, or SoftHSM2 for tests).

    Args:
        lib: path of the PKCS#11 module (``/usr/lib/softhsm/libsofthsm2.so``).
        token_label: the token to use.
        pin: the user PIN; used to log in once, not kept.
        key_label: the label of the KEK object, generated in the token if absent.

    Raises:
        KeyProviderError: the module, token or login fails.
    """

    __slots__ = ("_id", "_key", "_lock", "_mechanism", "_params", "_session")

    def __init__(self, *, lib: str, token_label: str, pin: str, key_label: str) -> None:
        try:
            import pkcs11
            from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
            from pkcs11.mechanisms import GCMParams
        except ImportError:
            raise KeyProviderError(
                'Pkcs11KEK needs the hsm extra: pip install "piiguard[hsm]"'
            ) from None
        failure: KeyProviderError | None = None
        try:
            token = pkcs11.lib(lib).get_token(token_label=token_label)
            try:
                self._session = token.open(user_pin=pin, rw=True)
            except pkcs11.UserAlreadyLoggedIn:  # login is per process: another KEK did it
                self._session = token.open(rw=True)
            try:
                self._key = self._session.get_key(
                    object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=key_label
                )
            except pkcs11.NoSuchKey:
                self._key = self._session.generate_key(
                    KeyType.AES,
                    256,
                    label=key_label,
                    store=True,
                    template={
                        Attribute.EXTRACTABLE: False,
                        Attribute.SENSITIVE: True,
                        Attribute.ENCRYPT: True,
                        Attribute.DECRYPT: True,
                    },
                )
        except (pkcs11.PKCS11Error, RuntimeError, OSError) as error:
            failure = KeyProviderError(f"the HSM is not usable: {type(error).__name__}")
        if failure is not None:
            del pin
            raise failure
        self._lock = threading.Lock()
        self._mechanism = Mechanism.AES_GCM
        self._params = GCMParams
        self._id = f"pkcs11:{token_label}/{key_label}"

    @property
    def kek_id(self) -> str:
        """``pkcs11:`` token label / key label."""
        return self._id

    def wrap(self, dek: bytes, context: Mapping[str, str]) -> bytes:
        """AES-GCM inside the HSM: nonce | wrapped key | tag."""
        nonce = os.urandom(_NONCE_SIZE)
        params = self._params(nonce, context_bytes(context), 128)
        result = self._call("encrypt", dek, params)
        del dek
        return nonce + result

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        """The data key, or KeyProviderError for a wrong KEK, context or damaged bytes."""
        params = self._params(wrapped[:_NONCE_SIZE], context_bytes(context), 128)
        return self._call("decrypt", wrapped[_NONCE_SIZE:], params)

    def _call(self, operation: str, data: bytes, params: Any) -> bytes:
        failure: KeyProviderError | None = None
        try:
            with self._lock:  # a PKCS#11 session is not safe to share between threads
                result: bytes = getattr(self._key, operation)(
                    data, mechanism=self._mechanism, mechanism_param=params
                )
                return result
        except Exception as error:  # every PKCS#11 failure becomes one KeyProviderError
            failure = KeyProviderError(f"the HSM refused to {operation}: {type(error).__name__}")
        del data
        raise failure

    def close(self) -> None:
        """Close the PKCS#11 session."""
        self._session.close()

    def __repr__(self) -> str:
        return f"Pkcs11KEK(id={self._id!r}, [secure])"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a KEK cannot be pickled")
