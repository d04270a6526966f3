"""Data keys: per-scope DEKs in the store, their use limits, their in-memory cache, shredding.

- Encryption uses the newest active key of a scope. Uses are counted in memory against a
  block reserved in the store (one write per block, not per encryption); a key retires
  before its use limit and the next encryption gets a new key.
- Decryption picks the key by the id in the ciphertext, never by trying keys.
- Plaintext keys are cached for at most ``max_age`` and evicted when it passes (a timer).
- Shredding a scope destroys its wrapped keys, leaves tombstone rows and a key event; every
  Guard polls key events at most every ``LIVENESS_INTERVAL`` seconds when it reuses a cached
  key, so another process stops using a shredded key within that bound.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from piiguard.crypto._secret import SecretBytes
from piiguard.crypto.epochs import Epochs
from piiguard.crypto.hazmat.aead import Aead
from piiguard.crypto.suites import Suite
from piiguard.errors import InvalidArgument, KeyDestroyed, KeyNotFound, KeyProviderError
from piiguard.store import Binding, Store

__all__ = ["DEFAULT_MAX_USES", "LIVENESS_INTERVAL", "DataKeys", "row_context"]

#: NIST SP 800-38D: at most 2^32 encryptions with random 96-bit nonces under one key.
DEFAULT_MAX_USES = 2**32
_MAX_KEY_ID = 2**32 - 1
_RESERVE_BLOCK = 2**20  # one store write per million encryptions
_ACTIVE, _RETIRED, _DESTROYED = "active", "retired", "destroyed"
_DEFAULT_SCOPE = "default"
_AEAD = "aead"
#: Seconds a Guard reuses a cached data key before it looks for shreds by other processes.
LIVENESS_INTERVAL = 0.1
#: Seconds the eviction timer waits past an expiry (so the key has expired when it fires).
_EVICTION_SLACK = 0.01


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


def row_context(row: Any) -> dict[str, str]:
    """The wrap context of a key row: binds its wrapped key to its id, scope and purpose."""
    return _wrap_context(row.key_id, row.scope, row.purpose, row.suite)


def _wrap_context(key_id: int, scope: str, purpose: str, suite: str) -> dict[str, str]:
    return {
        "piiguard": "data-key",
        "key_id": str(key_id),
        "scope": scope,
        "purpose": purpose,
        "suite": suite,
    }


class DataKeys:
    """The data keys of one store: creation, reservation, cache, liveness, shredding.

    Thread-safe: one lock guards the in-memory state (the root keys share it); store writes
    happen in their own transactions, and processes coordinate through the store.
    """

    def __init__(
        self,
        store: Store,
        suite: Suite,
        epochs: Epochs,
        *,
        clock: Callable[[], datetime],
        max_uses: int,
        max_age: float,
        monotonic: Callable[[], float] = time.monotonic,
        on_drop: Callable[[set[str] | None], None] = lambda scopes: None,
    ) -> None:
        self._store = store
        self._suite = suite
        self._epochs = epochs
        self._clock = clock
        self._max_uses = max_uses
        self._max_age = max_age
        self._monotonic = monotonic
        self._on_drop = on_drop  # scopes dropped from memory (None: all), for the root keys
        self._lock = threading.Lock()
        self._active: dict[str, _Active] = {}
        self._cache: dict[int, _Cached] = {}
        self._seen_event = self._last_event()
        #: seconds between looks for shreds elsewhere (the benchmark compares it with none)
        self._liveness = LIVENESS_INTERVAL
        self._next_poll = monotonic() + LIVENESS_INTERVAL
        self._janitor: threading.Timer | None = None

    # -- encryption keys ---------------------------------------------------------------

    def encryption_key(self, scope: str = _DEFAULT_SCOPE) -> tuple[int, Aead]:
        """The key id and AEAD to encrypt one value in ``scope`` with.

        Both limits are checked on every call: the key's age in the cache and its uses.
        """
        active = self._active.get(scope)
        if active is not None:
            cached = active.cached
            # freshness first: a key only due for its liveness look must not lose a use
            if self._monotonic() < cached.fresh_until and next(active.taken) < active.granted:
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
                active is not None
                and self._monotonic() < active.cached.expires
                and next(active.taken) + uses <= active.granted  # that counted the first use
            ):
                deque(itertools.islice(active.taken, uses - 1), maxlen=0)
                return active.cached.key_id, active.cached.aead
            binding = self._store.bound()
            if binding is not None and binding.holds_the_file():
                return self._joined_key(binding, scope, uses)
            active = self._active[scope] = self._reserve(scope, uses)
            deque(itertools.islice(active.taken, uses), maxlen=0)  # count the uses, in C
            return active.cached.key_id, active.cached.aead

    def _joined_key(self, binding: Binding, scope: str, uses: int) -> tuple[int, Aead]:
        """A key made inside the application's SQLite transaction, which holds the file (a
        transaction of piiguard's own would wait for ever). Only this transaction uses it and
        only it knows it: if the transaction rolls back, no value anywhere else was sealed
        under a key that no longer exists."""
        active = binding.keys.get(scope)
        if active is not None and not self._row_in(binding, active.cached.key_id):
            # a savepoint rolled back, or the Session was reset: its row is gone, and so must
            # be the key (a value sealed under it now would open nowhere)
            binding.keys.pop(active.cached.key_id, None)
            active = binding.keys[scope] = None
        if active is None or next(active.taken) + uses > active.granted:
            if uses > self._max_uses:
                raise InvalidArgument("a batch may not exceed the key use limit")
            grant = min(max(_RESERVE_BLOCK, uses), self._max_uses)
            key_id, secret = self._create(
                binding.write(), scope, _AEAD, self._suite.dek_size, grant, joined=True
            )
            now = self._monotonic()
            aead = self._suite.aead(secret[: self._suite.dek_size])
            cached = _Cached(key_id, scope, secret, aead, now + self._max_age, now + self._max_age)
            active = binding.keys[scope] = binding.keys[key_id] = _Active(cached, grant)
            next(active.taken)
        deque(itertools.islice(active.taken, uses - 1), maxlen=0)
        return active.cached.key_id, active.cached.aead

    def _reserve(self, scope: str, uses: int) -> _Active:
        """Reserve a block of uses of the scope's key, or retire it and make a new one."""
        if uses > self._max_uses:
            raise InvalidArgument("a batch may not exceed the key use limit")
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
        self,
        connection: Connection,
        scope: str,
        purpose: str,
        size: int,
        reserved: int,
        *,
        joined: bool = False,
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
        epoch, wrapped = self._epochs.wrap(connection, secret, context, may_create=not joined)
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
        joined = self._joined(key_id)
        if joined is not None:
            return joined.aead
        with self._lock:
            return self._fresh(key_id).aead

    def _row_in(self, binding: Binding, key_id: int) -> bool:
        """Whether the bound transaction still holds the row of a key it made."""
        keys = self._store.tables.keys
        found = binding.connection.execute(select(keys.c.key_id).where(keys.c.key_id == key_id))
        return found.first() is not None

    def _joined(self, key_id: int) -> _Cached | None:
        """A key made in this context's bound transaction, not yet committed."""
        binding = self._store.bound()
        active: _Active | None = None if binding is None else binding.keys.get(key_id)
        if active is None or binding is None or not self._row_in(binding, key_id):
            return None
        return active.cached

    def key_scope(self, key_id: int) -> str | None:
        """The scope of a data key in memory (a subject's pseudonym, or a shared scope): who a
        reveal under it concerns. None when it is not in memory."""
        cached = self._cache.get(key_id) or self._joined(key_id)
        return None if cached is None else cached.scope

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
        return self._remember(key_id, row.scope, self._epochs.unwrap(row, row_context(row)))

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
        self._on_drop(scopes)

    def _schedule_janitor(self, delay: float | None = None) -> None:
        """Arm the eviction timer (at most one): for ``delay`` seconds, or a key's max age."""
        if self._janitor is None:
            wait = (self._max_age if delay is None else max(delay, 0.0)) + _EVICTION_SLACK
            timer = threading.Timer(wait, self._evict_expired)
            timer.daemon = True
            self._janitor = timer
            timer.start()

    def _evict_expired(self) -> None:
        """Drop every plaintext data key past its max age, then re-arm for the soonest one
        left (the cache holds no key past its expiry for longer than a timer's slack)."""
        with self._lock:
            self._janitor = None
            now = self._monotonic()
            for key_id in [k for k, cached in self._cache.items() if cached.expires <= now]:
                del self._cache[key_id]
            for scope in [s for s, a in self._active.items() if a.cached.expires <= now]:
                del self._active[scope]
            if self._cache:
                self._schedule_janitor(min(c.expires for c in self._cache.values()) - now)

    def after_fork(self) -> None:
        """In a forked child: a fresh lock, no reserved use blocks (the parent counts them),
        no eviction timer (threads do not survive a fork)."""
        self._lock = threading.Lock()
        self._active = {}
        self._janitor = None

    def close(self) -> None:
        """Forget every plaintext key and stop the eviction timer."""
        with self._lock:
            if self._janitor is not None:
                self._janitor.cancel()
                self._janitor = None
            self._cache.clear()
            self._active.clear()
            self._on_drop(None)

    # -- erasure -------------------------------------------------------------------------

    def shred(
        self,
        scope: str,
        connection: Connection | None = None,
        *,
        made_by: datetime | None = None,
    ) -> int:
        """Destroy every key of a scope; return how many. The rows stay, as tombstones, and a
        key event tells every other Guard to drop the scope's keys from memory.

        ``connection``: the caller's transaction, when the shred must commit with a decision
        made in it (no hold placed in between). ``made_by``: only keys created by then (the
        erasure was asked then; a subject who came back since keeps their new keys).
        """
        with self._lock:
            destroyed = self._destroy_scopes([scope], connection, made_by)
            self._drop_scopes({scope})
            return destroyed

    def retire_scope(self, scope: str, connection: Connection) -> None:
        """Stop encrypting under a scope's keys (they still decrypt): an erasure whose shred
        waits, so that new data of a subject who comes back gets keys the shred spares. A
        key event makes every Guard take a new key."""
        keys = self._store.tables.keys
        with self._lock:
            connection.execute(
                update(keys)
                .where(keys.c.scope == scope, keys.c.status == _ACTIVE, keys.c.purpose == _AEAD)
                .values(status=_RETIRED)
            )
            self._record_event(connection, scope)
            self._drop_scopes({scope})

    def destroy_keys(self, key_ids: list[int]) -> set[str]:
        """Destroy these keys (an erasure replayed on a restored store); return their scopes,
        which every Guard then drops from memory."""
        keys = self._store.tables.keys
        with self._lock:
            with self._store.transaction() as connection:
                scopes = set(
                    connection.execute(
                        update(keys)
                        .where(keys.c.key_id.in_(key_ids), keys.c.status != _DESTROYED)
                        .values(status=_DESTROYED, wrapped=None, destroyed_at=self._clock())
                        .returning(keys.c.scope)
                    ).scalars()
                )
                for scope in sorted(scopes):
                    self._record_event(connection, scope)
            self._drop_scopes(scopes)
        return scopes

    def _destroy_scopes(
        self,
        scopes: list[str],
        connection: Connection | None = None,
        made_by: datetime | None = None,
    ) -> int:
        if connection is None:
            with self._store.transaction() as own:
                return self._destroy_scopes(scopes, own, made_by)
        keys = self._store.tables.keys
        which = [keys.c.scope.in_(scopes), keys.c.status != _DESTROYED]
        if made_by is not None:
            which.append(keys.c.created_at <= made_by)
        destroyed = (
            connection.execute(
                update(keys)
                .where(*which)
                .values(status=_DESTROYED, wrapped=None, destroyed_at=self._clock())
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
