"""Key epochs: data keys are wrapped under an epoch key whose object lives outside the store.

The store's epoch table holds each epoch key *sealed* by an epoch object that an
:class:`~piiguard.keys.EpochKeyHolder` keeps (an HSM object, a KMS key, an entry of the epoch-key
file). Advancing the epoch makes a new epoch, rewraps every live data key under it in
batches, then destroys the previous epoch objects. From then on a copy of the store taken
before the advance opens nothing: its data keys are wrapped under epochs whose objects are
gone. That is what makes a shred reach backups.

Every data key is created under the one *active* epoch, read inside the creating transaction
(``FOR SHARE`` on PostgreSQL; SQLite serialises writers), and an advance marks the old epoch
*retiring* in a transaction of its own before it rewraps: so no data key is ever left behind
under an epoch that is then destroyed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection, bindparam, func, or_, select, update

from piiguard.crypto.hazmat.aead import Aead
from piiguard.crypto.suites import Suite
from piiguard.errors import (
    InvalidArgument,
    KeyDestroyed,
    KeyProviderError,
    StoreBusy,
    WrappedKeyInvalid,
    WrongKEK,
)
from piiguard.keys.context import context_bytes
from piiguard.keys.protocol import EpochKeyHolder, KEKProvider
from piiguard.keys.secret import SecretBytes
from piiguard.store import Store, aware

__all__ = ["EpochReport", "Epochs", "epoch_holder"]

_ACTIVE, _RETIRING, _DESTROYED = "active", "retiring", "destroyed"
_NONCE = 12


@dataclass(frozen=True, slots=True)
class EpochReport:
    """What advancing the epoch (or rotating the KEK) did.

    Attributes:
        epoch: the new epoch's number.
        rewrapped: data keys rewrapped under it.
        destroyed: earlier epochs destroyed.
        unreadable: ids of key rows that could not be unwrapped (damaged, or under an epoch
            already destroyed): left as they were, and reported.
    """

    epoch: int
    rewrapped: int
    destroyed: int
    unreadable: tuple[int, ...] = ()


def epoch_holder(kek: KEKProvider) -> EpochKeyHolder:
    """Where a KEK keeps its epoch objects: the KEK itself, or its ``epoch_keys``.

    Raises:
        TypeError: the KEK keeps none (give ``Guard.open(epoch_keys=EpochKeyFile(...))``).
    """
    if isinstance(kek, EpochKeyHolder):
        return kek
    holder = getattr(kek, "epoch_keys", None)
    if isinstance(holder, EpochKeyHolder):
        return holder
    raise InvalidArgument(
        "this KEK keeps no epoch keys: pass epoch_keys=piiguard.keys.EpochKeyFile(path, kek)"
    )


def _aad(encoded_context: bytes, epoch: int) -> bytes:
    """The associated data of a data key wrapped under an epoch: its context, then the
    epoch number (so a wrapped key moved to another epoch's row does not open)."""
    return encoded_context + b"\x00epoch" + epoch.to_bytes(8, "big")


def _epoch_context(epoch: int) -> dict[str, str]:
    return {"piiguard": "epoch-key", "epoch": str(epoch)}


class Epochs:
    """The epoch keys of one store, under one current holder (plus earlier ones)."""

    def __init__(
        self,
        store: Store,
        suite: Suite,
        holder: EpochKeyHolder,
        *,
        previous: Iterable[EpochKeyHolder],
        keks: Mapping[str, KEKProvider],
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._suite = suite
        self._holder = holder
        self._holders = {h.holder_id: h for h in (*previous, holder)}
        self._keks = keks  # for rows wrapped by a KEK directly (stores before schema 5)
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[int, Aead] = {}
        self._missing = False

    # -- the active epoch -----------------------------------------------------------------

    def wrap(
        self,
        connection: Connection,
        secret: bytes,
        context: Mapping[str, str],
        *,
        may_create: bool = True,
    ) -> tuple[int, bytes]:
        """Wrap a new data key under the active epoch, inside the transaction creating it.

        ``may_create=False`` (a transaction that may roll back while the epoch key stays in
        memory): no epoch yet is a StoreBusy, never an epoch made there."""
        epoch, aead = self._active(connection, may_create)
        nonce = os.urandom(_NONCE)
        return epoch, nonce + aead.encrypt(nonce, secret, _aad(context_bytes(context), epoch))

    def _active(self, connection: Connection, may_create: bool = True) -> tuple[int, Aead]:
        table = self._store.tables.epochs
        newest = (
            select(table.c.epoch)
            .where(table.c.status == _ACTIVE)
            .order_by(table.c.epoch.desc())
            .limit(1)
        )
        epoch = connection.execute(newest.with_for_update(read=True)).scalar_one_or_none()
        if epoch is None:
            if not may_create:
                raise StoreBusy(
                    "the store has no key epoch yet: make the first key outside the "
                    "application's transaction"
                )
            self._store.serialize(connection, "epoch")
            epoch = connection.execute(newest).scalar_one_or_none()
            if epoch is None:
                return self._create(connection, self._holder)
        return int(epoch), self.key(int(epoch), connection)

    def _create(self, connection: Connection, holder: EpochKeyHolder) -> tuple[int, Aead]:
        table = self._store.tables.epochs
        epoch = int(
            connection.execute(
                table.insert()
                .values(holder_id=holder.holder_id, status=_ACTIVE, created_at=self._clock())
                .returning(table.c.epoch)
            ).scalar_one()
        )
        ref = holder.create_epoch()
        key = SecretBytes(os.urandom(self._suite.dek_size))
        sealed = holder.seal_epoch_key(ref, key, _epoch_context(epoch))
        connection.execute(
            update(table).where(table.c.epoch == epoch).values(ref=ref, sealed=sealed)
        )
        aead = self._keys[epoch] = self._suite.aead(key)
        return epoch, aead

    # -- opening -----------------------------------------------------------------------

    def key(self, epoch: int, connection: Connection | None = None) -> Aead:
        """The AEAD of an epoch key, opened by its holder once and then cached.

        ``connection``: the caller's, when it is inside a transaction (on SQLite a second
        connection would wait for that transaction's lock, forever).

        Raises:
            KeyDestroyed: the epoch was destroyed.
            KeyProviderError: its holder was not given to this Guard, or refused.
        """
        found = self._keys.get(epoch)
        if found is not None:
            return found
        table = self._store.tables.epochs
        query = select(table).where(table.c.epoch == epoch)
        if connection is not None:
            row = connection.execute(query).first()
        else:
            with self._store.engine.connect() as own:
                row = own.execute(query).first()
        if row is None or row.status == _DESTROYED or row.sealed is None or row.ref is None:
            raise KeyDestroyed
        holder = self._holders.get(row.holder_id)
        if holder is None:
            raise WrongKEK("an epoch key is held by a holder this Guard was not given")
        try:
            key = SecretBytes(holder.open_epoch_key(row.ref, row.sealed, _epoch_context(epoch)))
        except WrappedKeyInvalid:
            # the epoch key itself, not one row: never taken for a damaged row to skip
            raise WrongKEK("an epoch key does not open under its holder") from None
        except KeyDestroyed:
            self._missing = self._missing or row.status == _ACTIVE  # seen by check()
            raise
        with self._lock:
            aead = self._keys[epoch] = self._suite.aead(key)
        return aead

    def unwrap(
        self,
        row: Any,
        context: Mapping[str, str],
        encoded: bytes | None = None,
        connection: Connection | None = None,
    ) -> SecretBytes:
        """The data key of a key row (under its epoch, or its KEK before schema 5);
        ``encoded`` is ``context_bytes(context)`` when the caller has it already, and
        ``connection`` the caller's transaction, if it is in one."""
        if row.epoch is None:
            provider = self._keks.get(row.kek_id)
            if provider is None:
                raise KeyProviderError("the key is wrapped by a KEK this Guard was not given")
            return SecretBytes(provider.unwrap(row.wrapped, context))
        aad = _aad(encoded if encoded is not None else context_bytes(context), int(row.epoch))
        try:
            return SecretBytes(
                self.key(int(row.epoch), connection).decrypt(
                    row.wrapped[:_NONCE], row.wrapped[_NONCE:], aad
                )
            )
        except InvalidTag:
            raise WrappedKeyInvalid("a data key does not unwrap under its epoch key") from None

    def forget(self, epoch: int) -> None:
        """Drop an epoch key from memory (it was destroyed, maybe by another process)."""
        self._keys.pop(epoch, None)

    def check(self, *, strict: bool = False) -> bool:
        """Open every live epoch key, and find a KEK for every key wrapped by one directly:
        a Guard given the wrong KEK fails here, at start-up, not at its first request.
        Returns False when the active epoch's object is gone from its holder: a copy of the
        store from before an advance (its reads say ``KeyDestroyed``, as designed), or a
        holder that lost it (a key file restored without its ``.epochs`` file); ``strict``
        (an advance) refuses that with ``WrongKEK``, since advancing would destroy what the
        holder may yet get back.

        Raises:
            WrongKEK: an epoch's holder was not given, or does not open its key.
            KeyProviderError: a holder failed (an outage, a throttle), which says nothing
                of the key.
        """
        epochs, keys = self._store.tables.epochs, self._store.tables.keys
        with self._store.engine.connect() as connection:
            live = connection.execute(
                select(epochs.c.epoch).where(epochs.c.status != _DESTROYED)
            ).scalars()
            direct = connection.execute(
                select(keys.c.kek_id)
                .where(keys.c.epoch.is_(None), keys.c.status != "destroyed")
                .distinct()
            ).scalars()
            live_epochs, kek_ids = [int(e) for e in live], set(direct)
        if kek_ids - set(self._keks) - {None}:
            raise WrongKEK("keys in this store are wrapped by a KEK this Guard was not given")
        complete = True
        for epoch in live_epochs:
            self._missing = False
            try:
                self.key(epoch)
            except KeyDestroyed:  # a retiring epoch being destroyed, or a missing object
                complete = complete and not self._missing
            except WrongKEK:
                raise WrongKEK(
                    "the KEK this Guard was given does not open the store's keys (another "
                    "key file, or a rotation's new KEK not given in previous_keks)"
                ) from None
        if not complete and strict:
            raise WrongKEK(
                "the active epoch's object is missing from its holder: restore it (a key "
                "file's .epochs file, the token, the KMS account) before advancing; a copy "
                "of the store from before an advance has nothing to advance"
            )
        return complete

    def current_holder(self, default: EpochKeyHolder) -> EpochKeyHolder:
        """The holder of the newest active epoch, when this Guard has it; else ``default``.
        Advances keep the store's holder, so an instance that still names the old KEK first
        does not undo another instance's rotation: only a rotation changes the holder."""
        table = self._store.tables.epochs
        with self._store.engine.connect() as connection:
            holder_id = connection.execute(
                select(table.c.holder_id)
                .where(table.c.status == _ACTIVE)
                .order_by(table.c.epoch.desc())
                .limit(1)
            ).scalar_one_or_none()
        return self._holders.get(holder_id, default) if holder_id is not None else default

    def add_holder(self, holder: EpochKeyHolder) -> None:
        """Accept epochs of another holder (a KEK rotation's target)."""
        self._holders[holder.holder_id] = holder

    # -- advancing ---------------------------------------------------------------------

    def due(self, now: datetime, period: Any) -> bool:
        """Whether the newest active epoch is older than ``period``."""
        table = self._store.tables.epochs
        with self._store.engine.connect() as connection:
            created = connection.execute(
                select(func.max(table.c.created_at)).where(table.c.status == _ACTIVE)
            ).scalar_one_or_none()
        return created is None or aware(created) + period <= now

    def advance(
        self,
        holder: EpochKeyHolder,
        *,
        wrap_context: Callable[[Any], Mapping[str, str]],
        batch_size: int,
        progress: Callable[[int], object] | None,
        on_destroyed: Callable[[Connection, int], None],
    ) -> EpochReport:
        """Make a new epoch under ``holder``, rewrap every live key, destroy older epochs.

        Always a *new* epoch, even when resuming a crashed advance: an epoch made before an
        erasure may hold that erasure's keys in a copy of the store.
        """
        if batch_size < 1:
            raise InvalidArgument("batch_size is at least 1")
        # every live epoch must open before anything changes: an advance by an instance that
        # cannot open them (a missing .epochs file, a KEK rotated away) would make a new
        # epoch under the wrong holder and report every key unreadable
        self.check(strict=True)
        self.add_holder(holder)
        table = self._store.tables.epochs
        with self._store.transaction() as connection:
            self._store.serialize(connection, "epoch")
            connection.execute(
                update(table).where(table.c.status == _ACTIVE).values(status=_RETIRING)
            )
            epoch, aead = self._create(connection, holder)
        rewrapped, unreadable = self._rewrap(epoch, aead, wrap_context, batch_size, progress)
        destroyed = self._destroy_retiring(on_destroyed, set(unreadable))
        return EpochReport(epoch, rewrapped, destroyed, tuple(unreadable))

    def _rewrap(
        self,
        epoch: int,
        aead: Aead,
        wrap_context: Callable[[Any], Mapping[str, str]],
        batch_size: int,
        progress: Callable[[int], object] | None,
    ) -> tuple[int, list[int]]:
        keys, epochs = self._store.tables.keys, self._store.tables.epochs
        rewrapped, last = 0, -1
        unreadable: list[int] = []
        while True:
            with self._store.transaction() as connection:
                status = connection.execute(
                    select(epochs.c.status)
                    .where(epochs.c.epoch == epoch)
                    .with_for_update(read=True)
                ).scalar_one()
                if status != _ACTIVE:
                    # a later advance retired this epoch: it rewraps every key itself, and
                    # writing more under this one would leave keys under an epoch it destroys
                    return rewrapped, unreadable
                rows = connection.execute(
                    select(keys)
                    .where(
                        keys.c.key_id > last,
                        keys.c.wrapped.is_not(None),
                        or_(keys.c.epoch.is_(None), keys.c.epoch != epoch),
                    )
                    .order_by(keys.c.key_id)
                    .limit(batch_size)
                    .with_for_update()
                ).all()
                updates = []
                for row in rows:
                    context = wrap_context(row)
                    encoded = context_bytes(context)
                    try:
                        secret = self.unwrap(row, context, encoded, connection)
                    except (KeyDestroyed, WrappedKeyInvalid):
                        # a damaged row, or one under an epoch already gone: reported. Any
                        # other provider failure (an outage, a throttle) stops the advance,
                        # which leaves the old epoch retiring: run it again.
                        unreadable.append(int(row.key_id))
                        continue
                    nonce = os.urandom(_NONCE)
                    aad = _aad(encoded, epoch)
                    updates.append(
                        {
                            "id": row.key_id,
                            "w": nonce + aead.encrypt(nonce, secret, aad),
                        }
                    )
                if updates:
                    connection.execute(
                        update(keys)
                        .where(keys.c.key_id == bindparam("id"))
                        .values(wrapped=bindparam("w"), epoch=epoch, kek_id=None),
                        updates,
                    )
                rewrapped += len(updates)
            if rows:
                last = int(rows[-1].key_id)
                if progress is not None:
                    progress(rewrapped)
            if len(rows) < batch_size:
                return rewrapped, unreadable

    def _destroy_retiring(
        self, on_destroyed: Callable[[Connection, int], None], unreadable: set[int]
    ) -> int:
        """Destroy every retiring epoch that no live key is wrapped under any more (but the
        ``unreadable`` ones, which nothing can rewrap): one another advance is still
        rewrapping is left to that advance."""
        table, keys = self._store.tables.epochs, self._store.tables.keys
        with self._store.engine.connect() as connection:
            retiring = connection.execute(
                select(table.c.epoch, table.c.holder_id, table.c.ref).where(
                    table.c.status == _RETIRING
                )
            ).all()
            still_used = {
                int(key_id): int(epoch)
                for key_id, epoch in connection.execute(
                    select(keys.c.key_id, keys.c.epoch).where(
                        keys.c.epoch.in_([row.epoch for row in retiring]),
                        keys.c.wrapped.is_not(None),
                    )
                )
            }
        in_use = {epoch for key_id, epoch in still_used.items() if key_id not in unreadable}
        retiring = [row for row in retiring if int(row.epoch) not in in_use]
        for row in retiring:
            holder = self._holders.get(row.holder_id)
            if holder is None:
                raise KeyProviderError("an epoch is held by a holder this Guard was not given")
            if row.ref is not None:
                holder.destroy_epoch(row.ref)
            with self._store.transaction() as connection:
                connection.execute(
                    update(table)
                    .where(table.c.epoch == row.epoch)
                    .values(status=_DESTROYED, sealed=None, destroyed_at=self._clock())
                )
                on_destroyed(connection, int(row.epoch))
            self.forget(int(row.epoch))
        return len(retiring)
