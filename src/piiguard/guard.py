"""Guard: the one object an application configures and passes around.

It owns a store, a keyring under a KEK, the encryption recipes and an event sink, and
exposes them as the calls of DESIGN §3. No global state: open as many as you need.

    >>> import tempfile, piiguard as pg
    >>> home = tempfile.mkdtemp()
    >>> with pg.Guard.open(f"sqlite:///{home}/app.db",
    ...                    kek=pg.keys.LocalKEK.generate(f"{home}/kek.key")) as guard:
    ...     _ = guard.consent.register(pg.Purpose("after_sales", basis="contract", kinds={"phone"}))
    ...     ct = guard.encrypt("13812345678", context={"table": "customers", "field": "phone"})
    ...     guard.decrypt(ct, context={"table": "customers", "field": "phone"},
    ...                   actor="cs-7", purpose="after_sales")
    '13812345678'
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar

import structlog
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from piiguard.aio import DEFAULT_THREADS, AsyncFace
from piiguard.audit import Access, AccessPolicy, AccessWatch, AuditLog, Role, Watcher
from piiguard.audit.log import DEFAULT_RETENTION, holds_pii, reads_pii, shown_actor
from piiguard.audit.reveal import show
from piiguard.consent import ConsentLedger, SubjectSource, requires_consent
from piiguard.crypto import (
    DEFAULT_MAX_USES,
    Envelope,
    EpochReport,
    ErasureLog,
    Keyring,
    RotationReport,
    get_suite,
    wire,
)
from piiguard.crypto.envelope import Ciphertext
from piiguard.errors import (
    AuditLogBroken,
    InvalidArgument,
    KeyDestroyed,
    KeyProviderError,
    StoreError,
    WrongKEK,
    boundary,
    contract_error,
    require_subject,
)
from piiguard.events import (
    AccessEvent,
    EventSink,
    Reveals,
    acting,
    actor_name,
    current_acting,
    identify,
    name_refusal,
)
from piiguard.keys import EpochKeyHolder, KEKProvider, LocalKEK
from piiguard.kinds import PIIKind, get_kind, normalise
from piiguard.masking import masker_for
from piiguard.records import Records
from piiguard.retention import Retention
from piiguard.settings import read_settings
from piiguard.sharing import Sharing
from piiguard.sharing.share import make_shares
from piiguard.store import Store, joined
from piiguard.subjects import ErasureReceipt, RequestDeadline, Requests, SubjectRequest, Subjects
from piiguard.tokens import Tokens, TokenVault

__all__ = ["Guard", "KeyManager"]
#: Root keys of the writes that join an application's transaction (subject pseudonyms,
#: audit MACs, blind indexes, vault lookups, tokens).
_BOUND_ROOTS = ("pseudonym", "audit", "index", "vault", "token")

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_HOME = Path(".piiguard")
#: piiguard's own operations log (structlog): what was done and by whom, never to whom.
_log = structlog.get_logger("piiguard")
_EVIDENCE_CONTEXT = {"piiguard": "consent-evidence"}
_REQUEST_CONTEXT = {"piiguard": "subject-request"}


def _scrubbed(call: Callable[..., R], *args: Any) -> R | Exception:
    """``call(*args)``, or the error it raised without its traceback: the frames below hold
    the subject id (which may be a phone or an ID number), and error trackers record them."""
    try:
        return call(*args)
    except Exception as error:
        args = ()
        return error.with_traceback(None)


def _request_work(guard: Guard) -> dict[str, Any]:
    """What fulfils each kind of subject request: (what the subject receives, a PII-free
    receipt), from the parts that do the work."""

    def access(subject: str, request: SubjectRequest, given: Mapping[str, Any]) -> Any:
        copy = guard.export(subject, actor=given.get("actor"), purpose=given.get("purpose"))
        parts = sorted(k for k in copy if k not in {"subject", "format", "version"})
        return copy, {"parts": parts, "unavailable": copy["unavailable"]}

    def delete(subject: str, request: SubjectRequest, given: Mapping[str, Any]) -> Any:
        receipt = guard.erase(subject, reason="request")
        done = {"erasure_receipt": receipt.receipt_id, "completed": receipt.completed}
        return done, done

    def withdraw(subject: str, request: SubjectRequest, given: Mapping[str, Any]) -> Any:
        named = given.get("purposes")
        if named is None:
            withdrawn = guard.consent.withdraw_all(subject)
        else:
            if isinstance(named, str | bytes) or not isinstance(named, Iterable):
                raise InvalidArgument("purposes is a list of purpose names")
            names = list(named)  # a generator is read once, here
            if not names or not all(isinstance(p, str) for p in names):
                raise InvalidArgument("purposes is a non-empty list of purpose names")
            for purpose in names:  # every one registered, before any is withdrawn
                guard.consent.purpose(purpose)
            for purpose in names:
                guard.consent.withdraw(subject, purpose)
            withdrawn = sorted(set(names))
        return {"withdrawn": withdrawn}, {"withdrawn": withdrawn}

    def correct(subject: str, request: SubjectRequest, given: Mapping[str, Any]) -> Any:
        counts = guard.subjects.correct(subject, given.get("changes") or {})
        return {"corrected": counts}, {"corrected": counts}

    def explain(subject: str, request: SubjectRequest, given: Mapping[str, Any]) -> Any:
        purposes = [
            {"name": p.name, "basis": p.basis, "kinds": sorted(p.kinds), "separate": p.separate}
            for p, _ in guard.consent.catalog.names()
        ]
        recipients = sorted({s.recipient for s in guard.sharing.recipients_of(subject)})
        answer = {"purposes": purposes, "recipients": recipients}
        return answer, {"purposes": len(purposes), "recipients": len(recipients)}

    def acting_for(work: Callable[..., Any]) -> Callable[..., Any]:
        """The work done as the request's actor (every operation it records names them),
        for the purpose given (an export needs a registered one)."""

        def run(subject: str, request: SubjectRequest, given: Mapping[str, Any]) -> Any:
            with acting(actor=given["actor"], purpose=given.get("purpose") or "subject_request"):
                return work(subject, request, given)

        return run

    return {
        "access": acting_for(access),
        "copy": acting_for(access),
        "delete": acting_for(delete),
        "withdraw": acting_for(withdraw),
        "correct": acting_for(correct),
        "explain": acting_for(explain),
    }


def _actor_refusal(actor: str) -> Exception | None:
    """Why ``actor`` cannot be recorded as who did something: the audit log's rule (a name
    that holds personal information is refused), checked before the work is done."""
    refused = name_refusal("actor", actor)
    if refused is not None:
        return refused
    if holds_pii(actor_name(actor)):
        return InvalidArgument("an actor is a staff or service id, not personal information")
    return None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _Both:
    """The audit log, then the application's own sink: an event counts as kept only when
    both kept it."""

    __slots__ = ("_first", "_second")

    def __init__(self, first: EventSink, second: EventSink) -> None:
        self._first = first
        self._second = second

    def record(self, event: AccessEvent) -> None:
        self._first.record(event)
        self._second.record(event)


def _newest_context(
    audit: AuditLog, action: str, recipient: str
) -> tuple[Mapping[str, Any], datetime] | None:
    """The stored context and time of the newest ``action`` event naming ``recipient``."""
    event = audit.newest(action, {"recipient": recipient})
    return None if event is None else (event.detail.get("context") or {}, event.at)


def _operation(
    reveals: Reveals,
    action: str,
    subjects: tuple[str, ...] = (),
    count: int = 1,
    purpose: str | None = None,
    *,
    actor: str | None = None,
    context: Mapping[str, str] | None = None,
) -> None:
    """Record an operation that reveals nothing (erase, shred, rotation, epoch advance, a
    consent change): by the actor of ``pg.acting`` when one is set, else ``unnamed``. The
    operation is done; if its event cannot be recorded, the caller is told so."""
    current = current_acting()
    named, acting_purpose = ("unnamed", None) if current is None else current
    actor = actor or named
    # piiguard's own log: no subject, no value, and no actor that is personal information
    _log.info(action, actor=shown_actor(actor), count=count)
    failure = reveals.record(
        AccessEvent(
            action,
            actor,
            purpose or acting_purpose,
            reveals.now(),
            context or {},
            count=count,
            subjects=subjects,
        )
    )
    if failure is not None:
        raise failure


def _opened(reveals: Reveals, actor: str | None, purpose: str, pseudonym: str) -> None:
    """Record that ``actor`` (else the actor of ``pg.acting``) opens a subject's consent
    proof, or refuse (no actor, or the access watch stopped the actor): the evidence in it
    is the subject's information."""
    refused = name_refusal("purpose", purpose)
    if refused is not None:
        raise refused
    current = current_acting()
    named = actor if actor is not None else (current[0] if current is not None else None)
    who = identify(named, "consent_proof")
    if isinstance(who, Exception):
        raise who
    context = {"purpose": purpose}
    stopped = None if reveals.gate is None else reveals.gate.check(who[0], None, 1)
    if stopped is not None:
        raise reveals.refuse(who, stopped, action="consent_proof", context=context)
    event = AccessEvent(
        "consent_proof", who[0], None, reveals.now(), context, subjects=(pseudonym,)
    )
    failure = reveals.record(event)
    if failure is not None:
        raise failure


