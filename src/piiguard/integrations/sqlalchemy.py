"""SQLAlchemy: encrypted columns bound to their row, read lazily and in batches.

```python
import piiguard.integrations.sqlalchemy as pg_sa

class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str]
    phone: Mapped[str] = mapped_column(
        pg_sa.Encrypted("phone", subject="user_id", searchable=True, masked=True)
    )

pg_sa.install(guard, Base)                   # at start-up; models are defined at import
session.add(Customer(user_id="u1", phone="13812345678"))
session.scalars(select(Customer).where(pg_sa.lookup(Customer.phone, "138 1234 5678")))
with pg.acting(actor="cs-7", purpose="after_sales"):
    customer.phone                            # decrypted on access, audited
```

Each value is encrypted bound to (table, column, primary key, kind): a ciphertext copied to
another row or column by raw SQL does not open there. A server-side primary key is read back
in the same flush and the value sealed with it before the flush ends. Rows loaded by one
query are decrypted together (one ``decrypt_many``, one audit event) on the first access to
the column in any of them. ``masked=True`` keeps ``<column>_masked`` (the kind's display mask,
readable with no reveal), ``searchable=True`` keeps ``<column>_index`` (a blind index
normalised by kind). A plain value bound to an Encrypted column outside the ORM is refused:
Core code seals rows with :func:`seal_row` and opens them with :func:`open_rows`.
"""

from __future__ import annotations

import json
import uuid
import weakref
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    CHAR,
    NCHAR,
    Column,
    Connection,
    Dialect,
    Engine,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    event,
    select,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import InstrumentedAttribute, Mapper
from sqlalchemy.orm.attributes import (
    flag_modified,
    set_attribute,
    set_committed_value,
)
from sqlalchemy.sql.dml import Update, ValuesBase
from sqlalchemy.sql.elements import BindParameter, ColumnElement, TextClause
from sqlalchemy.types import TypeDecorator

from piiguard.errors import (
    DecryptionError,
    InvalidArgument,
    KeyDestroyed,
    KeyNotFound,
    StoreError,
    boundary,
)
from piiguard.events import Rows
from piiguard.guard import Guard
from piiguard.integrations._values import PENDING_TEXT, is_plain, written
from piiguard.integrations._values import Pending as _Pending
from piiguard.integrations._values import Sealed as _Sealed
from piiguard.kinds import get_kind
from piiguard.masking import mask

__all__ = ["Encrypted", "encrypt_column", "install", "lookup", "open_rows", "seal_row"]

_GUARD = "piiguard.guard"
_MASKED, _INDEX = "_masked", "_index"


class _Batch:
    """The values one query loaded, by mapper and column: the first read of a column in
    any of its rows opens it in all of them, each bound to its row's key as it is then.
    Values are held weakly: a row the application let go of is not opened, nor a value it
    replaced."""

    __slots__ = ("columns",)

    def __init__(self) -> None:
        self.columns: defaultdict[tuple[Mapper[Any], str], list[weakref.ref[_Sealed]]] = (
            defaultdict(list)
        )


class Encrypted(TypeDecorator[str]):
    """A column of one PII kind, stored encrypted and bound to its row.

    Args:
        kind: a built-in kind's name (``"phone"``, ``"cn_resident_id"``, ...).
        subject: the mapped attribute holding the row's subject id; the value is encrypted
            under that subject's key, so ``guard.erase(subject)`` makes it unreadable.
        searchable: keep ``<column>_index``, a blind index normalised by kind, for
            :func:`lookup` (values must then be valid values of the kind).
        masked: keep ``<column>_masked``, the kind's display mask, for list pages.
    """

    impl = Text
    cache_ok = True

    def __init__(
        self,
        kind: str,
        *,
        subject: str | None = None,
        searchable: bool = False,
        masked: bool = False,
    ) -> None:
        super().__init__()
        self.kind = get_kind(kind).name
        if subject is not None and (not isinstance(subject, str) or not subject.isidentifier()):
            raise InvalidArgument("subject names the attribute that holds the subject id")
        self.subject = subject
        self.searchable = bool(searchable)
        self.masked = bool(masked)

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        """Only sealed values reach the database: a plain value here would be stored in
        clear, so it is refused."""
        stored = written(
            value,
            "an Encrypted column takes values through the ORM, or rows sealed by "
            "pg_sa.seal_row: a plain value would be stored in clear",
        )
        if isinstance(stored, InvalidArgument):
            del value  # a plain value passed by mistake stays out of this frame
            raise stored
        return stored

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None or value == PENDING_TEXT else _Sealed(str(value))

    def copy(self, **kw: Any) -> Encrypted:
        return Encrypted(
            self.kind, subject=self.subject, searchable=self.searchable, masked=self.masked
        )


