"""AwsKmsKEK: a key-encryption key in AWS KMS (boto3).

Data keys are wrapped with KMS ``Encrypt`` and the wrap context as the KMS encryption
context, which KMS binds cryptographically and writes to CloudTrail. The KEK never leaves
KMS. Needs the ``aws`` extra: ``pip install "piiguard[aws]"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from piiguard.errors import KeyProviderError

__all__ = ["AwsKmsKEK"]


class AwsKmsKEK:
    """A KMS key (id, ARN or alias) used as KEK.

    Args:
        key_id: the KMS key to wrap under.
        client: a boto3 KMS client; default ``boto3.client("kms")`` from the environment.
    """

    __slots__ = ("_client", "_errors", "_key_id")

    def __init__(self, *, key_id: str, client: Any = None) -> None:
        try:
            import boto3
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise KeyProviderError(
                'AwsKmsKEK needs the aws extra: pip install "piiguard[aws]"'
            ) from None
        self._client = client if client is not None else boto3.client("kms")
        self._key_id = key_id
        self._errors = (BotoCoreError, ClientError)

    @property
    def kek_id(self) -> str:
        """``aws-kms:`` and the key id as given."""
        return f"aws-kms:{self._key_id}"

    def wrap(self, dek: bytes, context: Mapping[str, str]) -> bytes:
        """KMS Encrypt with the context as encryption context."""
        failure: KeyProviderError | None = None
        try:
            response = self._client.encrypt(
                KeyId=self._key_id, Plaintext=dek, EncryptionContext=dict(context)
            )
            return bytes(response["CiphertextBlob"])
        except self._errors as error:
            failure = KeyProviderError(f"KMS refused to encrypt: {type(error).__name__}")
        del dek
        raise failure

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        """KMS Decrypt with the same encryption context (and the key id pinned)."""
        failure: KeyProviderError | None = None
        try:
            response = self._client.decrypt(
                CiphertextBlob=wrapped, KeyId=self._key_id, EncryptionContext=dict(context)
            )
            return bytes(response["Plaintext"])
        except self._errors as error:
            failure = KeyProviderError(f"KMS refused to decrypt: {type(error).__name__}")
        raise failure

    def __repr__(self) -> str:
        return f"AwsKmsKEK(id={self.kek_id!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a KEK cannot be pickled")
