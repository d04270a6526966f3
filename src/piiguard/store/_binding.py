"""Bindings: piiguard's writes joining the application's own transaction.

``guard.bind(session_or_connection)`` puts a :class:`Binding` in a context variable of the
store. Writes that describe the application's state (consent events, retention tracking,
vault entries, and the audit events that report them) then go through the application's
connection, so they commit or roll back with its rows. What must outlive a rollback (data
keys handed to other threads, the record of a reveal already made) keeps its own
transaction; on SQLite, where the application's write transaction holds the whole file, such
a write is refused at once with :class:`~piiguard.StoreBusy` rather than waiting on a lock
its own thread holds.
"""

from __future__ import annotations

import itertools
import os
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import InvalidRequestError, SQLAlchemyError, UnboundExecutionError
from sqlalchemy.orm import Session

from piiguard.errors import InvalidArgument, PiiGuardError, StoreBusy, StoreError
from piiguard.store._failures import describe

if TYPE_CHECKING:
    from piiguard.store.store import Store

__all__ = ["Binding", "joined", "same_database"]
_log = structlog.get_logger("piiguard.store")

_unique = itertools.count(-(2**62), -1)


class Binding:
    """One application transaction piiguard's writes join.

    ``dirty`` turns true at the first joined write: from then on reads go through the same
    connection (the application sees its own uncommitted writes) and no cache keeps what
    they read. What waits for the commit (:meth:`after_commit`) runs when the application's
    transaction ends with a commit, and is dropped when it rolls back.

    Args:
        source: the application's connection (a Session's, fetched when needed: after a
            commit the Session hands out a new one).
        in_transaction: whether the application has a transaction open now.
        arm: called at the first joined write of each transaction, to hear of its end.
    """

    __slots__ = ("_after", "_arm", "_in_transaction", "_source", "dirty", "keys", "sqlite")

    def __init__(
        self,
        source: Callable[[], Connection],
        in_transaction: Callable[[], bool],
        arm: Callable[[Binding], None],
        dialect: str,
    ) -> None:
        self._source = source
        self._in_transaction = in_transaction
        self._arm = arm
        self.sqlite = dialect == "sqlite"
        self.dirty = False
        self._after: list[Callable[[], None]] = []
        #: data keys made inside this transaction (SQLite only), by scope and by key id
        self.keys: dict[str | int, Any] = {}

    @property
    def connection(self) -> Connection:
        """The application's connection, inside its transaction."""
        return self._source()

    def write(self) -> Connection:
        """The connection for a joined write; the first one arms the end-of-transaction hooks."""
        connection = self._source()
        if not self.dirty:
            self.dirty = True
            self._arm(self)
        return connection

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` when the application's transaction commits (once)."""
        if action not in self._after:
            self._after.append(action)

    def committed(self) -> None:
        """The application committed: run what waited for it, then forget it."""
        actions, self._after = self._after, []
        self.keys, self.dirty = {}, False
        for action in actions:
            action()

    def rolled_back(self) -> None:
        """The application rolled back: what was written with it is gone."""
        self._after, self.keys, self.dirty = [], {}, False

    def holds_the_file(self) -> bool:
        """Whether the application's SQLite connection is inside a write transaction, so a
        transaction on any other connection to the file would wait for it for ever."""
        if not self.sqlite:
            return False
        if self.dirty:
            return True
        if not self._in_transaction():
            return False
        try:
            driver = self._source().connection.dbapi_connection
        except InvalidRequestError:  # a Session between its commit and its next transaction
            return False
        return bool(getattr(driver, "in_transaction", False))

    def refuse_own_lock(self) -> None:
        """Raise StoreBusy when a write of its own would wait on this binding's lock."""
        if self.holds_the_file():
            raise StoreBusy(
                "the application's own transaction holds the SQLite file: piiguard cannot "
                "write beside it (make the keys and reveals before the first write, commit "
                "first, or use PostgreSQL)"
            )

    @staticmethod
    def generation() -> int:
        """A change-counter value no cache has seen: reads in a dirty binding are not kept."""
        return next(_unique)


def _sqlite_file(connection: Connection) -> str | None:
    for row in connection.exec_driver_sql("PRAGMA database_list"):
        if row[1] == "main":
            return str(row[2]) or None
    return None  # pragma: no cover - SQLite always lists "main"


def _postgres_identity(connection: Connection, meta: str) -> tuple[Any, ...]:
    """What tells one server, database and set of piiguard tables from another: the table
    that ``meta`` names from this connection (its search path included), and the server's
    start time beside its address (two servers on one socket path never share both)."""
    return tuple(
        connection.execute(
            text(
                # all as text, read alike whatever loaders the driver connection has
                # (Django's reads an address as str, psycopg's as an IPv4Address)
                "SELECT current_database()::text, inet_server_addr()::text, "
                "inet_server_port()::text, extract(epoch from pg_postmaster_start_time())::text, "
                "to_regclass(:meta)::oid::text"
            ),
            {"meta": meta},
        ).one()
    )


def same_database(
    store_connection: Connection, application: Connection, meta: str = "piiguard_meta"
) -> InvalidArgument | None:
    """Why ``application`` cannot carry the store's writes (another database, file or set of
    piiguard tables), or None when its statements reach the store's own tables (``meta``:
    the store's meta table as its statements name it)."""
    refusal = InvalidArgument(
        "guard.bind needs a connection to the store's own database (the same SQLite file or "
        "PostgreSQL database and schema)"
    )
    if store_connection.dialect.name != application.dialect.name:
        return refusal
    if store_connection.dialect.name == "sqlite":
        mine, theirs = _sqlite_file(store_connection), _sqlite_file(application)
        if mine is None or theirs is None:
            return refusal  # an in-memory database is never shared between connections
        try:
            return None if os.path.samefile(mine, theirs) else refusal
        except OSError:
            return refusal
    own = _postgres_identity(store_connection, meta)
    same = own[-1] is not None and own == _postgres_identity(application, meta)
    return None if same else refusal


# -- what guard.bind takes: a Session, a Connection, or an Engine ------------------------------

#: Bindings that wrote in each application transaction, by its Session or Connection (held
#: weakly: never in the pooled connection's ``info``, which outlives the Connection).
_WROTE: weakref.WeakKeyDictionary[Any, list[Binding]] = weakref.WeakKeyDictionary()
#: What chains the events of a Session right after its commit.
_DRAINS: weakref.WeakKeyDictionary[Any, Callable[[], object]] = weakref.WeakKeyDictionary()


def _ended(holder: Any, committed: bool) -> None:
    """The end of the application's transaction on ``holder`` (a Session or Connection):
    tell each binding that wrote in it."""
    for binding in _WROTE.pop(holder, []):
        if committed:
            binding.committed()
        else:
            binding.rolled_back()


def _session_committed(session: Session) -> None:
    _ended(session, True)
    drain = _DRAINS.pop(session, None)
    if drain is not None:
        try:
            drain()
        except Exception as error:  # committed already: the events wait, chained later
            _log.warning("audit_outbox_drain_deferred", error=type(error).__name__)


def _session_ended(session: Session, transaction: Any) -> None:
    """A Session transaction ended without a commit hook (a rollback, ``close``,
    ``reset``): the outermost one takes what was written in it. A savepoint's end changes
    nothing here (keys check their own rows)."""
    if transaction.parent is None and not transaction.nested:
        _ended(session, False)


def _connection_committed(connection: Connection) -> None:
    _ended(connection, True)  # before the driver's commit: nothing here may write


def _connection_rolled_back(connection: Connection) -> None:
    _ended(connection, False)


def _arm(holder: Any) -> Callable[[Binding], None]:
    def arm(binding: Binding) -> None:
        hooks = _WROTE.setdefault(holder, [])
        if binding not in hooks:
            hooks.append(binding)
        if isinstance(holder, Session):
            if not event.contains(holder, "after_commit", _session_committed):
                event.listen(holder, "after_commit", _session_committed)
                event.listen(holder, "after_transaction_end", _session_ended)
        elif not event.contains(holder, "commit", _connection_committed):
            event.listen(holder, "commit", _connection_committed)
            event.listen(holder, "rollback", _connection_rolled_back)

    return arm


def _arm_framework(
    on_commit: Callable[[Callable[[], None]], object], drain: Callable[[], object]
) -> Callable[[Binding], None]:
    """Arm a binding through a framework's commit hook: after the commit, what waited for
    it runs and the waiting events are chained."""

    def arm(binding: Binding) -> None:
        def after_commit() -> None:
            binding.committed()
            try:
                drain()
            except Exception as error:  # committed already: the events wait, chained later
                _log.warning("audit_outbox_drain_deferred", error=type(error).__name__)

        on_commit(after_commit)

    return arm


def _autocommits(connection: Connection) -> bool:
    """Whether every statement on ``connection`` commits at once: asked of SQLAlchemy's
    options and of the driver (psycopg's ``autocommit``). (A pysqlite connection without an
    isolation level may still be transactional: SQLAlchemy's recipe emits BEGIN itself.)"""
    if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return True
    if connection.dialect.name == "sqlite":
        return False
    try:
        driver = connection.connection.dbapi_connection
    except Exception:  # a connection that cannot say: taken as transactional
        return False
    return bool(getattr(driver, "autocommit", False))


@contextmanager
def joined(
    store: Store,
    target: object,
    drain: Callable[[], object],
    prepare: Callable[[bool], None],
    on_commit: Callable[[Callable[[], None]], object] | None = None,
) -> Iterator[Connection]:
    """Bind ``store``'s joined writes to ``target`` for the ``with`` block.

    - a ``Session``: its transaction (begun if needed); hooks on its commit and end, and
      ``drain`` right after a commit;
    - a ``Connection``: its transaction, which the application commits; waiting events are
      chained at the log's next write, read or verification;
    - an ``Engine``: a transaction begun here and committed when the block ends (rolled back
      if it raises), then ``drain``.

    ``prepare(wait)`` runs once the target is known to be usable and to reach the store,
    before any of its transaction; ``wait`` is false when the application's SQLite
    connection is inside a transaction already (it may hold the file: no waiting on it).
    ``on_commit`` (a ``Connection`` only) schedules a callback for after the commit of a
    transaction that a framework commits on the driver's connection, not through
    SQLAlchemy (Django's ``transaction.on_commit``); a transaction that never commits never
    runs it, so what waited for the commit is dropped with it.
    """
    if not isinstance(target, Session | Connection | Engine):
        raise InvalidArgument("guard.bind takes a SQLAlchemy Session, Connection or Engine")
    if on_commit is not None and not isinstance(target, Connection):
        raise InvalidArgument("on_commit is for a Connection whose transaction a framework ends")
    if isinstance(target, Session):
        session = target
        try:
            application = session.connection()
        except SQLAlchemyError as error:
            raise _refusal(error) from None
        _refuse_autocommit(application)
        _prepare(store, application, prepare)

        def arm_session(binding: Binding) -> None:
            _DRAINS[session] = drain
            _arm(session)(binding)

        with store.bind(session.connection, session.in_transaction, arm_session):
            yield session.connection()
        return
    if isinstance(target, Connection):
        connection = target
        _refuse_autocommit(connection)
        _prepare(store, connection, prepare)
        arm = _arm(connection) if on_commit is None else _arm_framework(on_commit, drain)
        with store.bind(lambda: connection, connection.in_transaction, arm):
            yield connection
        return
    try:
        own = target.connect()
    except SQLAlchemyError as error:
        raise _refusal(error) from None
    with own:
        _refuse_autocommit(own)
        _prepare(store, own, prepare)
        own.rollback()  # the checks' reads: the block's transaction begins below
        with (
            own.begin(),
            store.bind(lambda: own, own.in_transaction, lambda _: None) as binding,
        ):
            try:
                yield own
            except BaseException:
                binding.rolled_back()
                raise
        binding.committed()  # the block ended and its transaction committed
    try:
        drain()
    except Exception as error:  # committed already: the events wait, chained later
        _log.warning("audit_outbox_drain_deferred", error=type(error).__name__)


def _prepare(store: Store, application: Connection, prepare: Callable[[bool], None]) -> None:
    """Refuse a target that cannot carry the store's writes, then make what the binding
    needs made beforehand: a refused target changes nothing. On SQLite, an application
    connection inside a transaction may hold the file, so nothing here waits on it."""
    refusal = store.bind_refusal(application)
    if refusal is not None:
        raise refusal
    hurry = application.dialect.name == "sqlite" and _driver_in_transaction(application)
    try:
        prepare(not hurry)
    except StoreBusy:
        if not hurry:
            raise
        raise StoreBusy(
            "piiguard makes its store-wide keys before it joins a transaction, and the "
            "application's transaction already holds the SQLite file: bind once before the "
            "application's first write (at start-up, or before the transaction begins)"
        ) from None


def _driver_in_transaction(connection: Connection) -> bool:
    try:
        return bool(getattr(connection.connection.dbapi_connection, "in_transaction", False))
    except InvalidRequestError:  # pragma: no cover - a connection between transactions
        return False


def _refuse_autocommit(connection: Connection) -> None:
    if _autocommits(connection):
        raise InvalidArgument(
            "guard.bind needs a transaction: this connection commits every statement (AUTOCOMMIT)"
        )


def _refusal(error: SQLAlchemyError) -> PiiGuardError:
    """A typed error for a target that cannot give a connection (no URL, no host)."""
    if isinstance(error, UnboundExecutionError):
        return InvalidArgument("guard.bind needs a Session bound to an engine")
    return describe(error) or StoreError("cannot reach the application's database", "unavailable")