def _key_id_of(ciphertext: str | bytes) -> int:
    """The data key id a randomised ciphertext names (bytes 1-4 of the wire format)."""
    blob = wire.from_text(ciphertext) if isinstance(ciphertext, str) else ciphertext
    if not isinstance(blob, bytes) or len(blob) < 5:
        raise InvalidArgument("not a piiguard ciphertext")
    return int.from_bytes(blob[1:5], "big")


class KeyManager:
    """Key operations: epochs, KEK rotation and key statistics (``guard.keys``)."""

    __slots__ = ("_keyring", "_reveals")

    def __init__(self, keyring: Keyring, reveals: Reveals) -> None:
        self._keyring = keyring
        self._reveals = reveals

    @boundary
    def rotate_kek(self, new_kek: KEKProvider, *, batch_size: int = 500) -> RotationReport:
        """Rewrap every data key under ``new_kek``; old ciphertexts keep decrypting.

        Resumable: after a crash, open the Guard with either KEK (the other in
        ``previous_keks``) and call it again.
        """
        report = self._keyring.rotate_kek(new_kek, batch_size=batch_size)
        _operation(self._reveals, "rotate_kek")
        return report

    @boundary
    def advance_epoch(
        self, *, batch_size: int = 1000, progress: Callable[[int], object] | None = None
    ) -> EpochReport:
        """Make a new epoch key, rewrap every live data key under it, destroy the old one.

        After it returns, no copy of the store taken earlier opens the data of a subject
        shredded earlier: its keys are wrapped under an epoch that no longer exists. Safe
        while other Guards run; after a crash, call it again.
        """
        report = self._keyring.advance_epoch(batch_size=batch_size, progress=progress)
        _operation(self._reveals, "advance_epoch")
        return report

    @boundary
    def counts(self) -> Mapping[str, int]:
        """How many data keys are active, retired and destroyed."""
        return self._keyring.key_counts()

    @boundary
    def sealed_for(self, ciphertext: str | bytes, subject: str) -> bool:
        """Whether a (randomised) ciphertext was encrypted under ``subject``'s own keys (a
        value left under another subject's keys would escape this subject's erasure).

        Raises:
            InvalidArgument: not a piiguard ciphertext, or not a subject id.
        """
        key_id = _key_id_of(ciphertext)
        self._keyring.decryption_key(key_id)  # in memory, with its scope (KeyDestroyed)
        return self._keyring.key_scope(key_id) == self._keyring.subject_scope(subject)

    @boundary
    def destroyed(self, ciphertext: str | bytes) -> bool:
        """Whether the data key of a (randomised) ciphertext was destroyed: its subject was
        erased, so it opens nowhere any more. Reveals nothing and records nothing.

        Raises:
            InvalidArgument: not a piiguard ciphertext.
        """
        try:
            self._keyring.decryption_key(_key_id_of(ciphertext))
        except KeyDestroyed:
            return True
        return False


