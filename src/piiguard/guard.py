"""Guard: the one object an application configures and passes around.

It owns a store, a keyring under a KEK, the encryption recipes and an event sink, and
exposes them as the calls of DESIGN §3. No global state: open as many as you need.

    >>> import tempfile, piiguard as pg
    >>> home = tempfile.mkdtemp()
    >>> with pg.Guard.open(f"sqlite:///{home}/app.db",
    ...                    kek=pg.keys.LocalKEK.generate(f"{home}/kek.key")) as guard:
    ...     ct = guard.encrypt("13812345678", context={"table": "customers", "field": "phone"})
    ...     guard.decrypt(ct, context={"table": "customers", "field": "phone"})
    '13812345678'
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar

from piiguard.consent import ConsentLedger, SubjectSource, requires_consent
from piiguard.crypto import (
    DEFAULT_MAX_USES,
    Envelope,
    EpochReport,
    ErasureLog,
    Keyring,
    RotationReport,
    get_suite,
)
from piiguard.crypto.envelope import Ciphertext
from piiguard.errors import InvalidArgument, boundary, contract_error, require_subject
from piiguard.events import EventSink, NullSink
from piiguard.keys import EpochKeyHolder, KEKProvider, LocalKEK
from piiguard.retention import Retention
from piiguard.store import Store
from piiguard.subjects import ErasureReceipt, Subjects
from piiguard.tokens import Tokens, TokenVault

__all__ = ["Guard", "KeyManager"]

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_HOME = Path(".piiguard")
_EVIDENCE_CONTEXT = {"piiguard": "consent-evidence"}


def _scrubbed(call: Callable[..., R], *args: Any) -> R | Exception:
    """``call(*args)``, or the error it raised without its traceback: the frames below hold
    the subject id (which may be a phone or an ID number), and error trackers record them."""
    try:
        return call(*args)
    except Exception as error:
        args = ()
        return error.with_traceback(None)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class KeyManager:
    """Key operations: epochs, KEK rotation and key statistics (``guard.keys``)."""

    __slots__ = ("_keyring",)

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    @boundary
    def rotate_kek(self, new_kek: KEKProvider, *, batch_size: int = 500) -> RotationReport:
        """Rewrap every data key under ``new_kek``; old ciphertexts keep decrypting.

        Resumable: after a crash, open the Guard with either KEK (the other in
        ``previous_keks``) and call it again.
        """
        return self._keyring.rotate_kek(new_kek, batch_size=batch_size)

    @boundary
    def advance_epoch(
        self, *, batch_size: int = 1000, progress: Callable[[int], object] | None = None
    ) -> EpochReport:
        """Make a new epoch key, rewrap every live data key under it, destroy the old one.

        After it returns, no copy of the store taken earlier opens the data of a subject
        shredded earlier: its keys are wrapped under an epoch that no longer exists. Safe
        while other Guards run; after a crash, call it again.
        """
        return self._keyring.advance_epoch(batch_size=batch_size, progress=progress)

    @boundary
    def counts(self) -> Mapping[str, int]:
        """How many data keys are active, retired and destroyed."""
        return self._keyring.key_counts()


class Guard:
    """Encryption, blind indexes and erasure of PII fields, over one store.

    Thread-safe. Use :meth:`open`; close it (or use it as a context manager) when done.
    """

    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        events: EventSink,
        clock: Callable[[], datetime],
        key_epoch: timedelta | None = None,
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._envelope = Envelope(keyring, events, clock)
        self._closed = False
        self._close_lock = threading.Lock()
        self.keys = KeyManager(keyring)
        self.tokens = Tokens(keyring)
        self.vault = TokenVault(store, keyring, self._envelope, events, clock)
        self.consent = ConsentLedger(
            store,
            pseudonym=keyring.subject_scope,
            bulk_pseudonym=keyring.subject_scope_function,
            seal=lambda text, subject, event: self._envelope.encrypt(
                text, context={**_EVIDENCE_CONTEXT, **event}, subject=subject
            ),
            unseal=lambda sealed, event: self._envelope.decrypt(
                sealed, context={**_EVIDENCE_CONTEXT, **event}
            ),
            clock=clock,
        )
        self.retention = Retention(
            store,
            pseudonym=keyring.subject_scope,
            shred_scope=keyring.shred,
            clock=clock,
            deferred_shreds=lambda now: self.subjects.run_deferred(now),  # noqa: PLW0108 - made below
            maintenance=(
                None
                if key_epoch is None
                else lambda now: keyring.advance_epoch_if_due(now, key_epoch) is not None
            ),
        )
        self.subjects = Subjects(
            store,
            keys=keyring,
            rule=self.retention,
            records=self.retention.participant,
            parts=(self.vault, self.consent),
            clock=clock,
        )

    # -- encryption: declared here (so help(Guard) and the API docs show them), done by the
    # envelope; each is a boundary: errors come out in the tree, without the caller's values

    def encrypt(self, value: str, *, context: Mapping[str, str], subject: str | None = None) -> str:
        """Encrypt ``value`` to a text ciphertext bound to ``context`` (its table and column).

        With ``subject=``, the data key is the subject's own: ``erase``/``shred`` make every
        such ciphertext unreadable. See docs/encryption.md.
        """
        # the boundary written out (the hottest call: a wrapper's frame costs 5%); the
        # envelope hands back its errors clean, so only this frame's locals are dropped
        try:
            return self._envelope.encrypt(value, context=context, subject=subject)
        except Exception as error:
            failure = contract_error(error)
        del value, context, subject
        raise failure

    @boundary
    def encrypt_bytes(
        self, value: str, *, context: Mapping[str, str], subject: str | None = None
    ) -> bytes:
        """:meth:`encrypt` to the bytes form (for BLOB/BYTEA columns)."""
        return self._envelope.encrypt_bytes(value, context=context, subject=subject)

    @boundary
    def encrypt_many(
        self,
        values: Sequence[str],
        *,
        contexts: Sequence[Mapping[str, str]],
        subject: str | None = None,
    ) -> list[str]:
        """Encrypt a batch under one data key, one context per value."""
        return self._envelope.encrypt_many(values, contexts=contexts, subject=subject)

    @boundary
    def decrypt(
        self,
        ciphertext: Ciphertext,
        *,
        context: Mapping[str, str],
        actor: str | None = None,
        purpose: str | None = None,
    ) -> str:
        """The value of a ciphertext, in the context it was encrypted in.

        Raises:
            DecryptionError: for every way the ciphertext can be wrong (``KeyDestroyed`` when
                its subject was erased).
        """
        return self._envelope.decrypt(ciphertext, context=context, actor=actor, purpose=purpose)

    @boundary
    def decrypt_many(
        self,
        ciphertexts: Sequence[Ciphertext],
        *,
        contexts: Sequence[Mapping[str, str]],
        actor: str | None = None,
        purpose: str | None = None,
    ) -> list[str]:
        """Decrypt a batch; one access event for the whole batch when an actor is given."""
        return self._envelope.decrypt_many(
            ciphertexts, contexts=contexts, actor=actor, purpose=purpose
        )

    @boundary
    def encrypt_deterministically(
        self, value: str, *, context: Mapping[str, str], subject: str | None = None
    ) -> str:
        """Equal values in equal contexts give equal ciphertexts (for equality joins); this
        reveals which rows are equal. Prefer :meth:`encrypt` plus :meth:`blind_index`."""
        return self._envelope.encrypt_deterministically(value, context=context, subject=subject)

    @boundary
    def blind_index(
        self, value: str, *, field: str, bits: int | None = None, subject: str | None = None
    ) -> str:
        """A keyed digest for equality search on an encrypted column, keyed per ``field``.

        ``bits`` truncates (a multiple of 8, 16 to 256). See docs/encryption.md.
        """
        return self._envelope.blind_index(value, field=field, bits=bits, subject=subject)

    @boundary
    def blind_index_many(
        self,
        values: Sequence[str],
        *,
        field: str,
        bits: int | None = None,
        subject: str | None = None,
    ) -> list[str]:
        """:meth:`blind_index` of each value, with the field's key derived once."""
        return self._envelope.blind_index_many(values, field=field, bits=bits, subject=subject)

    @classmethod
    @boundary
    def open(
        cls,
        url: str | None = None,
        *,
        kek: KEKProvider | None = None,
        suite: str = "aes256gcm",
        schema: str | None = None,
        clock: Callable[[], datetime] | None = None,
        events: EventSink | None = None,
        previous_keks: Sequence[KEKProvider] = (),
        dek_max_uses: int = DEFAULT_MAX_USES,
        dek_max_age: timedelta = timedelta(minutes=15),
        epoch_keys: EpochKeyHolder | None = None,
        key_epoch: timedelta | None = timedelta(days=1),
        erasure_log: str | Path | None = None,
    ) -> Guard:
        """Open a Guard on a store, creating and migrating piiguard's tables.

        Args:
            url: an SQLAlchemy URL; default ``sqlite:///.piiguard/piiguard.db``.
            kek: the key-encryption key; default (only with no url) a LocalKEK in
                ``.piiguard/kek.key``, generated on first open with mode 0600.
            suite: ``"aes256gcm"`` (default) or ``"sm4gcm"`` (国密: SM4-GCM, HMAC-SM3).
            schema: a PostgreSQL schema for piiguard's tables.
            clock: returns the current time (timezone-aware); injectable for tests.
            events: where reveals are reported; default: dropped.
            previous_keks: KEKs still accepted for unwrapping (during a rotation).
            dek_max_uses: encryptions per data key before it retires (at most 2**32).
            dek_max_age: how long a plaintext data key stays in memory.
            epoch_keys: where epoch objects live; default the KEK's own (an ``.epochs`` file
                beside a LocalKEK's key file, token objects in the HSM, KMS keys).
            key_epoch: how old the epoch may get before ``retention.sweep()`` advances it
                (default one day; None: only ``guard.keys.advance_epoch()`` does).
            erasure_log: a file outside the store's backups that names every shredded
                subject; on open, subjects named there whose keys are live (a restored
                backup) are shredded again before ``open`` returns.

        Raises:
            ValueError: an unknown suite, or a url given without a kek.
            StoreError: the store cannot be opened.
        """
        suite_spec = get_suite(suite)
        if url is None:
            DEFAULT_HOME.mkdir(mode=0o700, exist_ok=True)
            url = f"sqlite:///{DEFAULT_HOME / 'piiguard.db'}"
            if kek is None:
                key_file = DEFAULT_HOME / "kek.key"
                kek = (
                    LocalKEK.from_file(key_file)
                    if key_file.exists()
                    else LocalKEK.generate(key_file)
                )
        elif kek is None:
            raise InvalidArgument("a store url needs a kek: where are its data keys wrapped?")
        store = Store.open(url, schema=schema)
        keyring = Keyring(
            store,
            kek,
            suite_spec,
            clock=clock or _utc_now,
            max_uses=dek_max_uses,
            max_age=dek_max_age,
            previous_keks=previous_keks,
            epoch_keys=epoch_keys,
            erasure_log=ErasureLog(erasure_log) if erasure_log is not None else None,
        )
        keyring.replay_erasures()
        return cls(store, keyring, events or NullSink(), clock or _utc_now, key_epoch)

    def requires_consent(
        self, *purposes: str, subject: SubjectSource = "user_id"
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorate a handler (sync or async) so it runs only with the subject's consent.

        Args:
            purposes: the registered purposes the handler needs.
            subject: the parameter holding the subject id (default ``user_id``), a callable
                given the call's arguments, or a ContextVar.

        Raises (at call time):
            ConsentRequired: naming the purposes without consent.
        """
        return requires_consent(self.consent.lacking, purposes, subject)

    @boundary
    def erase(self, subject: str, reason: str = "request") -> ErasureReceipt:
        """Erase a subject from every participant: tracked records (through the hooks, or
        frozen for a legal minimum or a hold), the application's tables
        (``@guard.subjects.eraser``), vault entries, consents; then the keys, now or when
        nothing blocks them. Returns the persisted receipt; run it again to resume."""
        refused = require_subject(subject)
        if isinstance(refused, InvalidArgument):
            del subject  # a value passed by mistake stays out of this frame
            raise refused
        outcome = _scrubbed(self.subjects.erase, subject, reason)
        if isinstance(outcome, ErasureReceipt):
            return outcome
        del subject
        raise outcome

    @boundary
    def export(self, subject: str) -> dict[str, Any]:
        """Everything piiguard and the registered exporters hold on a subject (PIPL Art. 45)."""
        refused = require_subject(subject)
        if isinstance(refused, InvalidArgument):
            del subject
            raise refused
        outcome = _scrubbed(self.subjects.export, subject)
        if isinstance(outcome, dict):
            return outcome
        del subject
        raise outcome

    @boundary
    def erasure_receipts(self, subject: str) -> list[Mapping[str, Any]]:
        """The persisted receipts of a subject's erasure requests, oldest first."""
        return self.subjects.receipts(subject)

    @boundary
    def shred(self, subject: str) -> int:
        """Destroy every data key of a subject now; return how many (``erase`` does more,
        and respects holds: prefer it).

        Every ciphertext encrypted with ``subject=`` that subject then raises
        :class:`~piiguard.KeyDestroyed`; copies of the store taken earlier do so once the
        key epoch advances (``guard.keys.advance_epoch()``, or a due sweep). New data for
        the subject gets a new key.
        """
        outcome = _scrubbed(
            lambda who: self._keyring.shred(self._keyring.subject_scope(who)), subject
        )
        if isinstance(outcome, int):
            return outcome
        del subject
        raise outcome

    @property
    def store(self) -> Store:
        """The storage layer (for the later parts and for operators)."""
        return self._store

    def close(self) -> None:
        """Release the store's connections. Idempotent."""
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self._keyring.close()
                self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        url = self._store.engine.url.render_as_string(hide_password=True)
        return f"Guard(suite={self._keyring.suite.name!r}, store={url!r})"
