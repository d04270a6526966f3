"""Field encryption recipes: randomized and deterministic, bound to a context, audited reveals.

Callers give a value, a context and optionally a subject; they never give a nonce, a mode
or a key. Every failure to decrypt is one :class:`~piiguard.DecryptionError`, raised with no
cause and no plaintext or key bytes in its message, args or the locals of these frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from cryptography.exceptions import InvalidTag

from piiguard.crypto import wire
from piiguard.crypto._nonces import random_nonce
from piiguard.crypto.aad import (
    encode_context,
    encode_context_keyed,
    encode_contexts,
    key_prefix,
)
from piiguard.crypto.hazmat.aead import TAG_SIZE, Aead, AesSiv
from piiguard.crypto.hazmat.mac import hmac_digest, hmac_verify
from piiguard.crypto.keyring import Keyring
from piiguard.crypto.roots import ROOT_SCOPE
from piiguard.errors import (
    ContextMismatch,
    DecryptionError,
    InvalidArgument,
    KeyNotFound,
    contract_error,
)
from piiguard.events import AccessEvent, Reveals, Rows

__all__ = ["Envelope"]

Ciphertext = str | bytes | bytearray | memoryview
_RANDOMIZED_MIN = wire.HEADER_SIZE + wire.NONCE_SIZE + TAG_SIZE
_V1_RANDOMIZED_MIN = wire.V1_HEADER_SIZE + wire.NONCE_SIZE + TAG_SIZE
_V1 = wire.V1_HEADER_SIZE
_V2 = wire.HEADER_SIZE


def _plaintext_bytes(value: object) -> bytes:
    if isinstance(value, str):
        return value.encode()
    error = InvalidArgument(f"encryption takes a str, not {type(value).__name__}")
    del value  # a phone passed as an int is still a phone
    raise error


def _clean(error: Exception) -> Exception:
    """An error to hand back without the frames below it, in the tree (a lone surrogate's
    UnicodeEncodeError, which carries the text, becomes an InvalidArgument that does not)."""
    return contract_error(error)


def _index_refusal(field: object, bits: object) -> InvalidArgument | None:
    if not isinstance(field, str) or not field:
        return InvalidArgument("field must be a non-empty str")
    if bits is not None and (
        type(bits) is not int or bits % 8 or not 16 <= bits <= 256  # bool is not a width
    ):
        return InvalidArgument("bits must be a multiple of 8 between 16 and 256")
    return None


def _ciphertext_bytes(ciphertext: object) -> bytes | None:
    if isinstance(ciphertext, str):
        return wire.from_text(ciphertext)
    if isinstance(ciphertext, bytes | bytearray | memoryview):
        return bytes(ciphertext)
    return None


def _values_of(contexts: Sequence[Mapping[str, str]], key: str) -> set[str]:
    """The distinct values ``key`` has in a batch's contexts."""
    if isinstance(contexts, Rows):
        if key == contexts.key:
            return set(contexts.values)
        return {contexts.base[key]} if key in contexts.base and contexts.values else set()
    return {value for context in contexts if (value := context.get(key)) is not None}