@event.listens_for(Column, "after_parent_attach")
def _add_companions(column: Column[Any], table: Any) -> None:
    """An Encrypted column brings its companion columns into its table."""
    if not isinstance(column.type, Encrypted) or not isinstance(table, Table):
        return
    for wanted, suffix, size in (
        (column.type.masked, _MASKED, 255),
        (column.type.searchable, _INDEX, 64),
    ):
        name = column.name + suffix
        if wanted and name not in table.c:
            table.append_column(Column(name, String(size), nullable=True, index=suffix == _INDEX))


# -- the guard of a table ------------------------------------------------------------------


def install(guard: Guard, base: Any) -> None:
    """Attach ``guard`` to a declarative base (or a MetaData): every Encrypted column of its
    tables uses it. Call at start-up, after the models are defined; call again to replace it
    (tests)."""
    if not isinstance(guard, Guard):
        raise InvalidArgument("install takes a piiguard Guard")
    metadata = getattr(base, "metadata", base)
    info = getattr(metadata, "info", None)
    if not isinstance(info, dict):
        raise InvalidArgument("install takes a declarative base or a MetaData")
    info[_GUARD] = guard
    if isinstance(base, type) and not getattr(base, "__piiguard_listening__", False):
        event.listen(base, "before_insert", _before_write, propagate=True)
        event.listen(base, "before_update", _before_write, propagate=True)
        event.listen(base, "after_insert", _after_insert, propagate=True)
        event.listen(base, "load", _on_load, propagate=True, raw=True)
        setattr(base, "__piiguard_listening__", True)  # noqa: B010 - a class we do not own
        for mapper in getattr(base, "registry").mappers:  # noqa: B009
            _instrument(mapper)
        event.listen(base, "mapper_configured", _configured, propagate=True)


def _guard_of(table: Any) -> Guard:
    guard = table.metadata.info.get(_GUARD)
    if not isinstance(guard, Guard):
        raise InvalidArgument("no Guard for this table: call pg_sa.install(guard, Base)")
    return guard


_BY_MAPPER: dict[Mapper[Any], list[tuple[str, Column[Any], Encrypted]]] = {}


def _encrypted(mapper: Mapper[Any]) -> list[tuple[str, Column[Any], Encrypted]]:
    """(attribute key, column, type) of each Encrypted column the mapper persists; read
    once per mapper (loads call this for every row)."""
    found = _BY_MAPPER.get(mapper)
    if found is None:
        found = []
        for prop in mapper.column_attrs:
            column = prop.columns[0]
            if isinstance(column, Column) and isinstance(column.type, Encrypted):
                found.append((prop.key, column, column.type))
        if mapper.configured:
            _BY_MAPPER[mapper] = found
    return found


def _key_text(column: Any, value: Any) -> str:
    """A key value as the binding names it, in the form the database gives back: an integer
    key given as ``"07"`` or ``True`` is stored as 7 or 1, a UUID in any spelling is one."""
    kind = column.type
    try:
        if isinstance(kind, Integer):
            return str(int(value))
        if isinstance(kind, Uuid):
            return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    except (TypeError, ValueError):
        raise InvalidArgument("a primary key value is not of its column's type") from None
    return value if type(value) is str else str(value)


def _row_id(values: Sequence[Any], columns: Sequence[Any]) -> str:
    """The primary key as the context names it: the value, or a JSON list if composite."""
    texts = [_key_text(c, v) for c, v in zip(columns, values, strict=True)]
    if len(texts) == 1:
        return texts[0]
    return json.dumps(texts, separators=(",", ":"))


def _key_of(state: Any) -> Sequence[Any]:
    """A loaded instance's primary key (its identity), else the key its attributes hold."""
    identity_key = state.key
    if identity_key is not None:
        return tuple(identity_key[1])
    return tuple(state.mapper.primary_key_from_instance(state.obj()))


