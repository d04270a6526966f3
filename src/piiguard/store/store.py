"""Store: one storage layer on SQLAlchemy Core for everything piiguard persists.

``sqlite:///path`` is the embedded default (WAL journal, writers serialised with
``BEGIN IMMEDIATE``, a busy timeout so concurrent processes wait instead of failing);
``postgresql+psycopg://...`` is the same code, optionally inside a named schema, and is
what several application instances share. The schema is created and migrated on open,
under a lock, so many processes may open the same store at once.
"""

from __future__ import annotations

import json
import os
import re
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    String,
    cast,
    create_engine,
    event,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from piiguard.errors import InvalidArgument, PiiGuardError, StoreError
from piiguard.store._binding import Binding, same_database
from piiguard.store._changes import (
    COUNTER_ROW,
    PostgresChanges,
    SqliteChanges,
    local_changes,
    notify,
)
from piiguard.store._failures import describe, translate_errors
from piiguard.store._schema import SCHEMA_VERSION, Tables

__all__ = ["Binding", "HeldConnection", "Store", "aware"]

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_MIGRATION_LOCK = zlib.crc32(b"piiguard schema migration")
#: How long a SQLite connection waits for another's lock before "database is locked": long
#: enough for any of piiguard's own transactions (milliseconds each), short enough that an
#: application holding the file gets a clear StoreBusy soon rather than a hung request.
_BUSY_TIMEOUT_MS = 10_000
#: How long piiguard's own PostgreSQL transactions wait for a lock while the caller's bound
#: transaction has written (it may hold that lock itself).
_BOUND_LOCK_TIMEOUT = "3s"
#: The execution options that mark piiguard's own write transactions, and those that would
#: rather fail at once than wait for a lock.
_WRITES = "piiguard_writes"
_NO_WAIT = "piiguard_no_wait"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let the "begin" hook below open transactions
    cursor = dbapi_connection.cursor()
    # the busy timeout first (the driver already waits as long, from its connect): switching
    # a fresh file to WAL needs a lock that another process opening it may hold
    cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """Writers take the write lock when they begin (no deadlock between two readers that
    both go on to write); readers begin deferred, so that they never wait on a writer (WAL
    lets them read beside it), and never on an application's transaction on the same file."""
    options = connection.get_execution_options()
    wait = 0 if options.get(_NO_WAIT, False) else _BUSY_TIMEOUT_MS
    kept = connection.connection.info  # the driver connection's: what it was last set to
    if kept.get(_NO_WAIT, _BUSY_TIMEOUT_MS) != wait:
        connection.exec_driver_sql(f"PRAGMA busy_timeout={wait}")
        kept[_NO_WAIT] = wait
    connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(_WRITES, False) else "BEGIN")