class Envelope:
    """Encrypts and decrypts field values with a keyring's keys."""

    def __init__(self, keyring: Keyring, reveals: Reveals) -> None:
        self._keyring = keyring
        self._reveals = reveals
        self._code = keyring.suite.code
        self._deterministic_code = self._code | wire.DETERMINISTIC_FLAG
        self._headers: dict[tuple[int, bytes], bytes] = {}
        self._fingerprints: dict[bytes, bytes] = {}
        self._first_byte = (wire.VERSION << 4) | self._code
        self._v1_first_byte = (1 << 4) | self._code  # written before version 2, still read
        self._deterministic_first_byte = (1 << 4) | self._deterministic_code

    def _fingerprint(self, prefix: bytes) -> bytes:
        """The 2-byte fingerprint of a context's keys in a version-2 header: keyed, so that
        a key that is itself a value (a phone used as a key) cannot be confirmed by trying
        guesses against it."""
        found = self._fingerprints.get(prefix)
        if found is None:
            found = self._keyring.mac("wire", b"wire/context-keys").digest(prefix)[:2]
            if len(self._fingerprints) >= 4096:
                self._fingerprints.clear()
            self._fingerprints[prefix] = found
        return found

    def _header(self, key_id: int, keys: bytes) -> bytes:
        header = self._headers.get((key_id, keys))
        if header is None:
            if len(self._headers) >= 4096:
                self._headers.clear()
            header = self._headers[(key_id, keys)] = wire.pack_header(self._code, key_id, keys)
        return header

    def _scope(self, subject: str | None) -> str:
        return "default" if subject is None else self._keyring.subject_scope(subject)

    # -- randomized ----------------------------------------------------------------------

    def _seal(
        self, value: object, context: Mapping[str, str], subject: str | None
    ) -> bytes | Exception:
        """The bytes form, or the error (returned, not raised) once no local holds the value.

        Any failure (a malformed context, a KEK outage while a new key is made) would
        otherwise travel through frames whose locals hold the plaintext, and error trackers
        record those locals.
        """
        plaintext = None
        try:
            plaintext = value.encode() if type(value) is str else _plaintext_bytes(value)
            aad_context, prefix = encode_context_keyed(context)
            keys = self._fingerprints.get(prefix) or self._fingerprint(prefix)
            key_id, aead = self._keyring.encryption_key(self._scope(subject))
            header = self._headers.get((key_id, keys)) or self._header(key_id, keys)
            nonce = random_nonce()
            return header + nonce + aead.encrypt(nonce, plaintext, header + aad_context)
        except Exception as error:  # handed back to the caller, without the frames below
            value = plaintext = subject = None  # (the pseudonymizer's holds the subject id)
            return _clean(error)

    def encrypt_bytes(
        self, value: str, *, context: Mapping[str, str], subject: str | None = None
    ) -> bytes:
        """Encrypt to the bytes form (for BLOB/BYTEA columns)."""
        sealed = self._seal(value, context, subject)
        if type(sealed) is bytes:
            return sealed
        del value, subject
        raise sealed  # type: ignore[misc]

    def encrypt(self, value: str, *, context: Mapping[str, str], subject: str | None = None) -> str:
        """Encrypt to the text form (URL-safe base64, for TEXT columns)."""
        sealed = self._seal(value, context, subject)
        if type(sealed) is bytes:
            return wire.to_text(sealed)
        del value, subject, context  # the caller's data stays out of this frame
        raise sealed  # type: ignore[misc]

    def encrypt_many(
        self,
        values: Sequence[str],
        *,
        contexts: Sequence[Mapping[str, str]],
        subject: str | None = None,
    ) -> list[str]:
        """Encrypt a batch under one key, reserving its uses once."""
        if len(values) != len(contexts):
            raise InvalidArgument("one context per value")
        sealed = self._seal_many(values, contexts, subject)
        if isinstance(sealed, list):
            return sealed
        del values, subject
        raise sealed

    def _seal_many(
        self,
        values: Sequence[str],
        contexts: Sequence[Mapping[str, str]],
        subject: str | None,
    ) -> list[str] | Exception:
        plaintexts: list[bytes] = []
        try:
            plaintexts = [_plaintext_bytes(value) for value in values]
            aads = [encode_context_keyed(context) for context in contexts]
            if not plaintexts:
                return []
            key_id, aead = self._keyring.encryption_key_for(self._scope(subject), len(plaintexts))
            headers = self._headers
            out = []
            for plaintext, (aad, prefix) in zip(plaintexts, aads, strict=True):
                keys = self._fingerprints.get(prefix) or self._fingerprint(prefix)
                header = headers.get((key_id, keys)) or self._header(key_id, keys)
                nonce = random_nonce()
                out.append(
                    wire.to_text(header + nonce + aead.encrypt(nonce, plaintext, header + aad))
                )
        except Exception as error:  # handed back to the caller, without the frames below
            values = plaintexts = plaintext = subject = None  # type: ignore[assignment]
            return _clean(error)
        return out

    def decrypt(
        self,
        ciphertext: Ciphertext,
        *,
        context: Mapping[str, str],
        actor: str | None = None,
        purpose: str | None = None,
    ) -> str:
        """Decrypt either form, as ``actor`` for ``purpose`` (else those of ``pg.acting``);
        the reveal is recorded before the value is returned.

        Raises:
            AccessDenied: no actor, no purpose, or a purpose not registered or not covering
                the context's ``kind``; nothing is opened.
            DecryptionError: for every way the ciphertext can be wrong (KeyDestroyed when its
                key was shredded).
            EventNotRecorded: the sink could not record the reveal; nothing is returned.
        """
        aad_context = encode_context(context)
        kind = context.get("kind")
        who = self._reveals.admit(
            actor, purpose, action="decrypt", kinds=() if kind is None else (kind,), context=context
        )
        if isinstance(who, Exception):
            del ciphertext
            raise who
        try:
            blob = (
                wire.from_text(ciphertext)
                if type(ciphertext) is str
                else _ciphertext_bytes(ciphertext)
            )
        except BaseException:
            self._reveals.release(who)  # nothing was revealed: it does not count
            raise
        del ciphertext
        result = self._open(blob, aad_context)
        if isinstance(result, DecryptionError):
            self._reveals.release(who)
            raise result
        key_id, plaintext = result
        reported = self._reveals.record(
            AccessEvent(
                "decrypt",
                who[0],
                who[1],
                self._reveals.now(),
                context,
                key_id,
                1,
                kind,
                self._subjects((key_id,)),
            )
        )
        if reported is not None:  # a reveal that cannot be recorded does not happen
            del plaintext, result
            raise reported
        return plaintext

    def decrypt_unrecorded(self, ciphertext: Ciphertext, *, context: Mapping[str, str]) -> str:
        """Decrypt what piiguard sealed for itself (consent evidence), which no caller sees
        as a value: not a reveal, so no actor and no event. Never handed to applications."""
        result = self._open(_ciphertext_bytes(ciphertext), encode_context(context))
        if isinstance(result, DecryptionError):
            raise result
        return result[1]

    def decrypt_many(
        self,
        ciphertexts: Sequence[Ciphertext],
        *,
        contexts: Sequence[Mapping[str, str]],
        actor: str | None = None,
        purpose: str | None = None,
    ) -> list[str]:
        """Decrypt a batch, all or nothing, as ``actor`` for ``purpose``: one event names
        every row revealed (its context) and every subject concerned."""
        if len(ciphertexts) != len(contexts):
            raise InvalidArgument("one context per ciphertext")
        # every input checked before anything is opened: a bad context or ciphertext type
        # fails while no plaintext exists in this frame
        if set(map(type, ciphertexts)) <= {str}:  # texts only: the common case
            blobs = wire.from_texts(ciphertexts)  # type: ignore[arg-type]
        else:
            blobs = [
                wire.from_text(ciphertext)
                if type(ciphertext) is str
                else _ciphertext_bytes(ciphertext)
                for ciphertext in ciphertexts
            ]
        aads = encode_contexts(contexts)
        kinds = tuple(sorted(_values_of(contexts, "kind")))
        who = self._reveals.admit(actor, purpose, action="decrypt", kinds=kinds, count=len(blobs))
        if isinstance(who, Exception):
            blobs.clear()
            raise who
        opened = self._open_many(blobs, aads)
        if isinstance(opened, DecryptionError):
            self._reveals.release(who, len(blobs))  # all or nothing: none revealed
            raise opened
        out, key_ids = opened
        if not out:
            return out
        reported = self._reveals.record(
            AccessEvent(
                "decrypt",
                who[0],
                who[1],
                self._reveals.now(),
                {},
                None,
                len(out),
                kinds[0] if len(kinds) == 1 else None,
                self._subjects(key_ids),
                rows=contexts if isinstance(contexts, Rows) else tuple(contexts),
            )
        )
        if reported is not None:  # a reveal that cannot be recorded does not happen
            out.clear()
            raise reported
        return out

    def _subjects(self, key_ids: Iterable[int]) -> tuple[str, ...]:
        """The pseudonyms of the subjects whose keys these are (subject-scoped keys only)."""
        scope = self._keyring.key_scope
        return tuple(
            sorted(
                {
                    found
                    for key_id in key_ids
                    if (found := scope(key_id)) is not None and found.startswith("subject:")
                }
            )
        )

    def _open_many(
        self, blobs: list[bytes | None], aads: list[bytes]
    ) -> tuple[list[str], set[int]] | DecryptionError:
        """:meth:`_open` of each of a batch, all or nothing, and the key ids used. A
        current-format blob whose key an earlier one of the batch fetched is opened here
        with that key; anything else (the first of each key, an older format, a failure)
        goes through :meth:`_open`, which alone decides what a blob is."""
        out: list[str] = []
        key_ids: set[int] = set()
        fetched: dict[bytes, Aead] = {}  # by a current-format blob's version and key id
        open_one, fetch, first = self._open, self._keyring.decryption_key, self._first_byte
        append, minimum, nonce_end = out.append, _RANDOMIZED_MIN, _V2 + wire.NONCE_SIZE
        for blob, aad in zip(blobs, aads, strict=True):
            if blob is not None and len(blob) >= minimum:
                aead = fetched.get(blob[:_V1])
                if aead is not None:
                    try:
                        append(
                            aead.decrypt(
                                blob[_V2:nonce_end], blob[nonce_end:], blob[:_V2] + aad
                            ).decode()
                        )
                    except (InvalidTag, UnicodeDecodeError, ValueError):
                        pass  # _open below tells a context mismatch from tampering
                    else:
                        continue
            result = open_one(blob, aad)
            if isinstance(result, DecryptionError):
                out.clear()
                return result
            key_ids.add(result[0])
            append(result[1])
            if blob is not None and blob[0] == first and len(blob) >= minimum:
                header = blob[:_V1]
                if header not in fetched:  # the next blobs under this key open here
                    fetched[header] = fetch(result[0])  # cached: opened the blob just now
        return out, key_ids

    def _open(self, blob: bytes | None, aad_context: bytes) -> tuple[int, str] | DecryptionError:
        if blob is None or len(blob) < _V1:
            return DecryptionError()
        first = blob[0]
        key_id = int.from_bytes(blob[1:_V1], "big")
        try:
            if first == self._first_byte and len(blob) >= _RANDOMIZED_MIN:
                aead = self._keyring.decryption_key(key_id)
                try:
                    plaintext = aead.decrypt(
                        blob[_V2 : _V2 + wire.NONCE_SIZE],
                        blob[_V2 + wire.NONCE_SIZE :],
                        blob[:_V2] + aad_context,
                    )
                except InvalidTag:
                    if blob[_V1:_V2] != self._fingerprint(key_prefix(aad_context)):
                        return ContextMismatch()
                    raise
            elif first == self._v1_first_byte and len(blob) >= _V1_RANDOMIZED_MIN:
                aead = self._keyring.decryption_key(key_id)
                plaintext = aead.decrypt(
                    blob[_V1 : _V1 + wire.NONCE_SIZE],
                    blob[_V1 + wire.NONCE_SIZE :],
                    blob[:_V1] + aad_context,
                )
            elif first == self._deterministic_first_byte:
                plaintext = self._open_deterministic(blob, key_id, aad_context)
            else:
                return DecryptionError()
            return key_id, plaintext.decode()
        except DecryptionError as error:  # KeyDestroyed
            return error.with_traceback(None)
        except (InvalidTag, KeyNotFound, UnicodeDecodeError, ValueError):
            return DecryptionError()

    def _root_scope(self, subject: str | None) -> str:
        """Where an equality artefact's root key lives: store-wide, or the subject's scope."""
        return ROOT_SCOPE if subject is None else self._keyring.subject_scope(subject)

    # -- deterministic -------------------------------------------------------------------

    def encrypt_deterministically(
        self, value: str, *, context: Mapping[str, str], subject: str | None = None
    ) -> str:
        """Equal values in equal contexts give equal ciphertexts: joins and lookups work,
        and so does counting equal values. Use it for columns that need equality only.

        The key is derived per context (domain separation per column), so the same value
        in two columns gives unrelated ciphertexts. AES-256-SIV (RFC 5297) in the aes256gcm
        suite; in sm4gcm, SM4-GCM with a nonce derived by HMAC-SM3 from key, context and value.
        With ``subject=``, the key derives from that subject's own root key: equal values
        match only within the subject, and erasing the subject makes the ciphertexts
        unreadable and unlinkable (without it, they keep linking: the erasure receipt says so).
        """
        sealed = self._seal_deterministic(value, context, subject)
        if type(sealed) is str:
            return sealed
        del value, subject
        raise sealed  # type: ignore[misc]

    def _seal_deterministic(
        self, value: object, context: Mapping[str, str], subject: str | None
    ) -> str | Exception:
        plaintext = None
        try:
            plaintext = _plaintext_bytes(value)
            aad_context = encode_context(context)
            key_id, key = self._keyring.derived_key(
                "deterministic", b"det/" + aad_context, 64, self._root_scope(subject)
            )
            header = wire.pack_header(self._deterministic_code, key_id)
            suite = self._keyring.suite
            if suite.name == "aes256gcm":
                return wire.to_text(header + AesSiv(key).encrypt(plaintext, [header, aad_context]))
            nonce = hmac_digest(suite.mac, key[32:], header + aad_context + plaintext)[:12]
            aead = suite.aead(key[: suite.dek_size])
            return wire.to_text(
                header + nonce + aead.encrypt(nonce, plaintext, header + aad_context)
            )
        except Exception as error:  # handed back to the caller, without the frames below
            value = plaintext = subject = None
            return _clean(error)

    def _open_deterministic(self, blob: bytes, key_id: int, aad_context: bytes) -> bytes:
        _, key = self._keyring.derived_key_by_id("deterministic", b"det/" + aad_context, 64, key_id)
        header, body = blob[:_V1], blob[_V1:]
        if self._keyring.suite.name == "aes256gcm":
            return AesSiv(key).decrypt(body, [header, aad_context])
        nonce, sealed = body[:12], body[12:]
        aead = self._keyring.suite.aead(key[: self._keyring.suite.dek_size])
        plaintext = aead.decrypt(nonce, sealed, header + aad_context)
        if not hmac_verify(
            self._keyring.suite.mac, key[32:], header + aad_context + plaintext, nonce
        ):
            raise ValueError
        return plaintext

    # -- blind index ---------------------------------------------------------------------

    def blind_index(
        self, value: str, *, field: str, bits: int | None = None, subject: str | None = None
    ) -> str:
        """A keyed digest for equality search on an encrypted column.

        The key is derived per field, apart from every encryption key, so the same phone
        indexes differently in two fields. ``bits`` truncates (multiple of 8, >= 16): fewer
        bits give collisions on purpose, so an index alone cannot confirm a guess. With
        ``subject=``, the key derives from the subject's own root key: the index finds a value
        among that subject's rows only, and erasing the subject stops it linking.
        """
        refused = _index_refusal(field, bits)
        if refused is not None:
            del value, subject
            raise refused
        digest = self._digest(value, field, subject)
        if type(digest) is bytes:
            return wire.to_text(digest[: (bits or 256) // 8])
        del value, subject
        raise digest  # type: ignore[misc]

    def blind_index_many(
        self,
        values: Sequence[str],
        *,
        field: str,
        bits: int | None = None,
        subject: str | None = None,
    ) -> list[str]:
        """:meth:`blind_index` of each value, the field's key derived once."""
        refused: Exception | None = _index_refusal(field, bits)
        if refused is None:
            digests = self._digests(values, field, subject)
            if isinstance(digests, list):
                size = (bits or 256) // 8
                return [wire.to_text(digest[:size]) for digest in digests]
            refused = digests
        del values, subject
        raise refused

    def _digests(
        self, values: Sequence[str], field: str, subject: str | None
    ) -> list[bytes] | Exception:
        try:
            scope = self._root_scope(subject)
            _, key = self._keyring.derived_key("index", b"index/" + field.encode(), 32, scope)
            mac = self._keyring.suite.mac
            return [hmac_digest(mac, key, _plaintext_bytes(value)) for value in values]
        except Exception as error:  # handed back to the caller, without the frames below
            values = subject = None  # type: ignore[assignment]
            return _clean(error)

    def vault_lookup(self, value: str, *, field: str) -> str:
        """The token vault's lookup digest of a value: a blind index under a root key of
        the vault's own, so that the application's blind indexes (which link a subject's
        values after erasure) are told apart from the vault's (deleted with its entries)."""
        digest = self._digest(value, field, None, purpose="vault")
        if type(digest) is bytes:
            return wire.to_text(digest)
        del value
        raise digest  # type: ignore[misc]

    def _digest(
        self, value: object, field: str, subject: str | None, purpose: str = "index"
    ) -> bytes | Exception:
        try:
            scope = self._root_scope(subject)
            _, key = self._keyring.derived_key(purpose, b"index/" + field.encode(), 32, scope)
            return hmac_digest(self._keyring.suite.mac, key, _plaintext_bytes(value))
        except Exception as error:  # handed back to the caller, without the frames below
            value = subject = None
            return _clean(error)
