"""Keyring: the key layer of one store, assembled from parts with one job each.

- :mod:`~piiguard.crypto.datakeys`: data keys (DEKs) per scope, their use limits, the
  plaintext cache with its eviction, liveness (shreds seen from other processes), shredding.
- :mod:`~piiguard.crypto.roots`: root keys and derivation, handed out as bound primitives.
- :mod:`~piiguard.crypto.pseudonyms`: the subject pseudonymizer every part names subjects by.
- :mod:`~piiguard.crypto.epochs`: the epoch keys every DEK is wrapped under; advancing the
  epoch makes shreds reach copies of the store, and KEK rotation is an advance into the new
  KEK's holder.

The keyring adds what spans them: the erasure log replayed on open, epoch advances and KEK
rotation, and a forked child's reset.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from piiguard.crypto.datakeys import (
    DEFAULT_MAX_USES,
    LIVENESS_INTERVAL,
    DataKeys,
    row_context,
)
from piiguard.crypto.epochs import EpochReport, Epochs, epoch_holder
from piiguard.crypto.erasure_log import ErasureLog
from piiguard.crypto.pseudonyms import Pseudonymizer
from piiguard.crypto.roots import RootKeys
from piiguard.crypto.suites import Suite
from piiguard.errors import InvalidArgument
from piiguard.keys.protocol import EpochKeyHolder, KEKProvider
from piiguard.store import Store, aware

__all__ = ["DEFAULT_MAX_USES", "LIVENESS_INTERVAL", "Keyring", "RotationReport"]

_DESTROYED = "destroyed"
_LIVE_KEYRINGS: weakref.WeakSet[Keyring] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for keyring in list(_LIVE_KEYRINGS):
        keyring._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What a KEK rotation did: keys rewrapped now, and keys that could not be (their ids
    in ``unreadable``: damaged rows, reported rather than stopping the rotation)."""

    rewrapped: int
    remaining: int
    unreadable: tuple[int, ...] = ()