def aware(moment: datetime) -> datetime:
    """A datetime read back from the store, timezone-aware.

    SQLite hands back naive datetimes; piiguard writes aware UTC ones, so naive means UTC.
    """
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Store:
    """A handle on piiguard's tables in one database.

    Use :meth:`open`; the handle is thread-safe (a connection pool) and must be closed.
    """

    def __init__(self, engine: Engine, tables: Tables) -> None:
        self.engine = engine
        self.tables = tables
        #: the same pool, for transactions that write (on SQLite they begin IMMEDIATE)
        self._writer = engine.execution_options(**{_WRITES: True})
        self._impatient = engine.execution_options(**{_WRITES: True, _NO_WAIT: True})
        self._watch: SqliteChanges | PostgresChanges | None = None
        self._watch_lock = threading.Lock()
        self._schema_name = tables.metadata.schema or ""
        self._change_key = engine.url.render_as_string(hide_password=True) + "#" + self._schema_name
        self._binding: ContextVar[Binding | None] = ContextVar(
            f"piiguard_binding_{id(self)}", default=None
        )

    @classmethod
    def open(cls, url: str, *, schema: str | None = None) -> Store:
        """Connect, then create or migrate piiguard's tables.

        Args:
            url: an SQLAlchemy URL: ``sqlite:///path/to.db`` or
                ``postgresql+psycopg://user@host/db``.
            schema: a PostgreSQL schema to hold the tables, created if absent.

        Raises:
            StoreError: the database cannot be reached, or holds a newer schema; ``reason``
                names the cause (``refused``, ``authentication``, ``missing_database``,
                ``corrupted``, ``cannot_open``, ``newer_schema``).
            ValueError: a schema name on SQLite, or one that is not a plain identifier.
        """
        engine = cls._engine(url, schema)
        is_sqlite = engine.dialect.name == "sqlite"
        translate_errors(engine)
        del url  # it may hold a password: keep it out of the locals of a failing frame
        store = cls(engine, Tables(schema))
        failure: PiiGuardError | None = None
        try:
            store._migrate(schema, is_sqlite)
        except SQLAlchemyError as error:
            failure = describe(error) or StoreError("cannot open the store", "unavailable")
        except PiiGuardError as error:  # the driver's error under it holds the URL
            failure = error.with_traceback(None)
            failure.__cause__ = failure.__context__ = None
        if failure is not None:
            engine.dispose()
            raise failure
        return store

    @classmethod
    def _engine(cls, url: str, schema: str | None) -> Engine:
        """The engine for ``url``; a URL SQLAlchemy cannot read, or whose driver is not
        installed, is a StoreError (``unusable_url``) naming no part of the URL."""
        failure: PiiGuardError | None = None
        try:
            parsed = make_url(url)
            is_sqlite = parsed.get_backend_name() == "sqlite"
            failure = cls.schema_refusal(url, schema)
            if failure is not None:
                pass
            elif is_sqlite:
                return cls._sqlite_engine(url, parsed.database)
            else:
                return create_engine(url, pool_pre_ping=True)
        except (SQLAlchemyError, ImportError, ValueError, TypeError, AttributeError) as error:
            failure = StoreError(
                f"cannot open the store: the URL or its driver is not usable "
                f"({type(error).__name__})",
                "unusable_url",
            )
        del url
        raise failure

    @staticmethod
    def schema_refusal(url: str, schema: str | None) -> InvalidArgument | None:
        """Why ``schema`` cannot go with ``url``, or None: a schema is a lower-case
        identifier, and only PostgreSQL has one. A URL that cannot be read is left to
        :meth:`open`."""
        if schema is None:
            return None
        try:
            is_sqlite = make_url(url).get_backend_name() == "sqlite"
        except (SQLAlchemyError, ValueError, TypeError, AttributeError):
            return None
        if is_sqlite or not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
            return InvalidArgument("schema is a lower-case identifier, only for PostgreSQL")
        return None

    @staticmethod
    def _sqlite_engine(url: str, database: str | None) -> Engine:
        if database and database != ":memory:":
            path = Path(database)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():  # created private: it will hold wrapped keys and ledgers
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        # SQLAlchemy's default pool for a SQLite file: each connection is used by one thread
        # at a time and keeps its pragmas; a new connection per transaction costs ~2 ms
        engine = create_engine(url, connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine

    def _migrate(self, schema: str | None, is_sqlite: bool) -> None:
        with self._writer.begin() as connection:
            if not is_sqlite:
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
                if schema is not None:
                    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            self.tables.metadata.create_all(connection, checkfirst=True)
            meta = self.tables.meta
            found = connection.execute(
                select(meta.c.value).where(meta.c.name == "schema_version")
            ).scalar_one_or_none()
            if (
                is_sqlite
                and connection.execute(
                    select(meta.c.value).where(meta.c.name == COUNTER_ROW)
                ).first()
                is None
            ):
                connection.execute(meta.insert().values(name=COUNTER_ROW, value="0"))
            if found is None:
                connection.execute(
                    meta.insert().values(name="schema_version", value=str(SCHEMA_VERSION))
                )
            elif int(found) > SCHEMA_VERSION:
                raise StoreError(
                    "the store was written by a newer piiguard; upgrade piiguard", "newer_schema"
                )
            elif int(found) < SCHEMA_VERSION:  # new tables were created above
                self._add_columns(connection)
                connection.execute(
                    update(meta)
                    .where(meta.c.name == "schema_version")
                    .values(value=str(SCHEMA_VERSION))
                )

    def _add_columns(self, connection: Connection) -> None:
        """Columns that later schema versions added to existing tables, and their backfill
        (5: keys.epoch; 6: notices.seq, text_sha256 and text, purpose versions, notice
        purposes as rows; 8: the audit log's actor-and-time index)."""
        added = {
            self.tables.keys: {"epoch": "INTEGER"},
            self.tables.notices: {"seq": "INTEGER", "text_sha256": "VARCHAR(64)", "text": "TEXT"},
        }
        for table, columns in added.items():
            present = {c["name"] for c in inspect(connection).get_columns(table.name, table.schema)}
            name = f'"{table.schema}".{table.name}' if table.schema else table.name
            for column, sql_type in columns.items():
                if column not in present:
                    connection.execute(text(f"ALTER TABLE {name} ADD COLUMN {column} {sql_type}"))
        for index in self.tables.audit_events.indexes:  # 8: events by actor and time ...
            index.create(connection, checkfirst=True)
        events = self.tables.audit_events
        prefix = f'"{events.schema}".' if events.schema else ""
        connection.execute(text(f"DROP INDEX IF EXISTS {prefix}piiguard_audit_actor"))  # ... only
        self._backfill_consent_catalog(connection)

    def _backfill_consent_catalog(self, connection: Connection) -> None:
        """Schema 6: each purpose's current definition becomes its first recorded version
        (earlier ones were overwritten), and notices get their order and purpose rows."""
        tables = self.tables
        purposes, versions = tables.purposes, tables.purpose_versions
        known = {
            (row.name, row.version)
            for row in connection.execute(select(versions.c.name, versions.c.version))
        }
        for row in connection.execute(select(purposes)).all():
            if (row.name, row.version) not in known:
                connection.execute(
                    versions.insert().values(
                        name=row.name,
                        version=row.version,
                        definition=row.definition,
                        registered_at=row.registered_at,
                    )
                )
        notices, rows = tables.notices, tables.notice_purposes
        listed = {row.notice for row in connection.execute(select(rows.c.notice))}
        ordered = connection.execute(
            select(notices).order_by(notices.c.published_at, notices.c.version)
        ).all()
        for seq, notice in enumerate(ordered, start=1):
            if notice.seq is None:
                connection.execute(
                    update(notices).where(notices.c.version == notice.version).values(seq=seq)
                )
            if notice.version not in listed:
                names = sorted(set(json.loads(notice.purposes)))
                if names:
                    connection.execute(
                        rows.insert(), [{"notice": notice.version, "purpose": n} for n in names]
                    )

    def serialize(self, connection: Connection, name: str) -> None:
        """Serialise, until this transaction ends, every transaction that says the same name.

        For "select, else create" of a row that may not exist yet: ``FOR UPDATE`` cannot lock
        a missing row, so two PostgreSQL transactions would both create it. There this takes a
        transaction-scoped advisory lock; SQLite needs nothing (``BEGIN IMMEDIATE`` already
        serialises writers).
        """
        if connection.dialect.name == "postgresql":
            key = zlib.crc32(b"piiguard:" + name.encode())
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def serialize_holds(self, connection: Connection) -> None:
        """Serialise with every legal hold being placed and every key-shred decision: a
        hold (on a subject, a category or one record) then either commits before a shred
        decision reads it, or after that shred."""
        self.serialize(connection, "holds-and-shreds")

    @contextmanager
    def transaction(self, *, wait: bool = True) -> Iterator[Connection]:
        """A connection inside one transaction of piiguard's own, committed on success,
        rolled back on error (whatever the application's transaction then does).

        ``wait=False``: on SQLite, a file another connection holds is a StoreBusy at once,
        not after the busy timeout (for work that can be done later).

        Raises:
            StoreBusy: a bound SQLite transaction of this context holds the file.
        """
        self.refuse_own_lock()
        with (self._writer if wait else self._impatient).begin() as connection:
            self._bound_wait(connection)
            yield connection

    def _bound_wait(self, connection: Connection) -> None:
        """On PostgreSQL, while this context's bound transaction has written, a transaction
        of piiguard's own waits at most a few seconds for a lock: the one it waits for may be
        held by the bound transaction of this very thread, which PostgreSQL cannot see as a
        deadlock."""
        binding = self._binding.get()
        if binding is not None and binding.dirty and not binding.sqlite:
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{_BOUND_LOCK_TIMEOUT}'")

    # -- joining the application's transaction (guard.bind) --------------------------------

    @contextmanager
    def bind(
        self,
        source: Callable[[], Connection],
        in_transaction: Callable[[], bool],
        arm: Callable[[Binding], None],
    ) -> Iterator[Binding]:
        """Make the writes that describe application state (see :meth:`joining`) go through
        the application's connection (``source()``) in this context, committing or rolling
        back with it; ``arm`` hears of the first such write of each transaction. The caller
        asked :meth:`bind_refusal` first (before anything was made for the binding)."""
        binding = Binding(source, in_transaction, arm, source().dialect.name)
        token = self._binding.set(binding)
        try:
            yield binding
        finally:
            self._binding.reset(token)

    def bind_refusal(self, application: Connection) -> InvalidArgument | None:
        """Why this context cannot bind to ``application`` (bound already, another
        database), or None: asked before anything is written for the binding."""
        if self.bound() is not None:
            return InvalidArgument("piiguard is already bound to a transaction in this context")
        meta = self.tables.meta
        named = f'"{meta.schema}".{meta.name}' if meta.schema else meta.name
        with self.engine.connect() as own:
            return same_database(own, application, named)

    def bound(self) -> Binding | None:
        """The application transaction this context joins, or None."""
        return self._binding.get()

    def refuse_own_lock(self) -> None:
        """Raise StoreBusy when a transaction of piiguard's own would wait for ever on the
        SQLite lock that this context's bound transaction holds."""
        binding = self._binding.get()
        if binding is not None:
            binding.refuse_own_lock()

    @contextmanager
    def joining(self) -> Iterator[Connection]:
        """A transaction for a write that describes the application's state: the bound
        application's own transaction when there is one, else one of piiguard's own."""
        binding = self._binding.get()
        if binding is None:
            with self.transaction() as connection:
                yield connection
            return
        yield binding.write()

    @contextmanager
    def joining_changes(self) -> Iterator[Connection]:
        """:meth:`joining` for writes that cached state derives from (:meth:`changing`)."""
        binding = self._binding.get()
        if binding is None:
            with self.changing() as connection:
                yield connection
            return
        connection = binding.write()
        self._count_change(connection)
        yield connection
        key = self._change_key
        binding.after_commit(lambda: local_changes(key))

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection to read with: the bound application's when this context has written
        through it (it sees its own writes), else a pooled one of piiguard's."""
        binding = self._binding.get()
        if binding is not None and binding.dirty:
            yield binding.connection
            return
        with self.engine.connect() as connection:
            yield connection

    def held(self) -> HeldConnection:
        """A driver connection kept by one hot writer between its transactions."""
        return HeldConnection(self)

    def compiled(self, statement: Any) -> Callable[[Mapping[str, Any]], tuple[str, Any]]:
        """``statement`` compiled once for this store's driver: a function from parameters
        (by column or bind name) to the (SQL, driver parameters) to execute."""
        done = statement.compile(dialect=self.engine.dialect)
        sql, defaults, order = str(done), dict(done.params), done.positiontup

        def bind(values: Mapping[str, Any]) -> tuple[str, Any]:
            merged = {**defaults, **values}
            return sql, tuple(merged[name] for name in order) if order else merged

        return bind

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the store."""
        meta = self.tables.meta
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    select(meta.c.value).where(meta.c.name == "schema_version")
                ).scalar_one()
            )

    def change_counter(self) -> Callable[[], int] | None:
        """A function whose value changes whenever state written through :meth:`changing`
        may have changed, in any process; None for an in-memory SQLite store.

        SQLite reads ``PRAGMA data_version``; PostgreSQL keeps a ``LISTEN`` thread (see
        ``_changes``). Caches of derived state compare it on every read.
        """
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and (not database or database == ":memory:"):
            return None
        with self._watch_lock:
            if self._watch is None:
                if self.engine.dialect.name == "sqlite":
                    self._watch = SqliteChanges(str(database))
                else:
                    self._watch = PostgresChanges(self.engine, self._change_key, self._schema_name)
            watch, bound = self._watch, self._binding.get

        def counter() -> int:
            binding = bound()
            if binding is not None and binding.dirty:  # uncommitted reads are never cached
                return binding.generation()
            return watch()

        return counter

    @contextmanager
    def changing(self) -> Iterator[Connection]:
        """A transaction whose commit moves every :meth:`change_counter`, in every process:
        for writes that cached state derives from (consent events, purposes, notices)."""
        self.refuse_own_lock()
        with self._writer.begin() as connection:
            self._bound_wait(connection)
            self._count_change(connection)
            yield connection
        local_changes(self._change_key)  # after the commit: a reader may now cache it

    def _count_change(self, connection: Connection) -> None:
        """Have ``connection``'s commit move every change counter."""
        if connection.dialect.name == "postgresql":
            notify(connection, self._schema_name)
        else:
            meta = self.tables.meta
            connection.execute(
                update(meta)
                .where(meta.c.name == COUNTER_ROW)
                .values(value=cast(cast(meta.c.value, Integer) + 1, String))
            )

    def close(self) -> None:
        """Release every connection."""
        with self._watch_lock:
            if self._watch is not None:
                self._watch.close()
                self._watch = None
        self.engine.dispose()


class HeldConnection:
    """One driver connection a hot writer keeps between its transactions (the audit log's
    group commit), so a write costs no pool checkout and return.

    Not thread-safe: its owner lets one thread in at a time. A transaction that fails drops
    the connection (the next one opens a fresh one), so a broken connection is never reused.
    """

    __slots__ = ("_connection", "_sqlite", "_store")

    def __init__(self, store: Store) -> None:
        self._store = store
        self._sqlite = store.engine.dialect.name == "sqlite"
        self._connection: Any = None

    @property
    def warm(self) -> bool:
        """Whether the next transaction reuses a connection (which may have gone stale)."""
        return self._connection is not None

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A driver cursor inside one transaction, committed on success, rolled back (and the
        connection dropped) on error. Driver errors are not translated here."""
        self._store.refuse_own_lock()
        connection = self._connection
        if connection is None:
            connection = self._connection = self._store.engine.raw_connection()
        cursor = connection.cursor()
        try:
            if self._sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            else:
                binding = self._store.bound()
                if binding is not None and binding.dirty:
                    cursor.execute(f"SET LOCAL lock_timeout = '{_BOUND_LOCK_TIMEOUT}'")
            yield cursor
            cursor.close()
            connection.commit()
        except BaseException:
            self._drop(cursor)
            raise

    def _drop(self, cursor: Any) -> None:
        """Roll back and close the connection after a failed transaction: the pool never
        hands it out again."""
        connection, self._connection = self._connection, None
        try:
            cursor.close()
            connection.rollback()
        except Exception:  # noqa: S110 - a connection that cannot roll back is dropped anyway
            pass
        with suppress(Exception):  # nor does one that cannot even close
            connection.invalidate()

    def forget(self) -> None:
        """In a forked child: drop the parent's connection without touching it."""
        self._connection = None

    def close(self) -> None:
        """Give the connection back to the pool."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