def _row_ids(keys: Sequence[Sequence[Any]], columns: Sequence[Any]) -> list[str]:
    """:func:`_row_id` of each key; a batch of integer keys (the common case) named without
    a call per row."""
    if len(columns) == 1 and isinstance(columns[0].type, Integer):
        values = [key[0] for key in keys]
        if all(type(value) is int for value in values):
            return list(map(str, values))
    return [_row_id(key, columns) for key in keys]


def _context(column: Column[Any], kind: str, row_id: str) -> dict[str, str]:
    return {"table": column.table.name, "field": column.name, "id": row_id, "kind": kind}


# -- writing -----------------------------------------------------------------------------


def _plain(value: Any) -> str | None:
    """The plaintext a write carries, or None when the value is already stored."""
    if value is None or isinstance(value, _Sealed | _Pending):
        return None
    if not isinstance(value, str):
        raise InvalidArgument("an Encrypted column holds text")
    return str(value)


def _subject_of(target: Any, kind: Encrypted) -> str | None:
    if kind.subject is None:
        return None
    subject = getattr(target, kind.subject)
    if subject is None:
        return None
    return str(subject)


def _companions(target: Any, key: str, kind: Encrypted, column: Column[Any], value: str) -> None:
    guard = _guard_of(column.table)
    if kind.masked:
        set_attribute(target, key + _MASKED, mask(value, kind.kind))
    if kind.searchable:
        field = f"{column.table.name}.{column.name}"
        set_attribute(target, key + _INDEX, guard.blind_index(value, field=field, kind=kind.kind))


_KEYS_CHECKED: set[Table] = set()


def _check_keys(table: Table) -> None:
    """A value is bound to its row's key as text: only keys that read back as they were
    written (integers, UUIDs, variable-length text) can bind it; a CHAR pads, a Numeric
    gains decimals, a DateTime changes zone, and the value would never open again.
    Checked once per table (every write calls it)."""
    if table in _KEYS_CHECKED:
        return
    for column in table.primary_key.columns:
        kind = column.type
        if isinstance(kind, Integer | Uuid) or (
            isinstance(kind, String) and not isinstance(kind, CHAR | NCHAR)
        ):
            continue
        raise InvalidArgument(
            "an Encrypted column's table needs an integer, UUID or variable-length text "
            "primary key: the key is part of each value's binding and must read back as "
            "written"
        )
    _KEYS_CHECKED.add(table)


def _rebound(state: Any, mapper: Mapper[Any], kind: Encrypted) -> bool:
    """Whether this update changes what a stored value is bound to: its row's key, or its
    subject (whose key it is encrypted under)."""
    names = [mapper.get_property_by_column(column).key for column in mapper.primary_key]
    if kind.subject is not None:
        names.append(kind.subject)
    return any(state.attrs[name].history.has_changes() for name in names)


