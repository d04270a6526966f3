"""Keyring: data keys (DEKs) per scope, wrapped by a KEK in the store, cached with limits.

- A *scope* owns its keys: ``default`` for data without a subject, one scope per data
  subject (named by a keyed pseudonym, never the subject id), and ``root`` for the long-lived
  keys that blind indexes, deterministic encryption and pseudonyms derive from.
- Encryption uses the newest active key of a scope. Uses are counted in memory against a
  block reserved in the store (one write per block, not per encryption); a key retires
  before its use limit (2^32 by default, NIST SP 800-38D for random 96-bit nonces) and the
  next encryption gets a new key.
- Decryption picks the key by the id in the ciphertext, never by trying keys.
- Plaintext keys are cached for at most ``max_age``; then the KEK unwraps them again.
- Shredding a subject destroys its wrapped keys and leaves a tombstone row, so its old
  ciphertexts fail with KeyDestroyed, everywhere, backups of the data included.
- KEK rotation rewraps keys in batches; every row records its KEK, so old and new KEKs are
  both accepted until rotation finishes, and a crashed rotation resumes where it stopped.
"""

from __future__ import annotations

import hmac as hmac_module
import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select, update

from piiguard.crypto._secret import SecretBytes
from piiguard.crypto.hazmat.aead import Aead
from piiguard.crypto.hazmat.mac import hkdf, hmac_digest
from piiguard.crypto.suites import Suite
from piiguard.errors import KeyDestroyed, KeyNotFound, KeyProviderError
from piiguard.keys.protocol import KEKProvider
from piiguard.store import Store

__all__ = ["DEFAULT_MAX_USES", "Keyring", "RotationReport"]

#: NIST SP 800-38D: at most 2^32 encryptions with random 96-bit nonces under one key.
DEFAULT_MAX_USES = 2**32
_MAX_KEY_ID = 2**32 - 1
_RESERVE_BLOCK = 2**20  # one store write per million encryptions
_ACTIVE, _RETIRED, _DESTROYED = "active", "retired", "destroyed"
_DEFAULT_SCOPE, _ROOT_SCOPE = "default", "root"
_AEAD, _ROOT = "aead", "root"


