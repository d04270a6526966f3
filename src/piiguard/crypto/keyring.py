"""Keyring: data keys (DEKs) per scope, wrapped by a KEK in the store, cached with limits.

- A *scope* owns its keys: ``default`` for data without a subject, one scope per data
  subject (named by a keyed pseudonym, never the subject id), and ``root`` for the long-lived
  keys that blind indexes, deterministic encryption and pseudonyms derive from.
- Encryption uses the newest active key of a scope. Uses are counted in memory against a
  block reserved in the store (one write per block, not per encryption); a key retires
  before its use limit (2^32 by default, NIST SP 800-38D for random 96-bit nonces) and the
  next encryption gets a new key.
- Decryption picks the key by the id in the ciphertext, never by trying keys.
- Data keys are wrapped under the store's active epoch key (:mod:`piiguard.crypto.epochs`),
  whose object lives with the KEK provider; advancing the epoch makes shreds reach copies.
- Plaintext keys are cached for at most ``max_age`` and evicted when it passes (a timer);
  then the epoch key unwraps them again.
- Shredding a subject destroys its wrapped keys, leaves a tombstone row and a key event;
  every Guard polls key events at most every ``LIVENESS_INTERVAL`` seconds when it reuses a
  cached key, so another process stops using a shredded key within that bound.
- KEK rotation is an epoch advance into the new KEK's holder: data keys are rewrapped in
  batches, and a crashed rotation resumes by running it again.
"""

from __future__ import annotations

import functools
import hmac as hmac_module
import itertools
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, update

from piiguard.crypto._secret import SecretBytes
from piiguard.crypto.epochs import EpochReport, Epochs, epoch_holder
from piiguard.crypto.erasure_log import ErasureLog
from piiguard.crypto.ff1 import FF1
from piiguard.crypto.handles import Mac
from piiguard.crypto.hazmat.aead import Aead
from piiguard.crypto.hazmat.mac import hkdf, hmac_digest
from piiguard.crypto.suites import Suite
from piiguard.errors import KeyDestroyed, KeyNotFound, KeyProviderError
from piiguard.keys.protocol import EpochKeyHolder, KEKProvider
from piiguard.store import Store

__all__ = ["DEFAULT_MAX_USES", "LIVENESS_INTERVAL", "Keyring", "RotationReport"]

#: NIST SP 800-38D: at most 2^32 encryptions with random 96-bit nonces under one key.
DEFAULT_MAX_USES = 2**32
_MAX_KEY_ID = 2**32 - 1
_RESERVE_BLOCK = 2**20  # one store write per million encryptions
_ACTIVE, _RETIRED, _DESTROYED = "active", "retired", "destroyed"
_DEFAULT_SCOPE, _ROOT_SCOPE = "default", "root"
_AEAD, _ROOT = "aead", "root"
#: Seconds a Guard reuses a cached data key before it looks for shreds by other processes.
LIVENESS_INTERVAL = 0.1
_DERIVED_CACHE = 4096
#: Root-key purposes whose artefacts are the same for equal values, so they link.
_LINKING = ("token", "index", "deterministic", "fpe")
_LIVE_KEYRINGS: weakref.WeakSet[Keyring] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for keyring in list(_LIVE_KEYRINGS):
        keyring._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


@dataclass(slots=True)
class _Cached:
    """A plaintext data key in memory, with what limits its life.

    ``fresh_until`` is the sooner of its expiry and the next liveness check: the fast paths
    compare one float, and only past it does the keyring look for shreds elsewhere.
    """

    key_id: int
    scope: str
    secret: SecretBytes = field(repr=False)
    aead: Aead = field(repr=False)
    expires: float = field(repr=False)  # on the keyring's monotonic clock
    fresh_until: float = field(repr=False)


