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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session

from piiguard.errors import InvalidArgument, StoreBusy

if TYPE_CHECKING:
    from piiguard.store.store import Store

__all__ = ["Binding", "joined", "same_database"]
_HOOKS = "piiguard_bindings"

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


def _postgres_identity(connection: Connection) -> tuple[Any, ...]:
    return tuple(
        connection.execute(
            text("SELECT current_database(), inet_server_addr(), inet_server_port()")
        ).one()
    )


def same_database(store_connection: Connection, application: Connection) -> InvalidArgument | None:
    """Why ``application`` cannot carry the store's writes (another database or file), or
    None when it is the store's own database."""
    refusal = InvalidArgument(
        "guard.bind needs a connection to the store's own database (the same SQLite file or "
        "PostgreSQL database)"
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
    return (
        None
        if _postgres_identity(store_connection) == _postgres_identity(application)
        else (refusal)
    )


# -- what guard.bind takes: a Session, a Connection, or an Engine ------------------------------


def _ended(holder: Any, committed: bool) -> None:
    """The end of the application's transaction on ``holder`` (a Session or Connection):
    tell each binding that wrote in it."""
    for binding in holder.info.pop(_HOOKS, []):
        if committed:
            binding.committed()
        else:
            binding.rolled_back()


def _session_committed(session: Session) -> None:
    _ended(session, True)
    drain = session.info.pop("piiguard_drain", None)
    if drain is not None:
        drain()


def _session_rolled_back(session: Session) -> None:
    _ended(session, False)


def _connection_committed(connection: Connection) -> None:
    _ended(connection, True)  # before the driver's commit: nothing here may write


def _connection_rolled_back(connection: Connection) -> None:
    _ended(connection, False)


def _arm(holder: Any, on_commit: Any, on_rollback: Any) -> Callable[[Binding], None]:
    def arm(binding: Binding) -> None:
        hooks = holder.info.setdefault(_HOOKS, [])
        if binding not in hooks:
            hooks.append(binding)
        if not holder.info.get("piiguard_listening"):
            holder.info["piiguard_listening"] = True
            commit_event, rollback_event = (
                ("after_commit", "after_rollback")
                if isinstance(holder, Session)
                else ("commit", "rollback")
            )
            event.listen(holder, commit_event, on_commit)
            event.listen(holder, rollback_event, on_rollback)

    return arm


@contextmanager
def joined(store: Store, target: object, drain: Callable[[], object]) -> Iterator[Connection]:
    """Bind ``store``'s joined writes to ``target`` for the ``with`` block.

    - a ``Session``: its transaction (begun if needed); hooks on its commit and rollback, and
      ``drain`` right after a commit;
    - a ``Connection``: its transaction, which the application commits; waiting events are
      chained at the log's next write, read or verification;
    - an ``Engine``: a transaction begun here and committed when the block ends (rolled back
      if it raises), then ``drain``.
    """
    if isinstance(target, Session):
        session = target

        def arm_session(binding: Binding) -> None:
            session.info["piiguard_drain"] = drain
            _arm(session, _session_committed, _session_rolled_back)(binding)

        with store.bind(session.connection, session.in_transaction, arm_session):
            yield session.connection()
        return
    if isinstance(target, Connection):
        connection = target
        arm = _arm(connection, _connection_committed, _connection_rolled_back)
        with store.bind(lambda: connection, connection.in_transaction, arm):
            yield connection
        return
    if isinstance(target, Engine):
        with target.connect() as own:
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
        drain()
        return
    raise InvalidArgument("guard.bind takes a SQLAlchemy Session, Connection or Engine")
