"""Root keys and derivation: the long-lived keys that pseudonyms, blind indexes, keyed tokens,
deterministic encryption and FPE derive from (by HKDF, one key per label), store-wide or one
subject's own; handed out as bound primitives (:class:`~piiguard.crypto.handles.Mac`, FF1).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from piiguard.crypto._secret import SecretBytes
from piiguard.crypto.datakeys import DataKeys, row_context
from piiguard.crypto.epochs import Epochs
from piiguard.crypto.ff1 import FF1
from piiguard.crypto.handles import Mac, Sealer
from piiguard.crypto.hazmat.mac import hkdf
from piiguard.crypto.suites import Suite
from piiguard.errors import KeyDestroyed, KeyNotFound, PiiGuardError
from piiguard.store import Store

__all__ = ["ROOT_SCOPE", "RootKeys"]

ROOT_SCOPE = "root"
_ROOT = "root"
_DESTROYED = "destroyed"
_DERIVED_CACHE = 4096
#: Root-key purposes whose artefacts are the same for equal values, so they link.
_LINKING = ("token", "index", "deterministic", "fpe")
_LINKING_SET = frozenset(_LINKING)
#: The status of a store-wide linking root made ahead of use (``guard.bind`` makes the roots
#: its writes may need before the application's transaction): it links nothing until an
#: artefact is made under it, which makes it ``active``.
_PREPARED, _ACTIVE = "prepared", "active"


class RootKeys:
    """Root keys of one store, unwrapped once and kept for the Guard's life (a subject's
    are dropped when that subject is shredded, here or in another process)."""

    def __init__(self, store: Store, data: DataKeys, epochs: Epochs, suite: Suite) -> None:
        self._store = store
        self._data = data
        self._epochs = epochs
        self._suite = suite
        self._roots: dict[tuple[str, str], tuple[int, SecretBytes]] = {}
        self._derived: dict[tuple[str, bytes, int], tuple[int, SecretBytes]] = {}
        self._handles: dict[tuple[str, bytes], Mac | FF1 | Sealer] = {}
        #: store-wide linking purposes whose root is known to be ``active`` (committed)
        self._used: set[str] = set()
        #: purposes with artefacts made whose ``active`` mark is not written yet
        self._owed: set[str] = set()

    def drop(self, scopes: set[str] | None) -> None:
        """Forget the roots of these scopes (None: everything), called with the lock held."""
        if scopes is None:
            self._roots.clear()
            self._derived.clear()
            self._handles.clear()
            return
        for root in [r for r in self._roots if r[0] in scopes]:
            del self._roots[root]

    def root_key(self, purpose: str, scope: str = ROOT_SCOPE) -> tuple[int, SecretBytes]:
        """The long-lived root key for a purpose (``pseudonym``, ``index``, ``deterministic``,
        ``token``, ``fpe``), created on first use: the store-wide one, or a subject's own
        (``scope``), which a shred of that subject destroys. Root keys are never used with
        nonces, so they have no use limit; they are not cached beyond the life of the Guard."""
        return self._root_key(purpose, scope)

    def prepare(self, purpose: str, *, wait: bool = True) -> None:
        """Make the store-wide root of ``purpose`` ahead of its use, in a transaction of its
        own (what ``guard.bind`` needs before the application's transaction holds a SQLite
        file). A linking root made here is ``prepared``: erasure receipts do not count it as
        linking until an artefact is made under it. ``wait=False``: a SQLite file another
        connection holds is a StoreBusy at once."""
        self._root_key(purpose, ROOT_SCOPE, prepared=True, wait=wait)

    def _root_key(
        self, purpose: str, scope: str, *, prepared: bool = False, wait: bool = True
    ) -> tuple[int, SecretBytes]:
        with self._data._lock:
            if scope != ROOT_SCOPE:
                self._data._check_liveness()
            found = self._roots.get((scope, purpose))
            if found is not None:
                return found
            keys = self._store.tables.keys
            name = f"{_ROOT}:{purpose}"
            live = (keys.c.scope == scope, keys.c.purpose == name, keys.c.status != _DESTROYED)
            # read first: the root is usually made already, and a read waits on no writer
            # (not on an application's transaction that holds the SQLite file either)
            with self._store.engine.connect() as connection:
                made = connection.execute(
                    select(keys.c.key_id).where(*live).order_by(keys.c.key_id).limit(1)
                ).scalar_one_or_none()
            if made is not None:
                return self._remember_root(self._data._row(int(made)))
            with self._store.transaction(wait=wait) as connection:
                self._store.serialize(connection, f"{name}:{scope}")  # whoever comes first
                key_id = connection.execute(
                    select(keys.c.key_id).where(*live).order_by(keys.c.key_id).limit(1)
                ).scalar_one_or_none()
                if key_id is None:
                    key_id, secret = self._data._create(connection, scope, name, 64, 0)
                    if prepared and scope == ROOT_SCOPE and purpose in _LINKING_SET:
                        connection.execute(
                            update(keys).where(keys.c.key_id == key_id).values(status=_PREPARED)
                        )
                    root = self._roots[(scope, purpose)] = (key_id, secret)
                    return root
            return self._remember_root(self._data._row(int(key_id)))

    def _linking(self, purpose: str) -> None:
        """Before an artefact of a store-wide linking purpose is handed out (its root
        exists by now): make sure an erasure receipt will count the purpose."""
        if self._owed:
            self.settle()
        if purpose in _LINKING_SET and purpose not in self._used and purpose not in self._owed:
            self._in_use(purpose)

    def _in_use(self, purpose: str) -> None:
        """A ``prepared`` root becomes ``active`` (it links from now on), in a transaction of
        its own before the artefact exists, so no rollback takes the mark back (a receipt may
        overstate, never understate). Where that transaction cannot run (a bound SQLite
        transaction holds the file) the mark is owed: counted by this process's receipts,
        and written as soon as it can be."""
        keys = self._store.tables.keys
        with self._store.engine.connect() as connection:
            prepared = connection.execute(
                select(keys.c.key_id).where(*self._prepared_root(purpose))
            ).first()
        if prepared is None:  # active (made in use, or marked by another instance)
            self._used.add(purpose)
            return
        binding = self._store.bound()
        if binding is not None and binding.holds_the_file():
            self._owed.add(purpose)
            return
        self._mark_active(purpose, wait=True)

    def _prepared_root(self, purpose: str) -> tuple[Any, ...]:
        keys = self._store.tables.keys
        return (
            keys.c.scope == ROOT_SCOPE,
            keys.c.purpose == f"{_ROOT}:{purpose}",
            keys.c.status == _PREPARED,
        )

    def _mark_active(self, purpose: str, *, wait: bool) -> None:
        keys = self._store.tables.keys
        with self._store.transaction(wait=wait) as connection:
            connection.execute(
                update(keys).where(*self._prepared_root(purpose)).values(status=_ACTIVE)
            )
        self._used.add(purpose)
        self._owed.discard(purpose)

    def settle(self) -> None:
        """Write the marks owed (see :meth:`_in_use`) if a transaction of piiguard's own can
        run now without waiting; what still cannot stays owed for the next try."""
        binding = self._store.bound()
        if binding is not None and binding.holds_the_file():
            return
        for purpose in sorted(self._owed):
            try:
                self._mark_active(purpose, wait=False)
            except PiiGuardError:
                return

    def _remember_root(self, row: Any) -> tuple[int, SecretBytes]:
        secret = self._epochs.unwrap(row, row_context(row))
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
                if scope != ROOT_SCOPE:
                    with self._data._lock:
                        self._data._check_liveness()
                    if self._roots.get((scope, purpose)) is not root:
                        raise KeyDestroyed
                return root
        row = self._data._row(key_id)
        if row.purpose != f"{_ROOT}:{purpose}":
            raise KeyNotFound(key_id)
        with self._data._lock:
            return self._remember_root(row)

    def derived_key(
        self, purpose: str, label: bytes, size: int, scope: str = ROOT_SCOPE
    ) -> tuple[int, SecretBytes]:
        """A key derived by HKDF from a root key: one per label (field, column), cached."""
        if scope != ROOT_SCOPE:
            return self._derive(self.root_key(purpose, scope), purpose, label, size)
        found = self._derived.get((purpose, label, size))
        if found is None:
            found = self._derive(self.root_key(purpose), purpose, label, size)
            if len(self._derived) >= _DERIVED_CACHE:
                self._derived.clear()
            self._derived[(purpose, label, size)] = found
        self._linking(purpose)
        return found

    def mac(self, purpose: str, label: bytes) -> Mac:
        """A bound HMAC under the key derived for ``label`` (keyed tokens): a handle, so
        the caller never holds the key."""
        found = self._handles.get((purpose, label))
        if not isinstance(found, Mac):
            key_id, key = self.derived_key(purpose, label, 32)
            found = self._handles[(purpose, label)] = Mac(key_id, self._suite.mac, key)
        self._linking(purpose)
        return found

    def sealer(self, purpose: str, label: bytes, key_id: int | None = None) -> Sealer:
        """A bound AEAD (the suite's) under the key derived for ``label`` from the current
        root, or from the root with ``key_id`` (to open what was sealed under it)."""
        size = self._suite.dek_size
        if key_id is None:
            key_id = self.derived_key(purpose, label, size)[0]  # the current root's id
        name = (purpose, b"sealer|%d|" % key_id + label)
        found = self._handles.get(name)
        if not isinstance(found, Sealer):  # derived once per root, not at each read
            _, key = self.derived_key_by_id(purpose, label, size, key_id)
            found = self._handles[name] = Sealer(key_id, self._suite.aead(bytes(key)))
        return found

    def ff1(self, purpose: str, label: bytes, alphabet: str) -> FF1:
        """An FF1 cipher under the AES-256 key derived for ``label`` (format-preserving
        tokens), built here so the key bytes stay in the key layer."""
        found = self._handles.get((purpose, label + b"|" + alphabet.encode()))
        if not isinstance(found, FF1):
            _, key = self.derived_key(purpose, label, 32)
            found = FF1(key, alphabet)
            self._handles[(purpose, label + b"|" + alphabet.encode())] = found
        self._linking(purpose)
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
        """Purposes under whose store-wide root key artefacts were made (keyed tokens,
        blind indexes, FPE tokens, deterministic ciphertexts without ``subject=``): they
        still link a subject's values after that subject's keys are shredded. A root made
        ahead of use and never used (``prepared``) links nothing; one this process made
        artefacts under counts, its mark written or not."""
        self.settle()
        keys = self._store.tables.keys
        with self._store.engine.connect() as connection:
            names = connection.execute(
                select(keys.c.purpose).where(
                    keys.c.scope == ROOT_SCOPE,
                    keys.c.purpose.in_([f"{_ROOT}:{p}" for p in _LINKING]),
                    keys.c.status != _PREPARED,
                )
            ).scalars()
            found = {str(name).removeprefix(f"{_ROOT}:") for name in names}
        return tuple(p for p in _LINKING if p in found or p in self._owed)