class Keyring:
    """The keys of one store, under one KEK (plus earlier KEKs during a rotation).

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
            raise InvalidArgument("max_uses must be between 1 and 2**32")
        if max_age <= timedelta(0):
            raise InvalidArgument("max_age must be positive")
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
        self._data = DataKeys(
            store,
            suite,
            self._epochs,
            clock=clock,
            max_uses=max_uses,
            max_age=max_age.total_seconds(),
            monotonic=monotonic,
            on_drop=lambda scopes: self._roots.drop(scopes),  # noqa: PLW0108 - made below
        )
        self._roots = RootKeys(store, self._data, self._epochs, suite)
        self._pseudonyms = Pseudonymizer(self._roots, suite)
        # the parts' calls, bound once (the hot paths pay no delegation)
        self.encryption_key = self._data.encryption_key
        self.encryption_key_for = self._data.encryption_key_for
        self.decryption_key = self._data.decryption_key
        self.key_scope = self._data.key_scope
        self.key_counts = self._data.key_counts
        self.scope_key_counts = self._data.scope_key_counts
        self.retire = self._data.retire_scope
        self.root_key = self._roots.root_key
        self.prepare_root = self._roots.prepare
        self.settle_linking = self._roots.settle
        self.root_key_by_id = self._roots.root_key_by_id
        self.derived_key = self._roots.derived_key
        self.derived_key_by_id = self._roots.derived_key_by_id
        self.mac = self._roots.mac
        self.sealer = self._roots.sealer
        self.ff1 = self._roots.ff1
        self.linking_purposes = self._roots.linking_purposes
        self.subject_scope = self._pseudonyms.subject_scope
        self.subject_scope_function = self._pseudonyms.subject_scope_function
        _LIVE_KEYRINGS.add(self)

    @property
    def suite(self) -> Suite:
        """The suite new keys are made for."""
        return self._suite

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock, no reserved use blocks, no timer (threads do not
        survive a fork), so parent and child never count the same uses; and a pool of its own,
        so the child never talks over the parent's database connections (SQLAlchemy's recipe:
        ``dispose(close=False)`` leaves them to the parent)."""
        self._data.after_fork()
        self._store.engine.dispose(close=False)

    def close(self) -> None:
        """Forget every plaintext key and stop the eviction timer."""
        self._data.close()

    # -- erasure -------------------------------------------------------------------------

    def shred(
        self,
        scope: str,
        connection: Connection | None = None,
        *,
        made_by: datetime | None = None,
    ) -> int:
        """Destroy every key of a scope (only those made by ``made_by``, for an erasure
        carried out later than it was asked); return how many (see :meth:`DataKeys.shred`).

        A subject scope is first appended to the erasure log (when there is one), so that a
        restored copy of the store forgets it again on open.
        """
        if self._erasure_log is not None and scope.startswith("subject:"):
            self._erasure_log.append(scope, made_by or self._clock())
        return self._data.shred(scope, connection, made_by=made_by)

    def replay_erasures(self, batch: int = 500) -> int:
        """Shred again, in every scope named in the erasure log, the keys that existed when
        it was shredded and are live in this store (a restored backup); return how many
        scopes. Keys made after the shred (the subject came back) are kept. Called by
        ``Guard.open``."""
        if self._erasure_log is None:
            return 0
        identity = self._erasure_log.identity()
        if not identity:
            return 0  # no log yet: nothing to replay, and no position to keep
        meta, keys = self._store.tables.meta, self._store.tables.keys
        name = "erasure_log_offset:" + identity  # per log, see ErasureLog
        with self._store.engine.connect() as connection:
            offset = connection.execute(
                select(meta.c.value).where(meta.c.name == name)
            ).scalar_one_or_none()
        entries, end = self._erasure_log.read(int(offset or 0))
        replayed: set[str] = set()
        for start in range(0, len(entries), batch):
            shredded_at: dict[str, datetime] = {}
            for scope, at in entries[start : start + batch]:
                shredded_at[scope] = max(at, shredded_at.get(scope, at))
            with self._store.engine.connect() as connection:
                rows = connection.execute(
                    select(keys.c.key_id, keys.c.scope, keys.c.created_at).where(
                        keys.c.scope.in_(sorted(shredded_at)), keys.c.status != _DESTROYED
                    )
                ).all()
            stale = [
                int(row.key_id)
                for row in rows
                if aware(row.created_at) <= shredded_at[str(row.scope)]
            ]
            if stale:
                replayed.update(self._data.destroy_keys(stale))
        with self._store.transaction() as connection:
            connection.execute(meta.delete().where(meta.c.name == name))
            connection.execute(meta.insert().values(name=name, value=str(end)))
        return len(replayed)

    # -- epochs and KEK rotation ---------------------------------------------------------

    def check_kek(self) -> bool:
        """Fail now if the KEKs and holders given do not open the store's keys
        (:class:`~piiguard.WrongKEK`); False when the active epoch's object is gone from
        its holder (a copy from before an advance, or a holder that lost it)."""
        return self._epochs.check()

    def advance_epoch(
        self, *, batch_size: int = 1000, progress: Callable[[int], object] | None = None
    ) -> EpochReport:
        """A new epoch key; every live data key rewrapped under it; older epochs destroyed.

        Safe while other Guards run; after a crash, call it again (it makes a new epoch and
        carries on). ``progress`` is called with the running count after each batch.
        """
        return self._advance(self._epochs.current_holder(self._holder), batch_size, progress)

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
            wrap_context=row_context,
            batch_size=batch_size,
            progress=progress,
            on_destroyed=lambda connection, epoch: self._data._record_event(
                connection, f"epoch:{epoch}"
            ),
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


def _maybe_holder(kek: KEKProvider) -> EpochKeyHolder | None:
    try:
        return epoch_holder(kek)
    except TypeError:
        return None