@dataclass(slots=True)
class _Cached:
    """A plaintext key in memory, with what limits its life."""

    key_id: int
    secret: SecretBytes = field(repr=False)
    aead: Aead = field(repr=False)
    expires: float = field(repr=False)  # on the keyring's monotonic clock


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
    """What a KEK rotation did: keys rewrapped now, and keys left under other KEKs."""

    rewrapped: int
    remaining: int


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
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= max_uses <= DEFAULT_MAX_USES:
            raise ValueError("max_uses must be between 1 and 2**32")
        if max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        self._store = store
        self._kek = kek
        self._keks = {provider.kek_id: provider for provider in (*previous_keks, kek)}
        self._suite = suite
        self._clock = clock
        self._max_uses = max_uses
        self._max_age = max_age.total_seconds()
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._scopes: dict[str, str] = {}
        self._active: dict[str, _Active] = {}
        self._cache: dict[int, _Cached] = {}
        self._roots: dict[str, tuple[int, SecretBytes]] = {}
        self._derived: dict[tuple[str, bytes, int], tuple[int, SecretBytes]] = {}

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
            if next(active.taken) < active.granted and self._monotonic() < cached.expires:
                return cached.key_id, cached.aead
        return self.encryption_key_for(scope, 1)

    def encryption_key_for(self, scope: str, uses: int) -> tuple[int, Aead]:
        """The key id and AEAD to encrypt ``uses`` values (a batch) in ``scope`` with."""
        with self._lock:
            active = self._active.get(scope)
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
                key_id = self._create(connection, scope, _AEAD, self._suite.dek_size, grant)
        return _Active(self._fresh(key_id), grant)

    def _fresh(self, key_id: int) -> _Cached:
        cached = self._cache.get(key_id)
        if cached is not None and self._monotonic() < cached.expires:
            return cached
        return self._load(key_id)

    def _create(
        self, connection: Connection, scope: str, purpose: str, size: int, reserved: int
    ) -> int:
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
        wrapped = self._kek.wrap(secret, _wrap_context(key_id, scope, purpose, self._suite.name))
        connection.execute(
            update(keys)
            .where(keys.c.key_id == key_id)
            .values(wrapped=wrapped, kek_id=self._kek.kek_id)
        )
        self._remember(key_id, secret)
        return int(key_id)

    # -- decryption keys ---------------------------------------------------------------

    def decryption_key(self, key_id: int) -> Aead:
        """The AEAD of the key with this id.

        Raises:
            KeyDestroyed: the key was shredded.
            KeyNotFound: no such key in the store (or not an AEAD key of this suite).
        """
        cached = self._cache.get(key_id)
        if cached is not None and self._monotonic() < cached.expires:
            return cached.aead
        with self._lock:
            return self._fresh(key_id).aead

    def _load(self, key_id: int) -> _Cached:
        keys = self._store.tables.keys
        with self._store.engine.connect() as connection:
            row = connection.execute(select(keys).where(keys.c.key_id == key_id)).first()
        if row is None or row.suite != self._suite.name:
            self._cache.pop(key_id, None)
            raise KeyNotFound(key_id)
        if row.status == _DESTROYED or row.wrapped is None:
            self._cache.pop(key_id, None)
            raise KeyDestroyed
        provider = self._keks.get(row.kek_id)
        if provider is None:
            raise KeyProviderError("the key is wrapped by a KEK this Guard was not given")
        secret = SecretBytes(
            provider.unwrap(row.wrapped, _wrap_context(key_id, row.scope, row.purpose, row.suite))
        )
        return self._remember(key_id, secret)

    def _remember(self, key_id: int, secret: SecretBytes) -> _Cached:
        aead = self._suite.aead(secret[: self._suite.dek_size])
        cached = _Cached(key_id, secret, aead, self._monotonic() + self._max_age)
        self._cache[key_id] = cached
        return cached

    # -- root keys: pseudonyms, blind indexes, deterministic encryption ------------------

    def root_key(self, purpose: str) -> tuple[int, SecretBytes]:
        """The long-lived root key for a purpose (``pseudonym``, ``index``, ``deterministic``),
        created on first use. Root keys are never used with nonces, so they have no use limit;
        they are not cached beyond the life of the Guard."""
        with self._lock:
            found = self._roots.get(purpose)
            if found is not None:
                return found
            keys = self._store.tables.keys
            name = f"{_ROOT}:{purpose}"
            with self._store.transaction() as connection:
                self._store.serialize(connection, name)  # one root key, whoever comes first
                key_id = connection.execute(
                    select(keys.c.key_id)
                    .where(keys.c.scope == _ROOT_SCOPE, keys.c.purpose == name)
                    .order_by(keys.c.key_id)
                    .limit(1)
                ).scalar_one_or_none()
                if key_id is None:
                    key_id = self._create(connection, _ROOT_SCOPE, name, 64, 0)
            root = self._roots[purpose] = (int(key_id), self._fresh(key_id).secret)
            return root

    def derived_key(self, purpose: str, label: bytes, size: int) -> tuple[int, SecretBytes]:
        """A key derived by HKDF from a root key: one per label (field, column), cached."""
        found = self._derived.get((purpose, label, size))
        if found is None:
            key_id, root = self.root_key(purpose)
            derived = SecretBytes(hkdf(self._suite.mac, root, b"piiguard/v1/" + label, size))
            found = self._derived[(purpose, label, size)] = (key_id, derived)
        return found

    def subject_scope(self, subject: str) -> str:
        """The scope of a data subject: a keyed pseudonym, so the key table names no one."""
        scope = self._scopes.get(subject)
        if scope is None:
            if not isinstance(subject, str) or not subject:
                raise TypeError("subject must be a non-empty str")
            _, root = self.root_key("pseudonym")
            scope = "subject:" + hmac_digest(self._suite.mac, root, subject.encode()).hex()[:40]
            if len(self._scopes) >= 65536:
                self._scopes.clear()
            self._scopes[subject] = scope
        return scope

    def subject_scope_function(self) -> Callable[[str], str]:
        """The same mapping as :meth:`subject_scope`, uncached and with the key bound once:
        for streaming millions of distinct subjects (campaign filters)."""
        _, root = self.root_key("pseudonym")
        key, mac = bytes(root), self._suite.mac
        if mac == "sha256":
            digest = hmac_module.digest
            return lambda subject: "subject:" + digest(key, subject.encode(), "sha256").hex()[:40]
        return lambda subject: "subject:" + hmac_digest(mac, key, subject.encode()).hex()[:40]

    # -- erasure -------------------------------------------------------------------------

    def shred(self, scope: str) -> int:
        """Destroy every key of a scope; return how many. The rows stay, as tombstones."""
        keys = self._store.tables.keys
        with self._lock:
            with self._store.transaction() as connection:
                destroyed = (
                    connection.execute(
                        update(keys)
                        .where(keys.c.scope == scope, keys.c.status != _DESTROYED)
                        .values(status=_DESTROYED, wrapped=None, destroyed_at=self._clock())
                        .returning(keys.c.key_id)
                    )
                    .scalars()
                    .all()
                )
            for key_id in destroyed:
                self._cache.pop(key_id, None)
            self._active.pop(scope, None)
            return len(destroyed)

    # -- KEK rotation --------------------------------------------------------------------

    def rotate_kek(self, new_kek: KEKProvider, *, batch_size: int = 500) -> RotationReport:
        """Rewrap every key under ``new_kek``; no data is re-encrypted.

        Rows are rewrapped in batches, each in its own transaction, and only if they still
        carry the KEK they were read with: run it again after a crash and it continues.
        """
        keys = self._store.tables.keys
        with self._lock:
            self._keks[new_kek.kek_id] = new_kek
            rewrapped = 0
            while True:
                with self._store.transaction() as connection:
                    rows = connection.execute(
                        select(keys)
                        .where(keys.c.kek_id != new_kek.kek_id, keys.c.wrapped.is_not(None))
                        .order_by(keys.c.key_id)
                        .limit(batch_size)
                        .with_for_update()
                    ).all()
                    for row in rows:
                        provider = self._keks.get(row.kek_id)
                        if provider is None:
                            raise KeyProviderError(
                                "a key is wrapped by a KEK this Guard was not given"
                            )
                        context = _wrap_context(row.key_id, row.scope, row.purpose, row.suite)
                        secret = SecretBytes(provider.unwrap(row.wrapped, context))
                        connection.execute(
                            update(keys)
                            .where(keys.c.key_id == row.key_id, keys.c.kek_id == row.kek_id)
                            .values(wrapped=new_kek.wrap(secret, context), kek_id=new_kek.kek_id)
                        )
                    rewrapped += len(rows)
                if len(rows) < batch_size:
                    break
            self._kek = new_kek
            with self._store.engine.connect() as connection:
                remaining = connection.execute(
                    select(func.count())
                    .select_from(keys)
                    .where(keys.c.kek_id != new_kek.kek_id, keys.c.wrapped.is_not(None))
                ).scalar_one()
            return RotationReport(rewrapped, int(remaining))

    def key_counts(self) -> Mapping[str, int]:
        """How many keys the store holds in each status (for operators and tests)."""
        keys = self._store.tables.keys
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                select(keys.c.status, func.count()).group_by(keys.c.status)
            ).all()
        return {str(status): int(count) for status, count in rows}