@dataclass(slots=True)
class _Active:
    """The key a scope encrypts with, and the uses this process may make of it.

    ``taken`` is an ``itertools.count``: ``next()`` on it is atomic under the GIL, so the
    fast path counts uses without a lock. Uses are counted before they are checked, so a
    race can only waste uses, never exceed ``granted``.
    """

    cached: _Cached
    granted: int
    taken: Iterator[int] = field(default_factory=itertools.count)


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What a KEK rotation did: keys rewrapped now, and keys that could not be (their ids
    in ``unreadable``: damaged rows, reported rather than stopping the rotation)."""

    rewrapped: int
    remaining: int
    unreadable: tuple[int, ...] = ()


def _row_context(row: Any) -> dict[str, str]:
    return _wrap_context(row.key_id, row.scope, row.purpose, row.suite)


def _wrap_context(key_id: int, scope: str, purpose: str, suite: str) -> dict[str, str]:
    return {
        "piiguard": "data-key",
        "key_id": str(key_id),
        "scope": scope,
        "purpose": purpose,
        "suite": suite,
    }


class Keyring:
    """Data keys of one store, under one KEK (plus earlier KEKs during a rotation).

    Thread-safe: one lock guards the in-memory state; store writes happen in their own
    transactions, and concurrent processes coordinate through the store.
    """

    def __init__(
        self,
        store: Store,
        kek: KEKProvider,
        suite: Suite,
        *,
        clock: Callable[[], datetime],
        max_uses: int = DEFAULT_MAX_USES,
        max_age: timedelta = timedelta(minutes=15),
        previous_keks: Iterable[KEKProvider] = (),
        epoch_keys: EpochKeyHolder | None = None,
        erasure_log: ErasureLog | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= max_uses <= DEFAULT_MAX_USES:
            raise ValueError("max_uses must be between 1 and 2**32")
        if max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        previous = tuple(previous_keks)
        holder = epoch_keys if epoch_keys is not None else epoch_holder(kek)
        earlier = [h for h in (_maybe_holder(p) for p in previous) if h is not None]
        self._store = store
        self._kek = kek
        self._keks = {provider.kek_id: provider for provider in (*previous, kek)}
        self._holder = holder
        self._epochs = Epochs(store, suite, holder, previous=earlier, keks=self._keks, clock=clock)
        self._erasure_log = erasure_log
        self._suite = suite
        self._clock = clock
        self._max_uses = max_uses
        self._max_age = max_age.total_seconds()
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._scopes: dict[str, str] = {}
        self._active: dict[str, _Active] = {}
        self._cache: dict[int, _Cached] = {}
        self._roots: dict[tuple[str, str], tuple[int, SecretBytes]] = {}
        self._derived: dict[tuple[str, bytes, int], tuple[int, SecretBytes]] = {}
        self._handles: dict[tuple[str, bytes], Mac | FF1] = {}
        self._seen_event = self._last_event()
        #: seconds between looks for shreds elsewhere (the benchmark compares it with none)
        self._liveness = LIVENESS_INTERVAL
        self._next_poll = monotonic() + LIVENESS_INTERVAL
        self._janitor: threading.Timer | None = None
        _LIVE_KEYRINGS.add(self)

    @property
    def suite(self) -> Suite:
        """The suite new keys are made for."""
        return self._suite

    # -- encryption keys ---------------------------------------------------------------

    def encryption_key(self, scope: str = _DEFAULT_SCOPE) -> tuple[int, Aead]:
        """The key id and AEAD to encrypt one value in ``scope`` with.

        Both limits are checked on every call: the key's age in the cache and its uses.
        """
        active = self._active.get(scope)
        if active is not None:
            cached = active.cached
            if next(active.taken) < active.granted and self._monotonic() < cached.fresh_until:
                return cached.key_id, cached.aead
        return self.encryption_key_for(scope, 1)

    def encryption_key_for(self, scope: str, uses: int) -> tuple[int, Aead]:
        """The key id and AEAD to encrypt ``uses`` values (a batch) in ``scope`` with."""
        with self._lock:
            active = self._active.get(scope)
            if active is not None and self._monotonic() >= active.cached.fresh_until:
                self._revalidate(active.cached)
                active = self._active.get(scope)  # gone if another process shredded it
            if (
                active is None
                or self._monotonic() >= active.cached.expires
                or next(active.taken) + uses > active.granted
            ):
                active = self._active[scope] = self._reserve(scope, uses)
            deque(itertools.islice(active.taken, uses), maxlen=0)  # count the uses, in C
            return active.cached.key_id, active.cached.aead

    def _reserve(self, scope: str, uses: int) -> _Active:
        """Reserve a block of uses of the scope's key, or retire it and make a new one."""
        if uses > self._max_uses:
            raise ValueError("a batch may not exceed the key use limit")
        keys = self._store.tables.keys
        with self._store.transaction() as connection:
            row = connection.execute(
                select(keys.c.key_id, keys.c.uses_reserved, keys.c.max_uses)
                .where(keys.c.scope == scope, keys.c.purpose == _AEAD, keys.c.status == _ACTIVE)
                .order_by(keys.c.key_id.desc())
                .limit(1)
                .with_for_update()
            ).first()
            if row is not None and row.max_uses - row.uses_reserved >= uses:
                grant = min(max(_RESERVE_BLOCK, uses), row.max_uses - row.uses_reserved)
                connection.execute(
                    update(keys)
                    .where(keys.c.key_id == row.key_id)
                    .values(uses_reserved=keys.c.uses_reserved + grant)
                )
                key_id = int(row.key_id)
            else:
                if row is not None:
                    connection.execute(
                        update(keys).where(keys.c.key_id == row.key_id).values(status=_RETIRED)
                    )
                grant = min(max(_RESERVE_BLOCK, uses), self._max_uses)
                key_id, secret = self._create(connection, scope, _AEAD, self._suite.dek_size, grant)
                return _Active(self._remember(key_id, scope, secret), grant)
        return _Active(self._fresh(key_id), grant)

    def _fresh(self, key_id: int) -> _Cached:
        cached = self._cache.get(key_id)
        if cached is not None and self._monotonic() < cached.expires:
            self._revalidate(cached)
            if self._cache.get(key_id) is cached:
                return cached
        return self._load(key_id)

    def _create(
        self, connection: Connection, scope: str, purpose: str, size: int, reserved: int
    ) -> tuple[int, SecretBytes]:
        keys = self._store.tables.keys
        key_id = connection.execute(
            keys.insert()
            .values(
                scope=scope,
                purpose=purpose,
                suite=self._suite.name,
                status=_ACTIVE,
                uses_reserved=reserved,
                max_uses=self._max_uses,
                created_at=self._clock(),
            )
            .returning(keys.c.key_id)
        ).scalar_one()
        if key_id > _MAX_KEY_ID:
            raise KeyProviderError("the key table has run out of 32-bit key ids")
        secret = SecretBytes(os.urandom(size))
        context = _wrap_context(key_id, scope, purpose, self._suite.name)
        epoch, wrapped = self._epochs.wrap(connection, secret, context)
        connection.execute(
            update(keys).where(keys.c.key_id == key_id).values(wrapped=wrapped, epoch=epoch)
        )
        return int(key_id), secret

    # -- decryption keys ---------------------------------------------------------------

    def decryption_key(self, key_id: int) -> Aead:
        """The AEAD of the key with this id.

        Raises:
            KeyDestroyed: the key was shredded.
            KeyNotFound: no such key in the store (or not an AEAD key of this suite).
        """
        cached = self._cache.get(key_id)
        if cached is not None and self._monotonic() < cached.fresh_until:
            return cached.aead
        with self._lock:
            return self._fresh(key_id).aead

    def _row(self, key_id: int) -> Any:
        """A live key row, or the error its absence means."""
        keys = self._store.tables.keys
        with self._store.engine.connect() as connection:
            row = connection.execute(select(keys).where(keys.c.key_id == key_id)).first()
        if row is None or row.suite != self._suite.name:
            raise KeyNotFound(key_id)
        if row.status == _DESTROYED or row.wrapped is None:
            raise KeyDestroyed
        return row

    def _load(self, key_id: int) -> _Cached:
        """Unwrap a data key (never a root key: those are not for nonce-based AEAD)."""
        self._cache.pop(key_id, None)
        row = self._row(key_id)
        if row.purpose != _AEAD:
            raise KeyNotFound(key_id)
        return self._remember(key_id, row.scope, self._epochs.unwrap(row, _row_context(row)))

    def _remember(self, key_id: int, scope: str, secret: SecretBytes) -> _Cached:
        aead = self._suite.aead(secret[: self._suite.dek_size])
        now = self._monotonic()
        expires = now + self._max_age
        cached = _Cached(key_id, scope, secret, aead, expires, min(expires, now + self._liveness))
        self._cache[key_id] = cached
        self._schedule_janitor()
        return cached

    # -- liveness and eviction (called with the lock held) -----------------------------

    def _check_liveness(self) -> float:
        """Look for shreds by other processes, at most every LIVENESS_INTERVAL."""
        now = self._monotonic()
        if now >= self._next_poll:
            self._poll()
            self._next_poll = now + self._liveness
        return now

    def _revalidate(self, cached: _Cached) -> None:
        """Look for shreds by other processes, then extend the key's freshness if it is
        still in the cache."""
        now = self._check_liveness()
        if self._cache.get(cached.key_id) is cached:
            cached.fresh_until = min(cached.expires, now + self._liveness)

    def _last_event(self) -> int:
        events = self._store.tables.key_events
        with self._store.engine.connect() as connection:
            return int(connection.execute(select(func.max(events.c.seq))).scalar() or 0)

    def _poll(self) -> None:
        """Drop from memory the keys of every scope shredded (and every epoch destroyed)
        since the last poll, wherever that happened."""
        events = self._store.tables.key_events
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                select(events.c.seq, events.c.scope)
                .where(events.c.seq > self._seen_event)
                .order_by(events.c.seq)
            ).all()
        if not rows:
            return
        self._seen_event = int(rows[-1].seq)
        scopes = {row.scope for row in rows}
        for scope in scopes:
            if scope.startswith("epoch:"):
                self._epochs.forget(int(scope.removeprefix("epoch:")))
        self._drop_scopes(scopes)

    def _drop_scopes(self, scopes: set[str]) -> None:
        for key_id in [k for k, cached in self._cache.items() if cached.scope in scopes]:
            del self._cache[key_id]
        for scope in scopes & self._active.keys():
            del self._active[scope]
        for root in [r for r in self._roots if r[0] in scopes]:
            del self._roots[root]

    def _schedule_janitor(self) -> None:
        if self._janitor is None:
            timer = threading.Timer(self._max_age + LIVENESS_INTERVAL, self._evict_expired)
            timer.daemon = True
            self._janitor = timer
            timer.start()

    def _evict_expired(self) -> None:
        """Drop every plaintext data key past its max age (the cache holds none longer)."""
        with self._lock:
            self._janitor = None
            now = self._monotonic()
            for key_id in [k for k, cached in self._cache.items() if cached.expires <= now]:
                del self._cache[key_id]
            for scope in [s for s, a in self._active.items() if a.cached.expires <= now]:
                del self._active[scope]
            if self._cache:
                self._schedule_janitor()

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock, no reserved use blocks, no timer (threads do not
        survive a fork), so parent and child never count the same uses; and a pool of its own,
        so the child never talks over the parent's database connections (SQLAlchemy's recipe:
        ``dispose(close=False)`` leaves them to the parent)."""
        self._lock = threading.Lock()
        self._active = {}
        self._janitor = None
        self._store.engine.dispose(close=False)

    def close(self) -> None:
        """Forget every plaintext key and stop the eviction timer."""
        with self._lock:
            if self._janitor is not None:
                self._janitor.cancel()
                self._janitor = None
            self._cache.clear()
            self._active.clear()
            self._roots.clear()
            self._derived.clear()
            self._handles.clear()

    # -- root keys: pseudonyms, blind indexes, deterministic encryption ------------------

    def root_key(self, purpose: str, scope: str = _ROOT_SCOPE) -> tuple[int, SecretBytes]:
        """The long-lived root key for a purpose (``pseudonym``, ``index``, ``deterministic``,
        ``token``, ``fpe``), created on first use: the store-wide one, or a subject's own
        (``scope``), which a shred of that subject destroys. Root keys are never used with
        nonces, so they have no use limit; they are not cached beyond the life of the Guard."""
        with self._lock:
            if scope != _ROOT_SCOPE:
                self._check_liveness()
            found = self._roots.get((scope, purpose))
            if found is not None:
                return found
            keys = self._store.tables.keys
            name = f"{_ROOT}:{purpose}"
            with self._store.transaction() as connection:
                self._store.serialize(connection, f"{name}:{scope}")  # whoever comes first
                key_id = connection.execute(
                    select(keys.c.key_id)
                    .where(
                        keys.c.scope == scope, keys.c.purpose == name, keys.c.status != _DESTROYED
                    )
                    .order_by(keys.c.key_id)
                    .limit(1)
                ).scalar_one_or_none()
                if key_id is None:
                    key_id, secret = self._create(connection, scope, name, 64, 0)
                    root = self._roots[(scope, purpose)] = (key_id, secret)
                    return root
            return self._remember_root(self._row(int(key_id)))

    def _remember_root(self, row: Any) -> tuple[int, SecretBytes]:
        secret = self._epochs.unwrap(row, _row_context(row))
        purpose = str(row.purpose).removeprefix(f"{_ROOT}:")
        root = self._roots[(str(row.scope), purpose)] = (int(row.key_id), secret)
        return root

    def root_key_by_id(self, purpose: str, key_id: int) -> tuple[int, SecretBytes]:
        """The root key with this id, which must be a ``purpose`` root (store-wide or a
        subject's): for opening what names its key by id.

        Raises:
            KeyDestroyed: it was shredded with its subject.
            KeyNotFound: no such root key.
        """
        for (scope, found_purpose), root in list(self._roots.items()):
            if root[0] == key_id and found_purpose == purpose:
                if scope != _ROOT_SCOPE:
                    with self._lock:
                        self._check_liveness()
                    if self._roots.get((scope, purpose)) is not root:
                        raise KeyDestroyed
                return root
        row = self._row(key_id)
        if row.purpose != f"{_ROOT}:{purpose}":
            raise KeyNotFound(key_id)
        with self._lock:
            return self._remember_root(row)

    def derived_key(
        self, purpose: str, label: bytes, size: int, scope: str = _ROOT_SCOPE
    ) -> tuple[int, SecretBytes]:
        """A key derived by HKDF from a root key: one per label (field, column), cached."""
        if scope != _ROOT_SCOPE:
            return self._derive(self.root_key(purpose, scope), purpose, label, size)
        found = self._derived.get((purpose, label, size))
        if found is None:
            found = self._derive(self.root_key(purpose), purpose, label, size)
            if len(self._derived) >= _DERIVED_CACHE:
                self._derived.clear()
            self._derived[(purpose, label, size)] = found
        return found

    def mac(self, purpose: str, label: bytes) -> Mac:
        """A bound HMAC under the key derived for ``label`` (keyed tokens): a handle, so
        the caller never holds the key."""
        found = self._handles.get((purpose, label))
        if not isinstance(found, Mac):
            key_id, key = self.derived_key(purpose, label, 32)
            found = self._handles[(purpose, label)] = Mac(key_id, self._suite.mac, key)
        return found

    def ff1(self, purpose: str, label: bytes, alphabet: str) -> FF1:
        """An FF1 cipher under the AES-256 key derived for ``label`` (format-preserving
        tokens), built here so the key bytes stay in the key layer."""
        found = self._handles.get((purpose, label + b"|" + alphabet.encode()))
        if not isinstance(found, FF1):
            _, key = self.derived_key(purpose, label, 32)
            found = FF1(key, alphabet)
            self._handles[(purpose, label + b"|" + alphabet.encode())] = found
        return found

    def derived_key_by_id(
        self, purpose: str, label: bytes, size: int, key_id: int
    ) -> tuple[int, SecretBytes]:
        """:meth:`derived_key` from the root key with this id (store-wide or a subject's)."""
        found = self._derived.get((purpose, label, size))
        if found is not None and found[0] == key_id:
            return found
        return self._derive(self.root_key_by_id(purpose, key_id), purpose, label, size)

    def _derive(
        self, root: tuple[int, SecretBytes], purpose: str, label: bytes, size: int
    ) -> tuple[int, SecretBytes]:
        key_id, secret = root
        return key_id, SecretBytes(hkdf(self._suite.mac, secret, b"piiguard/v1/" + label, size))

    def linking_purposes(self) -> tuple[str, ...]:
        """Purposes whose store-wide root key exists: artefacts made under them (keyed
        tokens, blind indexes, FPE tokens, deterministic ciphertexts without ``subject=``)
        still link a subject's values after that subject's keys are shredded."""
        keys = self._store.tables.keys
        with self._store.engine.connect() as connection:
            names = connection.execute(
                select(keys.c.purpose).where(
                    keys.c.scope == _ROOT_SCOPE,
                    keys.c.purpose.in_([f"{_ROOT}:{p}" for p in _LINKING]),
                )
            ).scalars()
            found = {str(name).removeprefix(f"{_ROOT}:") for name in names}
        return tuple(p for p in _LINKING if p in found)

    def subject_scope(self, subject: str) -> str:
        """The scope of a data subject: a keyed pseudonym, so the key table names no one."""
        scope = self._scopes.get(subject)
        if scope is None:
            if not isinstance(subject, str) or not subject:
                raise TypeError("subject must be a non-empty str")
            _, root = self.root_key("pseudonym")
            scope = (
                "subject:"
                + hmac_digest(
                    self._suite.mac, root, subject.encode("utf-8", "surrogatepass")
                ).hex()[:40]
            )
            if len(self._scopes) >= 65536:
                self._scopes.clear()
            self._scopes[subject] = scope
        return scope

    def subject_scope_function(self) -> Callable[[str], str]:
        """The same mapping as :meth:`subject_scope`, uncached and with the key bound once:
        for streaming millions of distinct subjects (campaign filters)."""
        _, root = self.root_key("pseudonym")  # SecretBytes: a frame holding it shows no bytes
        mac = self._suite.mac
        if mac == "sha256":
            digest = functools.partial(hmac_module.digest, root)
            return lambda subject: (
                "subject:" + digest(subject.encode("utf-8", "surrogatepass"), "sha256").hex()[:40]
            )
        keyed = functools.partial(hmac_digest, mac, root)
        return lambda subject: (
            "subject:" + keyed(subject.encode("utf-8", "surrogatepass")).hex()[:40]
        )

    # -- erasure -------------------------------------------------------------------------

    def shred(self, scope: str) -> int:
        """Destroy every key of a scope; return how many. The rows stay, as tombstones, and a
        key event tells every other Guard to drop the scope's keys from memory.

        A subject scope is first appended to the erasure log (when there is one), so that a
        restored copy of the store forgets it again on open.
        """
        if self._erasure_log is not None and scope.startswith("subject:"):
            self._erasure_log.append(scope)
        with self._lock:
            destroyed = self._destroy_scopes([scope])
            self._drop_scopes({scope})
            return destroyed

    def _destroy_scopes(self, scopes: list[str]) -> int:
        keys = self._store.tables.keys
        now = self._clock()
        with self._store.transaction() as connection:
            destroyed = (
                connection.execute(
                    update(keys)
                    .where(keys.c.scope.in_(scopes), keys.c.status != _DESTROYED)
                    .values(status=_DESTROYED, wrapped=None, destroyed_at=now)
                    .returning(keys.c.scope)
                )
                .scalars()
                .all()
            )
            for scope in sorted(set(destroyed)):
                self._record_event(connection, scope)
        return len(destroyed)

    def _record_event(self, connection: Connection, scope: str) -> None:
        # serialised, so that sequence numbers commit in order and no poller skips one
        self._store.serialize(connection, "key-events")
        connection.execute(
            self._store.tables.key_events.insert().values(scope=scope, at=self._clock())
        )

    def replay_erasures(self, batch: int = 500) -> int:
        """Shred again every scope in the erasure log whose keys are live in this store (a
        restored backup); return how many scopes. Called by ``Guard.open``."""
        if self._erasure_log is None:
            return 0
        meta, keys = self._store.tables.meta, self._store.tables.keys
        with self._store.engine.connect() as connection:
            offset = connection.execute(
                select(meta.c.value).where(meta.c.name == "erasure_log_offset")
            ).scalar_one_or_none()
        scopes, end = self._erasure_log.read(int(offset or 0))
        replayed = 0
        for start in range(0, len(scopes), batch):
            chunk = sorted(set(scopes[start : start + batch]))
            with self._store.engine.connect() as connection:
                live = (
                    connection.execute(
                        select(keys.c.scope)
                        .where(keys.c.scope.in_(chunk), keys.c.status != _DESTROYED)
                        .distinct()
                    )
                    .scalars()
                    .all()
                )
            if live:
                with self._lock:
                    self._destroy_scopes(list(live))
                    self._drop_scopes(set(live))
                replayed += len(live)
        with self._store.transaction() as connection:
            connection.execute(meta.delete().where(meta.c.name == "erasure_log_offset"))
            connection.execute(meta.insert().values(name="erasure_log_offset", value=str(end)))
        return replayed

    # -- epochs and KEK rotation ---------------------------------------------------------

    def advance_epoch(
        self, *, batch_size: int = 1000, progress: Callable[[int], object] | None = None
    ) -> EpochReport:
        """A new epoch key; every live data key rewrapped under it; older epochs destroyed.

        Safe while other Guards run; after a crash, call it again (it makes a new epoch and
        carries on). ``progress`` is called with the running count after each batch.
        """
        return self._advance(self._holder, batch_size, progress)

    def advance_epoch_if_due(self, now: datetime, period: timedelta) -> EpochReport | None:
        """Advance when the active epoch is older than ``period`` (retention sweeps call it)."""
        if not self._epochs.due(now, period):
            return None
        return self.advance_epoch()

    def _advance(
        self,
        holder: EpochKeyHolder,
        batch_size: int,
        progress: Callable[[int], object] | None,
    ) -> EpochReport:
        report = self._epochs.advance(
            holder,
            wrap_context=_row_context,
            batch_size=batch_size,
            progress=progress,
            on_destroyed=lambda connection, epoch: self._record_event(connection, f"epoch:{epoch}"),
        )
        self._holder = holder
        return report

    def rotate_kek(self, new_kek: KEKProvider, *, batch_size: int = 500) -> RotationReport:
        """Rewrap every key under a new epoch held by ``new_kek``; no data is re-encrypted.

        The earlier epochs are destroyed once every key is rewrapped. Run it again after a
        crash (with the old KEK in ``previous_keks``) and it finishes the job.
        """
        self._keks[new_kek.kek_id] = new_kek
        report = self._advance(epoch_holder(new_kek), batch_size, None)
        self._kek = new_kek
        return RotationReport(report.rewrapped, len(report.unreadable), report.unreadable)

    def scope_key_counts(self, scope: str) -> Mapping[str, int]:
        """How many keys one scope (a subject's) holds in each status."""
        keys = self._store.tables.keys
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                select(keys.c.status, func.count())
                .where(keys.c.scope == scope)
                .group_by(keys.c.status)
            ).all()
        return {str(status): int(count) for status, count in rows}

    def key_counts(self) -> Mapping[str, int]:
        """How many keys the store holds in each status (for operators and tests)."""
        keys = self._store.tables.keys
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                select(keys.c.status, func.count()).group_by(keys.c.status)
            ).all()
        return {str(status): int(count) for status, count in rows}


def _maybe_holder(kek: KEKProvider) -> EpochKeyHolder | None:
    try:
        return epoch_holder(kek)
    except TypeError:
        return None