@boundary
def _before_write(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    state = sa_inspect(target)
    keys = mapper.primary_key_from_instance(target)
    for key, column, kind in _encrypted(mapper):
        _check_keys(column.table)
        value = state.dict.get(key)
        rebound = state.persistent and _rebound(state, mapper, kind)
        if rebound and key not in state.dict:
            raise InvalidArgument(
                "a row's key or subject changes but its Encrypted values are not loaded: "
                "load and read them (or assign them) in the same flush"
            )
        if rebound and value is None:
            flag_modified(target, key)  # in the UPDATE, as NULL: nothing bound to the old one
        if type(value) is _Sealed and rebound:
            if _guard_of(column.table).keys.destroyed(value.text):
                raise InvalidArgument(
                    "a row's subject or key changes but its Encrypted value's subject was "
                    "erased: it cannot be sealed again (assign the column anew, or None)"
                )
            if value.plaintext is None:
                raise InvalidArgument(
                    "a row's key or subject changes but its Encrypted values were not read "
                    "or assigned again: assign them in the same flush (an erasure of the new "
                    "subject would miss them, a new key would not open them)"
                )
            value = value.plaintext  # sealed again below, bound to the new key or subject
        plaintext = _plain(value)
        if plaintext is None:
            if value is None and key in state.dict:
                for suffix, wanted in ((_MASKED, kind.masked), (_INDEX, kind.searchable)):
                    if wanted:
                        set_attribute(target, key + suffix, None)
            continue
        _companions(target, key, kind, column, plaintext)
        if any(part is None for part in keys):  # a server-side key: sealed after the insert
            set_attribute(target, key, _Pending(plaintext))
            continue
        text = _guard_of(column.table).encrypt(
            plaintext,
            context=_context(column, kind.kind, _row_id(keys, mapper.primary_key)),
            subject=_subject_of(target, kind),
        )
        set_attribute(target, key, _Sealed(text, plaintext))


@boundary
def _after_insert(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    """Seal the values of a row whose key the database chose, in the same transaction."""
    state = sa_inspect(target)
    keys = mapper.primary_key_from_instance(target)
    sealed: dict[str, _Sealed] = {}
    columns: dict[str, Column[Any]] = {}
    for key, column, kind in _encrypted(mapper):
        value = state.dict.get(key)
        if isinstance(value, _Pending):
            text = _guard_of(column.table).encrypt(
                value.plaintext,
                context=_context(column, kind.kind, _row_id(keys, mapper.primary_key)),
                subject=_subject_of(target, kind),
            )
            sealed[key], columns[key] = _Sealed(text, value.plaintext), column
    if not sealed:
        return
    by_table: dict[Any, dict[str, _Sealed]] = {}
    for key, value in sealed.items():
        by_table.setdefault(columns[key].table, {})[columns[key].name] = value
    for table, values in by_table.items():
        # the table's own key columns (a joined subclass's table has its own, equal in value)
        where = [
            column == getattr(target, mapper.get_property_by_column(column).key)
            for column in table.primary_key.columns
        ]
        written = connection.execute(update(table).where(*where).values(values)).rowcount
        if written != 1:
            raise StoreError(
                f"sealing a new row's values wrote {written} rows instead of one", "conflict"
            )
    for key, value in sealed.items():
        set_committed_value(target, key, value)


# -- reading -----------------------------------------------------------------------------


def _on_load(state: Any, context: Any) -> None:
    """Rows of one query share a batch: the first access opens the column in all of them."""
    if context is None:  # session.merge of a new instance: no query, no batch
        return
    mapper = state.manager.mapper  # not state.mapper: memoized on each new state, slower
    columns = _LOADING.get(mapper)
    if columns is None:
        columns = _loading(mapper)
    if not columns:
        return
    attributes = context.attributes
    batch = attributes.get(_GUARD)
    if batch is None:
        batch = attributes[_GUARD] = _Batch()
    values, found, held = state.dict, batch.columns, weakref.ref
    for key, column in columns:
        value = values.get(key)
        if type(value) is _Sealed:
            value.batch, value.loaded = batch, state
            found[column].append(held(value))


_LOADING: dict[Mapper[Any], tuple[tuple[str, tuple[Mapper[Any], str]], ...]] = {}


def _loading(mapper: Mapper[Any]) -> tuple[tuple[str, tuple[Mapper[Any], str]], ...]:
    """(attribute key, batch key) of each Encrypted column a load of ``mapper`` fills."""
    columns = tuple((key, (mapper, key)) for key, _, _ in _encrypted(mapper))
    if mapper.configured:
        _LOADING[mapper] = columns
    return columns


@boundary
def _open(state: Any, key: str, sealed: _Sealed) -> str:
    """The plaintext of ``sealed``, opening the whole batch it was loaded with at once."""
    mapper = state.mapper
    column, kind = next((c, k) for name, c, k in _encrypted(mapper) if name == key)
    guard = _guard_of(column.table)
    members, keys = [sealed], [_key_of(state)]
    batch = sealed.batch
    if batch is not None:
        for ref in batch.columns.get((mapper, key), ()):
            value = ref()
            if value is None or value.plaintext is not None or value is sealed:
                continue
            loaded = value.loaded
            if key in loaded.committed_state:  # replaced since the load: not the row's value
                continue
            identity = loaded.key  # the row's key now (a copy made transient has none)
            if identity is None and loaded.obj() is None:
                continue
            members.append(value)
            keys.append(identity[1] if identity is not None else _key_of(loaded))
    base = {"table": column.table.name, "field": column.name, "kind": kind.kind}
    contexts = Rows(base, "id", _row_ids(keys, mapper.primary_key))  # factored
    try:
        opened = guard.decrypt_many([value.text for value in members], contexts=contexts)
    except DecryptionError:
        if len(members) == 1:
            raise
        # one row of the batch does not open (copied by raw SQL, erased): each opens alone
        for value in members:
            value.batch = None
        batch.columns.pop((mapper, key), None)  # members > 1: the batch is there
        opened = guard.decrypt_many([sealed.text], contexts=[contexts[0]])
        members = members[:1]
    else:
        if batch is not None:  # every value of the column opened: rows a query read with
            batch.columns.pop((mapper, key), None)  # yield_per loads later make a new list
    for value, plaintext in zip(members, opened, strict=True):
        value.plaintext = plaintext
        value.batch = None
    return opened[0]


class _DecryptingAttribute(InstrumentedAttribute[Any]):
    """An Encrypted column's attribute: reading it on an instance gives the plaintext."""

    __slots__ = ()

    def __get__(self, instance: object | None, owner: Any) -> Any:
        try:  # an opened value (every read but a batch's first) without SQLAlchemy's path
            found = instance.__dict__.get(self.key)
        except AttributeError:  # the class attribute, or an instance without a __dict__
            pass
        else:
            if type(found) is _Sealed and found.plaintext is not None:
                return found.plaintext
        value = super().__get__(instance, owner)
        if instance is None:
            return value
        if isinstance(value, _Sealed):
            if value.plaintext is not None:
                return value.plaintext
            return _open(sa_inspect(instance), self.key, value)
        if isinstance(value, _Pending):
            return value.plaintext
        return value


def _instrument(mapper: Mapper[Any]) -> None:
    for key, _, _ in _encrypted(mapper):
        attribute = mapper.class_.__dict__.get(key)
        if type(attribute) is InstrumentedAttribute:
            attribute.__class__ = _DecryptingAttribute


def _configured(mapper: Mapper[Any], class_: type) -> None:
    _instrument(mapper)


# -- finding -----------------------------------------------------------------------------


@boundary
def lookup(attribute: Any, value: str) -> ColumnElement[bool]:
    """``WHERE <column>_index = blind_index(value)``: rows whose value equals ``value``
    written any way the kind allows (``"138 1234 5678"`` finds ``+8613812345678``).

    Raises:
        InvalidArgument: the column is not an Encrypted column with ``searchable=True``.
        InvalidPII: ``value`` is not a value of the column's kind.
    """
    prop = getattr(attribute, "property", None)
    columns = getattr(prop, "columns", None)
    column = columns[0] if columns else None
    if not isinstance(column, Column) or not isinstance(column.type, Encrypted):
        raise InvalidArgument("lookup takes an Encrypted column's attribute")
    if not column.type.searchable:
        raise InvalidArgument("this column keeps no index: declare it searchable=True")
    guard = _guard_of(column.table)
    index = guard.blind_index(
        value, field=f"{column.table.name}.{column.name}", kind=column.type.kind
    )
    companion: ColumnElement[bool] = getattr(attribute.class_, attribute.key + _INDEX) == index
    return companion


# -- Core --------------------------------------------------------------------------------


def _encrypted_columns(table: Table) -> list[tuple[Column[Any], Encrypted]]:
    return [(c, c.type) for c in table.columns if isinstance(c.type, Encrypted)]


@boundary
def seal_row(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` (column name -> value) as Core inserts or updates it: each Encrypted column's
    value sealed with the row's primary key, its companions filled. The key must be in
    ``row`` (insert a server-side key first, then update with the sealed row).

    Raises:
        InvalidArgument: the row lacks a primary-key value.
    """
    keys = [row.get(column.name) for column in table.primary_key.columns]
    if not keys or any(key is None for key in keys):
        raise InvalidArgument("seal_row needs the row's primary key")
    _check_keys(table)
    guard = _guard_of(table)
    sealed = dict(row)
    for column, kind in _encrypted_columns(table):
        plaintext = _plain(row.get(column.name))
        if plaintext is None:
            continue
        subject = None
        if kind.subject is not None:
            if kind.subject not in table.c:
                raise InvalidArgument(
                    "the column's subject names no column of the table: in Core the subject "
                    "is the column that holds the subject id"
                )
            if kind.subject not in row:
                raise InvalidArgument(
                    "seal_row needs the row's subject (its column) to encrypt under the "
                    "subject's key: give it in the row"
                )
            subject = row[kind.subject]
        text = guard.encrypt(
            plaintext,
            context=_context(column, kind.kind, _row_id(keys, list(table.primary_key.columns))),
            subject=None if subject is None else str(subject),
        )
        sealed[column.name] = _Sealed(text, plaintext)
        if kind.masked:
            sealed[column.name + _MASKED] = mask(plaintext, kind.kind)
        if kind.searchable:
            field = f"{table.name}.{column.name}"
            sealed[column.name + _INDEX] = guard.blind_index(plaintext, field=field, kind=kind.kind)
    return sealed


@boundary
def open_rows(
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    actor: str | None = None,
    purpose: str | None = None,
) -> list[dict[str, Any]]:
    """Rows read by Core with each Encrypted column opened: one ``decrypt_many`` (one audit
    event) per column for all the rows, by ``actor`` for ``purpose`` (else ``pg.acting``'s).

    A value whose subject was erased (its key destroyed) reads as None, and the other rows
    open: an export or an ETL over a table holding one erased customer goes on. Any other
    value that does not open (altered, copied to another row) fails the whole call.
    """
    guard = _guard_of(table)
    opened = [dict(row) for row in rows]
    for column, kind in _encrypted_columns(table):
        where = [i for i, row in enumerate(opened) if isinstance(row.get(column.name), _Sealed)]
        if not where:
            continue
        contexts = [
            _context(
                column,
                kind.kind,
                _row_id(
                    [opened[i][c.name] for c in table.primary_key.columns],
                    list(table.primary_key.columns),
                ),
            )
            for i in where
        ]
        texts = [opened[i][column.name].text for i in where]
        try:
            values = guard.decrypt_many(texts, contexts=contexts, actor=actor, purpose=purpose)
        except KeyDestroyed:  # some subjects were erased: their values are gone, not the rest
            erased = {n for n, text in enumerate(texts) if _destroyed(guard, text)}
            for n in erased:
                opened[where[n]][column.name] = None
            where = [i for n, i in enumerate(where) if n not in erased]
            contexts = [c for n, c in enumerate(contexts) if n not in erased]
            texts = [t for n, t in enumerate(texts) if n not in erased]
            values = guard.decrypt_many(texts, contexts=contexts, actor=actor, purpose=purpose)
        for i, value in zip(where, values, strict=True):
            opened[i][column.name] = value
    return opened


def _destroyed(guard: Guard, text: str) -> bool:
    """Whether the key of a stored value was destroyed (an unknown key is not that)."""
    try:
        return guard.keys.destroyed(text)
    except (KeyNotFound, InvalidArgument):
        return False


@boundary
def encrypt_column(
    connection: Connection, table: Table, *, source: str, target: str, batch_size: int = 1000
) -> int:
    """Move a plaintext column's values into an Encrypted column of the same table, in
    batches (a migration: docs/orm.md has the Alembic recipe). Each batch reads rows whose
    ``target`` is still NULL, seals ``source`` as :func:`seal_row` does (with the target's
    companions) and writes it; run again after a crash and it goes on where it stopped.
    Returns the number of rows moved. ``source`` is left as it was: drop it afterwards.

    Raises:
        InvalidArgument: ``target`` is not an Encrypted column of ``table``, ``source`` is not
            a column of it, or the table has no primary key.
    """
    column = table.c.get(target)
    if column is None or not isinstance(column.type, Encrypted):
        raise InvalidArgument("target names an Encrypted column of the table")
    if source not in table.c or source == target:
        raise InvalidArgument("source names another column of the table")
    if type(batch_size) is not int or batch_size < 1:
        raise InvalidArgument("batch_size is a positive int")
    keys = list(table.primary_key.columns)
    if not keys:
        raise InvalidArgument("the table has no primary key to bind values to")
    kind = column.type
    extra = [c for c in (kind.subject,) if c is not None and c in table.c]
    wanted = [*keys, table.c[source], *(table.c[c] for c in extra)]
    moved = 0
    while True:
        rows = connection.execute(
            select(*wanted)
            .where(table.c[target].is_(None), table.c[source].is_not(None))
            .order_by(*keys)
            .limit(batch_size)
        ).all()
        if not rows:
            return moved
        for row in rows:
            mapping = dict(row._mapping)
            sealed = seal_row(table, {**mapping, target: mapping.pop(source)})
            values = {
                name: value
                for name, value in sealed.items()
                if name in (target, target + _MASKED, target + _INDEX)
            }
            connection.execute(
                update(table).where(*(key == mapping[key.name] for key in keys)).values(values)
            )
        moved += len(rows)


@event.listens_for(Engine, "before_execute")
def _refuse_unsealed(
    connection: Any,
    statement: Any,
    multiparams: Any,
    params: Any,
    execution_options: Any,
) -> None:
    """Statements that would put a value into an Encrypted column outside the ORM's unit of
    work, or move what its values are bound to, are refused here: before SQLAlchemy would
    render their parameters into an error message, and before anything is written.

    - a plain value in the parameters of an INSERT or UPDATE (bulk ``session.execute``,
      ``bulk_save_objects``), under the column's name or a bind parameter's;
    - a SQL expression (``literal``, ``func``, another column, ``from_select``) as an
      Encrypted column's value: it would be stored as it is;
    - an UPDATE whose ``values()`` set a primary-key or subject column of such a table (the
      values would stay bound to the old key or encrypted under the old subject's key; the
      ORM's own flush re-seals them, and so is not refused);
    - a text statement whose bind parameters are typed Encrypted and given plain values.
    """
    if isinstance(statement, TextClause):
        names = {
            name for name, bind in statement._bindparams.items() if isinstance(bind.type, Encrypted)
        }
        refusal = _plain_parameters(names, multiparams, params)
    elif isinstance(statement, ValuesBase):
        refusal = _values_refusal(statement, multiparams, params)
    else:
        return
    del multiparams, params
    if refusal is not None:
        raise refusal


def _values_refusal(statement: Any, multiparams: Any, params: Any) -> InvalidArgument | None:
    table = statement.table
    if not isinstance(table, Table):
        return None
    pairs = _encrypted_columns(table)
    if not pairs:
        return None
    encrypted: list[Any] = [column for column, _ in pairs]
    names = {c.key for c in encrypted} | {c.name for c in encrypted}
    given: dict[Any, Any] = dict(getattr(statement, "_values", None) or {})
    for column, value in given.items():
        name = getattr(column, "key", column)
        if name not in names:
            continue
        if not isinstance(value, BindParameter):
            return InvalidArgument(
                "an Encrypted column takes sealed values only: a SQL expression would be "
                "stored as it is"
            )
        if is_plain(value.value):
            return _plain_refusal()
        names.add(value.key)
    if getattr(statement, "select", None) is not None:
        return InvalidArgument("an INSERT ... SELECT cannot fill a table with Encrypted columns")
    if isinstance(statement, Update):
        bound = {name for c in encrypted if (name := c.type.subject) is not None}
        bound |= {c.key for c in table.primary_key.columns}
        set_names = {getattr(c, "key", c) for c in given}
        if set_names & bound:
            return InvalidArgument(
                "a bulk UPDATE may not change a row's key or subject where Encrypted columns "
                "are bound to them: change them through the ORM's unit of work, which seals "
                "the values again"
            )
        refusal = _unsealed_moves(encrypted, _rows(multiparams, params))
        if refusal is not None:
            return refusal
    return _plain_parameters(names, multiparams, params)


def _unsealed_moves(encrypted: list[Any], rows: list[Any]) -> InvalidArgument | None:
    """An UPDATE's parameter rows that change a subject must carry every Encrypted column
    bound to it, sealed again (or NULL): what the ORM's flush sends after re-sealing. A bulk
    UPDATE by primary key that only moves the subject would leave the values under the old
    subject's key, where erasing the new subject misses them."""
    bound: dict[str, list[Any]] = {}
    for column in encrypted:
        if column.type.subject is not None:
            bound.setdefault(column.type.subject, []).append(column)
    for row in rows:
        for subject, columns in bound.items():
            if subject not in row:
                continue
            for column in columns:
                value = row.get(column.key, row.get(column.name, _ABSENT))
                if value is _ABSENT or is_plain(value):
                    return InvalidArgument(
                        "an UPDATE that changes a row's subject must seal its Encrypted "
                        "values again: change the subject through the ORM's unit of work"
                    )
    return None


_ABSENT = object()


def _rows(multiparams: Any, params: Any) -> list[Any]:
    batches = [*(multiparams or ()), params or {}]
    return [
        row
        for batch in batches
        for row in (batch if isinstance(batch, list | tuple) else [batch])
        if isinstance(row, Mapping) and row
    ]


def _plain_parameters(names: set[str], multiparams: Any, params: Any) -> InvalidArgument | None:
    if not names:
        return None
    for row in _rows(multiparams, params):
        if any(name in row and is_plain(row[name]) for name in names):
            return _plain_refusal()
    return None


def _plain_refusal() -> InvalidArgument:
    """A new error each time (one raised twice would carry both tracebacks' frames)."""
    return InvalidArgument(
        "an Encrypted column takes values through the ORM's unit of work (session.add), or "
        "rows sealed by pg_sa.seal_row: a plain value would be stored in clear"
    )
