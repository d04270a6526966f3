"""AwsKmsKEK: a key-encryption key in AWS KMS (boto3).

Data keys are wrapped with KMS ``Encrypt`` and the wrap context as the KMS encryption
context, which KMS binds cryptographically and writes to CloudTrail. The KEK never leaves
KMS. Epoch objects are KMS keys of their own, made by ``CreateKey``; destroying an epoch
schedules its key's deletion (KMS refuses every use of a key pending deletion at once, and
deletes it after the waiting period, 7 days by default). Needs the ``aws`` extra:
``pip install "piiguard[aws]"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from piiguard.errors import InvalidArgument, KeyDestroyed, KeyProviderError, WrappedKeyInvalid

__all__ = ["AwsKmsKEK"]


class AwsKmsKEK:
    """A KMS key (id, ARN or alias) used as KEK.

    Args:
        key_id: the KMS key to wrap under.
        client: a boto3 KMS client; default ``boto3.client("kms")`` from the environment.
        epoch_deletion_days: KMS's waiting period when an epoch key is destroyed (7-30).
    """

    __slots__ = ("_client", "_deletion_days", "_errors", "_key_id")

    def __init__(self, *, key_id: str, client: Any = None, epoch_deletion_days: int = 7) -> None:
        if not 7 <= epoch_deletion_days <= 30:
            raise InvalidArgument("KMS waits 7 to 30 days before deleting a key")
        try:
            import boto3
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise KeyProviderError(
                'AwsKmsKEK needs the aws extra: pip install "piiguard[aws]"'
            ) from None
        self._client = client if client is not None else boto3.client("kms")
        self._key_id = key_id
        self._deletion_days = epoch_deletion_days
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
        return self._decrypt(self._key_id, wrapped, context)

    def _decrypt(self, key_id: str, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        failure: KeyProviderError | None = None
        try:
            response = self._client.decrypt(
                CiphertextBlob=wrapped, KeyId=key_id, EncryptionContext=dict(context)
            )
            return bytes(response["Plaintext"])
        except self._errors as error:
            kind = (
                WrappedKeyInvalid
                if _error_code(error) == "InvalidCiphertextException"
                else KeyProviderError
            )
            failure = kind(f"KMS refused to decrypt: {type(error).__name__}")
        raise failure

    # -- epoch objects (EpochKeyHolder) ---------------------------------------------------

    @property
    def epoch_keys(self) -> AwsKmsKEK:
        """KMS holds the epoch objects too, one KMS key each."""
        return self

    @property
    def holder_id(self) -> str:
        """The KEK's id."""
        return self.kek_id

    def _kms(self, operation: str, **arguments: Any) -> Any:
        failure: KeyProviderError | None = None
        try:
            return getattr(self._client, operation)(**arguments)
        except self._errors as error:
            failure = KeyProviderError(f"KMS refused {operation}: {type(error).__name__}")
        raise failure

    def create_epoch(self) -> str:
        """A new symmetric KMS key; its KeyId is the ref."""
        response = self._kms(
            "create_key",
            Description="piiguard epoch key",
            KeyUsage="ENCRYPT_DECRYPT",
            Tags=[{"TagKey": "piiguard", "TagValue": "epoch"}],
        )
        return str(response["KeyMetadata"]["KeyId"])

    def seal_epoch_key(self, ref: str, key: bytes, context: Mapping[str, str]) -> bytes:
        """KMS Encrypt under the epoch's KMS key."""
        response = self._kms("encrypt", KeyId=ref, Plaintext=key, EncryptionContext=dict(context))
        return bytes(response["CiphertextBlob"])

    def open_epoch_key(self, ref: str, sealed: bytes, context: Mapping[str, str]) -> bytes:
        """KMS Decrypt under the epoch's KMS key; KeyDestroyed once its deletion is scheduled
        (checked here too, not only by KMS) and once KMS has deleted it (NotFoundException)."""
        state = self._epoch_state(ref)
        if state != "Enabled":
            raise KeyDestroyed
        return self._decrypt(ref, sealed, context)

    def _epoch_state(self, ref: str) -> str | None:
        """The KMS key's state, or None when KMS no longer knows it (deleted)."""
        failure: KeyProviderError | None = None
        try:
            return str(self._client.describe_key(KeyId=ref)["KeyMetadata"]["KeyState"])
        except self._errors as error:
            if _error_code(error) == "NotFoundException":
                return None
            failure = KeyProviderError(f"KMS refused describe_key: {type(error).__name__}")
        raise failure

    def destroy_epoch(self, ref: str) -> None:
        """Schedule the deletion of the epoch's KMS key (KMS refuses its use from now on)."""
        state = self._epoch_state(ref)
        if state in (None, "PendingDeletion", "PendingReplicaDeletion"):
            return
        self._kms("schedule_key_deletion", KeyId=ref, PendingWindowInDays=self._deletion_days)

    def __repr__(self) -> str:
        return f"AwsKmsKEK(id={self.kek_id!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a KEK cannot be pickled")


def _error_code(error: Exception) -> str:
    """The AWS error code of a botocore ClientError ('' for other errors)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