class Guard:
    """Encryption, blind indexes and erasure of PII fields, over one store.

    Thread-safe. Use :meth:`open`; close it (or use it as a context manager) when done.
    """

    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        events: EventSink | None,
        clock: Callable[[], datetime],
        *,
        key_epoch: timedelta | None = None,
        audit_retention: timedelta = DEFAULT_RETENTION,
        access: AccessPolicy | None = None,
        watch: AccessWatch | None = None,
        request_deadline: RequestDeadline | None = None,
        require_assessments: bool = True,
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._closed = False
        self._close_lock = threading.Lock()
        self._aio: AsyncFace | None = None
        #: The keyed, hash-chained audit log: every reveal and operation is recorded here
        #: before it returns.
        self.audit = AuditLog(
            store,
            chain_mac=lambda: keyring.mac("audit", b"audit/chain"),
            context_mac=lambda: keyring.mac("audit", b"audit/context"),
            rows_sealer=lambda key_id: keyring.sealer("audit", b"audit/rows", key_id),
            checkpoint_mac=lambda: keyring.mac("audit", b"audit/checkpoint"),
            clock=clock,
            pseudonym=keyring.subject_scope,
            retention=audit_retention,
            pruned=lambda count: _operation(self._reveals, "audit_prune", count=count),
        )
        self.consent = ConsentLedger(
            store,
            pseudonym=keyring.subject_scope,
            bulk_pseudonym=keyring.subject_scope_function,
            seal=lambda text, subject, event: self._envelope.encrypt(
                text, context={**_EVIDENCE_CONTEXT, **event}, subject=subject
            ),
            unseal=lambda sealed, event: self._envelope.decrypt_unrecorded(
                sealed, context={**_EVIDENCE_CONTEXT, **event}
            ),
            clock=clock,
            changed=lambda action, purpose, pseudonym: _operation(
                self._reveals, f"consent_{action}", (pseudonym,), purpose=purpose
            ),
            opened=lambda actor, purpose, pseudonym: _opened(
                self._reveals, actor, purpose, pseudonym
            ),
            assessed=(lambda purpose, needs: self.records.assessed(purpose, needs))  # noqa: PLW0108 - made below
            if require_assessments
            else None,
        )
        sink: EventSink = self.audit if events is None else _Both(self.audit, events)
        self._reveals = Reveals(sink, self.consent.purpose_kinds, clock)
        #: The access policy and just-in-time grants (``guard.access.grant``).
        self.access = Access(
            store,
            self._reveals,
            clock,
            access,
            mac=lambda: keyring.mac("audit", b"access/grants"),
        )
        #: The access watch over each actor's reveals (off unless ``watch=`` is given).
        self.watch = Watcher(
            store, watch, clock, self._reveals.record, roles=self.access.policy.roles
        )
        if watch is not None:
            self._reveals.gate = self.watch
        self._envelope = Envelope(keyring, self._reveals)
        self.keys = KeyManager(keyring, self._reveals)
        self.tokens = Tokens(keyring, self._reveals)
        self.vault = TokenVault(store, keyring, self._envelope, self._reveals, clock)
        #: Recipients, the record of shares and the cross-border report (``guard.share``).
        self.sharing = Sharing(
            store,
            consent=self.consent,
            pseudonym=keyring.subject_scope,
            clock=clock,
            mac=lambda: keyring.mac("audit", b"sharing/recipients"),
            recorded=lambda action, context: _operation(self._reveals, action, context=context),
            registered=lambda name: _newest_context(self.audit, "recipient_register", name),
            stored=self.audit.stored_form,
            assessed=(lambda purpose, needs: self.records.assessed(purpose, needs))  # noqa: PLW0108 - made below
            if require_assessments
            else None,
        )
        self.retention = Retention(
            store,
            pseudonym=keyring.subject_scope,
            shred_scope=keyring.shred,
            clock=clock,
            deferred_shreds=lambda now: self.subjects.run_deferred(now),  # noqa: PLW0108 - made below
            maintenance=lambda now: self._maintain(now, key_epoch),
        )
        #: Subject requests with due dates (``guard.requests.open/fulfil/refuse/overdue``).
        self.requests = Requests(
            store,
            pseudonym=keyring.subject_scope,
            clock=clock,
            work=_request_work(self),
            recorded=lambda action, pseudonym, actor: _operation(
                self._reveals, action, (pseudonym,), actor=actor
            ),
            seal=lambda subject, bound: self._envelope.encrypt(
                subject, context={**_REQUEST_CONTEXT, **bound}, subject=subject
            ),
            unseal=lambda sealed, bound: self._envelope.decrypt_unrecorded(
                sealed, context={**_REQUEST_CONTEXT, **bound}
            ),
            actor_refusal=_actor_refusal,
            deadline=request_deadline,
        )
        self.subjects = Subjects(
            store,
            keys=keyring,
            rule=self.retention,
            records=self.retention.participant,
            parts=(self.vault, self.consent, self.sharing, self.requests),
            clock=clock,
        )
        #: The record of processing and the impact assessments (``guard.records``).
        self.records = Records(
            store,
            consent=self.consent,
            sharing=self.sharing,
            policies=self.retention.policies,
            clock=clock,
            mac=lambda: keyring.mac("audit", b"records/assessments"),
            recorded=lambda action, context: _operation(self._reveals, action, context=context),
            name_refusal=_actor_refusal,
            made=lambda: {
                str(e.detail["context"].get("assessment"))
                for e in self.audit.events(action="assessment")
                if isinstance(e.detail.get("context"), dict)
            },
            stored=self.audit.stored_form,
        )
        #: Subject requests with due dates (``guard.requests.open/fulfil/refuse/overdue``).

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
        """The value of a ciphertext, in the context it was encrypted in, revealed to
        ``actor`` for ``purpose`` (else those of ``pg.acting``) and recorded in the audit log
        before it is returned.

        A context with a ``kind`` key names the kind revealed: the purpose must cover it.

        Raises:
            AccessDenied: no actor, no purpose, or a purpose not registered (or not covering
                the context's kind); nothing is opened.
            DecryptionError: for every way the ciphertext can be wrong (``KeyDestroyed`` when
                its subject was erased).
            EventNotRecorded: the audit log could not record the reveal; nothing is returned.
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
        """Decrypt a batch, all or nothing, as :meth:`decrypt` does: one audit event names
        every row revealed."""
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
        self,
        value: str,
        *,
        field: str,
        kind: str | PIIKind | None = None,
        bits: int | None = None,
        subject: str | None = None,
    ) -> str:
        """A keyed digest for equality search on an encrypted column, keyed per ``field``.

        With ``kind``, the value is first checked and normalised as that kind (``pg.normalise``)
        so that ``"138 1234 5678"``, ``"13812345678"`` and ``"+8613812345678"`` find the same
        row; a value not of the kind raises ``InvalidPII``. Use the same ``kind`` when storing
        and when searching. ``bits`` truncates (a multiple of 8, 16 to 256). See
        docs/encryption.md.
        """
        if kind is not None:
            value = normalise(value, kind)
        return self._envelope.blind_index(value, field=field, bits=bits, subject=subject)

    @boundary
    def blind_index_many(
        self,
        values: Sequence[str],
        *,
        field: str,
        kind: str | PIIKind | None = None,
        bits: int | None = None,
        subject: str | None = None,
    ) -> list[str]:
        """:meth:`blind_index` of each value, with the field's key derived once."""
        if kind is not None:
            if not isinstance(values, list | tuple):
                raise InvalidArgument("values is a list or tuple of str")
            values = [normalise(value, kind) for value in values]
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
        audit_retention: timedelta = DEFAULT_RETENTION,
        access: AccessPolicy | None = None,
        watch: AccessWatch | None = None,
        request_deadline: RequestDeadline | None = None,
        require_assessments: bool = True,
    ) -> Guard:
        """Open a Guard on a store, creating and migrating piiguard's tables.

        Args:
            url: an SQLAlchemy URL; default ``sqlite:///.piiguard/piiguard.db``.
            kek: the key-encryption key; default (only with no url) a LocalKEK in
                ``.piiguard/kek.key``, generated on first open with mode 0600.
            suite: ``"aes256gcm"`` (default) or ``"sm4gcm"`` (国密: SM4-GCM, HMAC-SM3).
            schema: a PostgreSQL schema for piiguard's tables.
            clock: returns the current time (timezone-aware); injectable for tests.
            events: a sink that also receives every event, after the audit log kept it (a
                SIEM forwarder); if it raises, the reveal fails like an audit failure.
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
            audit_retention: how long audit events are kept before a sweep (or
                ``guard.audit.prune()``) removes them; default 180 days.
            access: the :class:`~piiguard.AccessPolicy` ``guard.reveal`` applies (without
                one, every ``reveal`` is refused).
            watch: an :class:`~piiguard.AccessWatch` over each actor's reveals (off by
                default).
            request_deadline: how long a subject request may take (a
                :class:`~piiguard.RequestDeadline`; default 30 calendar days, GB/T
                35273-2020 §8.7).
            require_assessments: refuse a share, and a consent grant for a purpose that
                covers sensitive kinds, while the purpose has no impact assessment
                (``guard.records.assessment``; PIPL Art. 55); default on.

        Raises:
            ValueError: an unknown suite, or a url given without a kek.
            StoreError: the store cannot be opened.
            WrongKEK: the KEK (with ``previous_keks`` and ``epoch_keys``) does not open the
                store's keys.
        """
        suite_spec = get_suite(suite)
        if url is None:
            DEFAULT_HOME.mkdir(mode=0o700, exist_ok=True)
            url = f"sqlite:///{DEFAULT_HOME / 'piiguard.db'}"
            if kek is None:
                key_file = DEFAULT_HOME / "kek.key"
                kek = LocalKEK.load_or_generate(key_file)
        elif kek is None:
            raise InvalidArgument("a store url needs a kek: where are its data keys wrapped?")
        store = Store.open(url, schema=schema)
        keyring: Keyring | None = None
        try:
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
            try:  # a wrong KEK fails here, not at the first request
                if not keyring.check_kek():
                    _log.warning(
                        "epoch_object_missing",
                        hint="a copy from before an epoch advance, or a key file restored "
                        "without its .epochs file: its values read as destroyed, and epoch "
                        "advances are refused until the holder has the object again",
                    )
            except WrongKEK:
                raise
            except KeyProviderError as error:  # an outage says nothing of the key: go on
                _log.warning("kek_check_deferred", error=type(error).__name__)
            keyring.replay_erasures()
            return cls(
                store,
                keyring,
                events,
                clock or _utc_now,
                key_epoch=key_epoch,
                audit_retention=audit_retention,
                access=access,
                watch=watch,
                request_deadline=request_deadline,
                require_assessments=require_assessments,
            )
        except BaseException:
            if keyring is not None:  # a Guard that is not made leaves no connection behind
                keyring.close()
            store.close()
            raise

    @classmethod
    @boundary
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> Guard:
        """Open a Guard configured by ``PIIGUARD_*`` variables (``os.environ`` by default):
        ``PIIGUARD_STORE_URL``, ``PIIGUARD_KEK`` (``file:PATH``, ``pkcs11:token=...;object=...``
        with ``PIIGUARD_PKCS11_PIN``, ``aws-kms:ARN``), ``PIIGUARD_PREVIOUS_KEKS``,
        ``PIIGUARD_SCHEMA``, ``PIIGUARD_SUITE``, ``PIIGUARD_ERASURE_LOG`` (docs/configuration.md).
        ``options`` go to :meth:`open` and win over the environment.

        Raises:
            InvalidArgument: a variable is missing or malformed (named, never its value).
            WrongKEK: the KEK does not open the store's keys.
        """
        settings = read_settings(environ, given=frozenset(options) & {"url", "kek"})
        suite = options.pop("suite", settings.suite)
        try:
            get_suite(suite)
        except ValueError:
            raise InvalidArgument("PIIGUARD_SUITE names no suite: aes256gcm or sm4gcm") from None
        chosen: dict[str, Any] = {
            "kek": settings.kek,
            "previous_keks": settings.previous_keks,
            "schema": settings.schema,
            "erasure_log": settings.erasure_log,
        }
        chosen.update(options)
        url = chosen.pop("url", settings.url)
        if "schema" not in options and Store.schema_refusal(url, settings.schema) is not None:
            raise InvalidArgument(
                "PIIGUARD_SCHEMA is a lower-case identifier, only for a PostgreSQL store"
            )
        try:
            return cls.open(url, suite=suite, **chosen)
        except StoreError as error:
            if "url" not in options and type(error) is StoreError:  # say where the URL came from
                error.args = (f"{error.args[0]} (PIIGUARD_STORE_URL)",)
            raise

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
        nothing blocks them. Returns the persisted receipt; run it again to resume.
        Recorded in the audit log (by the actor of ``pg.acting``, if one is set)."""
        refused: object = require_subject(subject)
        if not isinstance(refused, InvalidArgument):
            refused = self._outside_written_binding("erase")
        if isinstance(refused, InvalidArgument):
            del subject  # a value passed by mistake stays out of this frame
            raise refused
        outcome = _scrubbed(self.subjects.erase, subject, reason)
        if not isinstance(outcome, ErasureReceipt):
            del subject
            raise outcome
        _operation(self._reveals, "erase", (self._keyring.subject_scope(subject),))
        return outcome

    @boundary
    def export(
        self, subject: str, *, actor: str | None = None, purpose: str | None = None
    ) -> dict[str, Any]:
        """Everything piiguard and the registered exporters hold on a subject (PIPL Art. 45),
        revealed to ``actor`` for ``purpose`` (else those of ``pg.acting``): each value the
        export opens is recorded, and the export itself.

        Raises:
            AccessDenied: no actor, no purpose, or a purpose not registered.
        """
        refused = require_subject(subject)
        if isinstance(refused, InvalidArgument):
            del subject
            raise refused
        who = self._reveals.admit(actor, purpose, action="export", count=0)  # counted per value
        if isinstance(who, Exception):
            del subject
            raise who
        with acting(actor=who[0], purpose=who[1]):
            outcome = _scrubbed(self.subjects.export, subject)
        if not isinstance(outcome, dict):
            del subject
            raise outcome
        failure = self._reveals.record(
            AccessEvent(
                "export",
                who[0],
                who[1],
                self._reveals.now(),
                subjects=(self._keyring.subject_scope(subject),),
            )
        )
        if failure is None:
            return outcome
        outcome.clear()
        del subject
        raise failure

    @boundary
    def share(
        self,
        record: Any,
        *,
        to: str,
        subject: str,
        purpose: str | None = None,
        actor: str | None = None,
        kinds: Mapping[str, str] | None = None,
    ) -> str:
        """``record`` (a pydantic model or a mapping) for recipient ``to``, as a compact JWE
        that the recipient opens with its private key: only the fields the recipient names,
        each clear, masked by its kind's rule, or a vault token the shop resolves
        (``guard.vault.detokenize``). Audited before it returns and recorded, so
        ``guard.export(subject)`` and ``guard.sharing.recipients_of(subject)`` name the
        recipient.

        Args:
            to: a registered recipient (``guard.sharing.register``).
            subject: whose record it is (consent is checked, the share recorded, tokens
                erased with the subject).
            purpose: why (else that of ``pg.acting``).
            actor: who (else that of ``pg.acting``).
            kinds: field path -> kind, for plain values a model does not type.

        Raises:
            ShareRefused: an unknown recipient, a purpose it may not receive data for, an
                expired assessment or contract, or missing consent (see
                :meth:`Sharing.admit`). Nothing was made.
            AccessDenied: no actor or purpose; an unregistered purpose, or one that does
                not cover a kind shared in clear; the access watch stopped the actor.
            EventNotRecorded: the share could not be audited; nothing is returned.
        """
        return self.share_many(
            [record], to=to, subjects=[subject], purpose=purpose, actor=actor, kinds=kinds
        )[0]

    @boundary
    def share_many(
        self,
        records: Sequence[Any],
        *,
        to: str,
        subjects: Sequence[str],
        purpose: str | None = None,
        actor: str | None = None,
        kinds: Mapping[str, str] | None = None,
    ) -> list[str]:
        """:meth:`share` for a batch: ``records[i]`` is ``subjects[i]``'s; one audit event,
        every subject's consent checked before anything is made (one refusal refuses all)."""

        def tokenize(value: str, kind: str, subject: str) -> str:
            return self.vault.tokenize(value, kind=kind, subject=subject)

        outcome = _scrubbed(
            lambda: make_shares(
                self.sharing,
                self._reveals,
                tokenize,
                records,
                to=to,
                purpose=purpose,
                subjects=subjects,
                actor=actor,
                kinds=kinds,
                holds_pii=reads_pii,  # the audit log's reading of text for PII, uncached
            )
        )
        if isinstance(outcome, Exception):
            del records, subjects
            raise outcome
        return outcome

    @boundary
    def reveal(
        self,
        record: Any,
        *,
        role: str,
        actor: str | None = None,
        purpose: str | None = None,
        subject: str | None = None,
        kinds: Mapping[str, str] | None = None,
        context: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """What ``actor``, acting in ``role`` for ``purpose`` (else those of ``pg.acting``),
        may see of ``record`` (a pydantic model or a mapping): each PII value in clear,
        masked by its kind's rule, or absent, as the access policy says; recorded in the
        audit log before it returns, and a refusal too.

        A value is clear only when the role sees its kind in clear and the purpose's
        registered kinds include it (else it is masked); a kind the role does not name is
        absent; text of no declared kind is scanned, and what is found in it is shown the
        same way. Values that are not text (numbers, dates) are returned as they are. The
        event names every value shown, clear or masked, and counts them all, as the access
        watch does: masked values copied out by the thousand are still a customer list.

        Args:
            role: a role of the access policy; a ``jit`` role needs a live grant.
            subject: whose record it is (the audit event names its pseudonym).
            kinds: field path -> kind for mapping values that are plain text.
            context: where the record lives (``{"table": "orders", "id": "o1"}``), recorded
                with ids digested.

        Raises:
            AccessDenied: no actor or purpose; an unregistered purpose; a role the policy
                does not have, that does not act for the purpose, or that needs a grant the
                actor does not hold; the access watch stopped the actor.
            EventNotRecorded: the reveal could not be recorded; nothing is returned.
        """
        who = identify(actor, purpose)
        if isinstance(who, Exception):
            raise who
        for what, given in (("kinds", kinds), ("context", context)):
            if given is not None and not isinstance(given, Mapping):
                raise InvalidArgument(f"{what} is a mapping of names")
        place = {str(k): str(v) for k, v in (context or {}).items()}
        named = self.access.admit(who[0], role, who[1])
        if not isinstance(named, Role):
            shown_role = role if isinstance(role, str) else type(role).__name__
            raise self._reveals.refuse(
                who, named, action="reveal", context={**place, "role": shown_role}
            )
        declared = {path: get_kind(kind).name for path, kind in (kinds or {}).items()}
        pseudonyms: tuple[str, ...] = ()
        if subject is not None:
            refused = require_subject(subject)
            if isinstance(refused, InvalidArgument):
                del subject
                raise refused
            pseudonyms = (self._keyring.subject_scope(subject),)
        masking = self.access.policy.masking
        masker = None
        if masking is not None and named.name in getattr(masking, "roles", ()):
            rules = masking

            def masker(kind: str) -> Callable[[str], str]:
                return masker_for(kind, rules.rule_for(kind, named.name))

        shown = show(
            record,
            named,
            self.consent.purpose_kinds(who[1]) or frozenset(),
            kinds=declared,
            masking=masker,
        )
        del record
        clear_kinds = tuple(sorted({kind for _, kind in shown.clear}))
        # every value shown counts towards the watch, masked ones too: a role that sees
        # only masked values can still be used to copy out a customer list
        count = len(shown.clear) + len(shown.masked)
        admitted = self._reveals.admit(
            *who,
            action="reveal",
            kinds=clear_kinds,
            context={**place, "role": named.name},
            count=count,
            role=named.name,
        )
        if isinstance(admitted, Exception):
            shown.value = None
            raise admitted
        failure = self._reveals.record(
            AccessEvent(
                "reveal",
                who[0],
                who[1],
                self._reveals.now(),
                {**place, "role": named.name},
                count=count,
                kind=clear_kinds[0] if len(clear_kinds) == 1 else None,
                subjects=pseudonyms,
                rows=tuple({"field": path, "kind": kind} for path, kind in shown.clear)
                + tuple(
                    {"field": path, "kind": kind, "view": "masked"} for path, kind in shown.masked
                ),
            )
        )
        if failure is None:
            value: dict[str, Any] = shown.value
            return value
        shown.value = None
        raise failure

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
        refused = self._outside_written_binding("shred")
        if refused is not None:
            del subject
            raise refused
        outcome = _scrubbed(
            lambda who: self._keyring.shred(self._keyring.subject_scope(who)), subject
        )
        if not isinstance(outcome, int):
            del subject
            raise outcome
        _operation(self._reveals, "shred", (self._keyring.subject_scope(subject),), outcome)
        return outcome

    def _maintain(self, now: datetime, key_epoch: timedelta | None) -> bool:
        """What every sweep also does: prune audit events past their retention (the last
        pruned becomes a signed checkpoint), sign a checkpoint at the head, and advance the
        key epoch when due. Each is recorded; returns whether the epoch advanced. A log that
        does not verify is neither pruned nor signed: the epoch still advances (copies of
        shredded keys must die), then :class:`AuditLogBroken` is raised."""
        broken: AuditLogBroken | None = None
        try:
            self.audit.prune(now=now)
            self.audit.checkpoint()
        except AuditLogBroken as error:  # the epoch still advances; then the sweep says so
            _log.error("audit_log_broken", first_bad=error.first_bad, reason=error.reason)
            broken = error
        advanced = key_epoch is not None and (
            self._keyring.advance_epoch_if_due(now, key_epoch) is not None
        )
        if advanced:
            _operation(self._reveals, "advance_epoch")
        if broken is not None:
            raise broken
        return advanced

    def _outside_written_binding(self, operation: str) -> InvalidArgument | None:
        """Refuse an operation that commits on its own and must see every row of the
        subject, inside a bound transaction that has written (it would miss that
        transaction's rows, or wait on its locks)."""
        binding = self._store.bound()
        if binding is None or not binding.dirty:
            return None
        return InvalidArgument(
            f"{operation} runs outside a bound transaction that has written: commit first"
        )

    @contextmanager
    def bind(
        self,
        target: Session | Connection | Engine,
        *,
        on_commit: Callable[[Callable[[], None]], object] | None = None,
    ) -> Iterator[Connection]:
        """Make piiguard's writes join the application's transaction, inside the block.

        Consent events, retention tracking, vault entries, and the audit events that report
        them, commit or roll back with the application's own rows: a customer and their
        consent grant are stored together or not at all. Reads in the block see those
        writes. Two kinds of write stay outside, as a rollback must not undo them: data keys
        (other threads may already use them; a key no row uses is harmless) and the record
        of a reveal (the value was shown). On SQLite, whose write transaction holds the whole
        file, such a write while the application's transaction has written raises
        :class:`StoreBusy` at once (never a wait on its own lock); on PostgreSQL it runs
        beside it.

        Args:
            target: a ``Session`` (its transaction; events are chained right after its
                commit), a ``Connection`` (its transaction, which the application commits),
                or an ``Engine`` (a transaction begun here, committed when the block ends and
                rolled back if it raises). It must reach the store's own database.
            on_commit: for a ``Connection`` whose transaction a framework commits on the
                driver's connection (Django: ``transaction.on_commit``, as
                ``piiguard.integrations.django.bind`` passes it): schedules a callback for
                after that commit, where piiguard's caches and audit chain catch up.

        Yields:
            the application's connection.

        Raises:
            InvalidArgument: ``target`` reaches another database, or this context is bound
                already, or ``on_commit`` comes with a target other than a ``Connection``.
        """

        def prepare(wait: bool) -> None:
            # the store-wide root keys bound writes use, made first in transactions of their
            # own: on SQLite none can be made once the application's transaction holds the file
            self._keyring.settle_linking()  # marks an earlier bound transaction owes
            for purpose in _BOUND_ROOTS:
                self._keyring.prepare_root(purpose, wait=wait)  # linking ones count once used

        with joined(self._store, target, self.audit.drain, prepare, on_commit) as connection:
            yield connection

    @property
    def store(self) -> Store:
        """The storage layer (for the later parts and for operators)."""
        return self._store

    @property
    def aio(self) -> AsyncFace:
        """The async face: ``await guard.aio.decrypt(...)``, ``await guard.aio.consent.grant
        (...)`` — every call (and every part's call) run on a bounded pool of worker threads
        with the caller's ``pg.acting`` context, so an event loop never waits on the store
        (docs/async.md)."""
        with self._close_lock:
            if self._aio is None:
                executor = ThreadPoolExecutor(DEFAULT_THREADS, thread_name_prefix="piiguard-aio")
                self._aio = AsyncFace(self, executor)
            return self._aio

    def close(self) -> None:
        """Release the store's connections (and the async face's threads). Idempotent."""
        with self._close_lock:
            if not self._closed:
                self._closed = True
                if self._aio is not None:  # closed from one of its own threads: no join
                    own = threading.current_thread().name.startswith("piiguard-aio")
                    self._aio._executor.shutdown(wait=not own)
                self.audit.close()
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
