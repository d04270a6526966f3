"""Pkcs11KEK: a key-encryption key inside an HSM, used over PKCS#11 (python-pkcs11).

The KEK is an AES-256 secret key object, created on first use inside the token as
non-extractable and sensitive, so its bytes never leave the HSM. Data keys are wrapped by
AES-GCM performed inside the HSM, with a random 96-bit nonce and the wrap context as
associated data. Epoch objects are further AES-256 keys in the same token, labelled
``<key_label>/epoch/<ref>``, generated non-extractable; destroying an epoch destroys its object
in the token. Needs the ``hsm`` extra: ``pip install "piiguard[hsm]"``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any, NoReturn

from piiguard.errors import KeyDestroyed, KeyProviderError, WrappedKeyInvalid
from piiguard.keys.context import context_bytes

__all__ = ["Pkcs11KEK"]

_NONCE_SIZE = 12
#: PKCS#11 errors that mean the ciphertext is bad, not the token unavailable. (SoftHSM2 reports
#: a failed GCM tag as a general error, which is not told apart: it stops an advance.)
_DAMAGED = frozenset({"EncryptedDataInvalid", "EncryptedDataLenRange"})


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

    __slots__ = (
        "_id",
        "_key",
        "_key_label",
        "_lock",
        "_mechanism",
        "_no_such_key",
        "_params",
        "_session",
        "_template",
    )

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
            self._template = {
                Attribute.EXTRACTABLE: False,
                Attribute.SENSITIVE: True,
                Attribute.ENCRYPT: True,
                Attribute.DECRYPT: True,
            }
            try:
                self._key = self._session.get_key(
                    object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=key_label
                )
            except pkcs11.NoSuchKey:
                self._key = self._session.generate_key(
                    KeyType.AES, 256, label=key_label, store=True, template=self._template
                )
        except (pkcs11.PKCS11Error, RuntimeError, OSError) as error:
            failure = KeyProviderError(f"the HSM is not usable: {type(error).__name__}")
        if failure is not None:
            del pin
            raise failure
        self._lock = threading.Lock()
        self._key_label = key_label
        self._no_such_key = pkcs11.NoSuchKey
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

    def _call(self, operation: str, data: bytes, params: Any, key: Any = None) -> bytes:
        failure: KeyProviderError | None = None
        try:
            with self._lock:  # a PKCS#11 session is not safe to share between threads
                result: bytes = getattr(key or self._key, operation)(
                    data, mechanism=self._mechanism, mechanism_param=params
                )
                return result
        except Exception as error:  # every PKCS#11 failure becomes one KeyProviderError
            kind = (
                WrappedKeyInvalid
                if type(error).__name__ in _DAMAGED and operation == "decrypt"
                else KeyProviderError
            )
            failure = kind(f"the HSM refused to {operation}: {type(error).__name__}")
        del data
        raise failure

    # -- epoch objects (EpochKeyHolder) ---------------------------------------------------

    @property
    def epoch_keys(self) -> Pkcs11KEK:
        """This token holds the epoch objects too."""
        return self

    @property
    def holder_id(self) -> str:
        """The KEK's id."""
        return self._id

    def _epoch_label(self, ref: str) -> str:
        return f"{self._key_label}/epoch/{ref}"

    def _epoch_object(self, ref: str) -> Any:
        """The token object of an epoch, or None once it was destroyed."""
        from pkcs11 import KeyType, ObjectClass

        failure: KeyProviderError | None = None
        try:
            with self._lock:
                return self._session.get_key(
                    object_class=ObjectClass.SECRET_KEY,
                    key_type=KeyType.AES,
                    label=self._epoch_label(ref),
                )
        except self._no_such_key:
            return None
        except Exception as error:
            failure = KeyProviderError(f"the HSM refused a key lookup: {type(error).__name__}")
        raise failure

    def create_epoch(self) -> str:
        """A new AES-256 key object in the token, non-extractable."""
        from pkcs11 import KeyType

        ref = os.urandom(12).hex()
        failure: KeyProviderError | None = None
        try:
            with self._lock:
                self._session.generate_key(
                    KeyType.AES,
                    256,
                    label=self._epoch_label(ref),
                    store=True,
                    template=self._template,
                )
        except Exception as error:
            failure = KeyProviderError(f"the HSM refused to make a key: {type(error).__name__}")
            raise failure from None
        return ref

    def seal_epoch_key(self, ref: str, key: bytes, context: Mapping[str, str]) -> bytes:
        """AES-GCM inside the HSM under the epoch object: nonce | sealed key | tag."""
        found = self._epoch_object(ref)
        if found is None:
            raise KeyDestroyed
        nonce = os.urandom(_NONCE_SIZE)
        params = self._params(nonce, context_bytes(context), 128)
        return nonce + self._call("encrypt", key, params, found)

    def open_epoch_key(self, ref: str, sealed: bytes, context: Mapping[str, str]) -> bytes:
        """The epoch key; KeyDestroyed once its object is gone from the token."""
        found = self._epoch_object(ref)
        if found is None:
            raise KeyDestroyed
        params = self._params(sealed[:_NONCE_SIZE], context_bytes(context), 128)
        return self._call("decrypt", sealed[_NONCE_SIZE:], params, found)

    def destroy_epoch(self, ref: str) -> None:
        """Destroy the epoch's object in the token."""
        found = self._epoch_object(ref)
        if found is None:
            return
        failure: KeyProviderError | None = None
        try:
            with self._lock:
                found.destroy()
        except Exception as error:
            failure = KeyProviderError(f"the HSM refused to destroy: {type(error).__name__}")
        if failure is not None:
            raise failure

    def close(self) -> None:
        """Close the PKCS#11 session."""
        self._session.close()

    def __repr__(self) -> str:
        shown = getattr(self, "_id", "<not opened>")  # safe on a half-built object
        return f"Pkcs11KEK(id={shown!r}, [secure])"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a KEK cannot be pickled")
