"""Django: an encrypted model field bound to its row, consent and acting view decorators,
erasure and export participants for models, and the Guard from ``settings.PIIGUARD``.

```python
# settings.py
PIIGUARD = {"STORE_URL": "postgresql+psycopg://app@db/shop", "KEK": "file:/secrets/kek.key"}

# models.py
from piiguard.integrations import django as pg_dj

class Customer(models.Model):
    user_id = models.CharField(max_length=40)
    phone = pg_dj.EncryptedField("phone", subject="user_id", searchable=True, masked=True)

pg_dj.participate(Customer, subject="user_id")     # erasure and export reach its rows

# views.py
@pg_dj.consent("marketing_sms", subject=lambda request: request.user.username)
def promo(request): ...

Customer.objects.filter(pg_dj.lookup(Customer, "phone", "138 1234 5678"))
with pg.acting(actor="cs-7", purpose="after_sales"):
    customer.phone                       # decrypted on access, audited
```

The same rules as the SQLAlchemy integration (docs/orm.md): values bound to (table, column,
primary key, kind); a server-side key sealed right after the INSERT, in the same transaction;
``<field>_masked`` and ``<field>_index`` companions; plain values never reach the database.
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time
from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models import Q
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_save, pre_save
from django.http import HttpRequest, JsonResponse
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from piiguard.errors import (
    AccessDenied,
    ConsentRequired,
    DecryptionError,
    InvalidArgument,
    boundary,
)
from piiguard.events import Rows
from piiguard.events import acting as acting_as
from piiguard.guard import Guard
from piiguard.integrations._problem import MEDIA_TYPE, access_problem, consent_problem
from piiguard.integrations._values import PENDING_TEXT, written
from piiguard.integrations._values import Pending as _Pending
from piiguard.integrations._values import Sealed as _Sealed
from piiguard.kinds import get_kind
from piiguard.masking import mask

__all__ = [
    "EncryptedField",
    "acting",
    "bind",
    "consent",
    "guard",
    "install",
    "lookup",
    "open_all",
    "participate",
]

_INSTALLED: dict[str, Guard] = {}
_MASKED, _INDEX = "_masked", "_index"


# -- the Guard -----------------------------------------------------------------------------


def install(guard_: Guard) -> None:
    """Use ``guard_`` for every encrypted field (tests, or a Guard opened by hand)."""
    if not isinstance(guard_, Guard):
        raise InvalidArgument("install takes a piiguard Guard")
    _INSTALLED["guard"] = guard_


def guard() -> Guard:
    """The Guard: the installed one, else one opened once from ``settings.PIIGUARD`` (the
    keys of ``Guard.from_env`` without their ``PIIGUARD_`` prefix: ``STORE_URL``, ``KEK``,
    ``PREVIOUS_KEKS``, ``PKCS11_PIN``, ``PKCS11_MODULE``, ``SCHEMA``, ``SUITE``,
    ``ERASURE_LOG``). Errors name the setting, never its value."""
    found = _INSTALLED.get("guard")
    if found is None:
        found = _INSTALLED["guard"] = _from_settings()
    return found


@boundary
def _from_settings() -> Guard:
    """The Guard of ``settings.PIIGUARD``; no frame an error passes through keeps them."""
    given = getattr(settings, "PIIGUARD", None)
    if not isinstance(given, dict):
        del given
        raise InvalidArgument("settings.PIIGUARD is a dict (STORE_URL, KEK, ...)")
    environ = {f"PIIGUARD_{key}": str(value) for key, value in given.items()}
    del given
    try:
        return Guard.from_env(environ)
    except Exception as error:
        failure = error
    del environ
    raise failure


# -- one transaction -----------------------------------------------------------------------


class _DjangoOwned:
    """Django's driver connection as SQLAlchemy sees it inside :func:`bind`: Django owns its
    transaction and its life, so SQLAlchemy's commit, rollback and close do nothing, and
    SQLAlchemy's connect-time set-up (its REGEXP function, a notice handler) leaves
    Django's connection as it was."""

    __slots__ = ("_driver",)

    def __init__(self, driver: Any) -> None:
        self._driver = driver

    def commit(self) -> None:
        """Django commits (``transaction.atomic``)."""

    def rollback(self) -> None:
        """Django rolls back."""

    def close(self) -> None:
        """Django closes its connections."""

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        """Django's own SQLite functions (its REGEXP) stay."""

    def add_notice_handler(self, *args: Any) -> None:
        """No handler of SQLAlchemy's piles up on Django's connection."""

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        cursor = self._driver.cursor(*args, **kwargs)
        if self._driver.__class__.__module__ == "sqlite3":
            return _TextDates(cursor)
        adapters = getattr(cursor, "adapters", None)  # psycopg 3: this cursor's own copy
        if adapters is not None:
            # Django's loader reads a timestamptz in its TIME_ZONE, naive when USE_TZ is
            # off; piiguard reads instants (aware), whatever the session's time zone
            from psycopg.types.datetime import TimestamptzLoader  # noqa: PLC0415

            adapters.register_loader("timestamptz", TimestamptzLoader)
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)


def _as_text(row: Any) -> Any:
    return tuple(
        value.isoformat(" ")
        if isinstance(value, datetime)
        else value.isoformat()
        if isinstance(value, date | time)
        else value
        for value in row
    )


class _TextDates:
    """A cursor of Django's SQLite connection, which turns DATETIME, DATE and TIME columns
    into Python values (its ``detect_types``): rows read back as SQLAlchemy's SQLite
    dialect expects them, in text."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def fetchone(self) -> Any:
        row = self._cursor.fetchone()
        return None if row is None else _as_text(row)

    def fetchmany(self, *args: Any) -> list[Any]:
        return [_as_text(row) for row in self._cursor.fetchmany(*args)]

    def fetchall(self) -> list[Any]:
        return [_as_text(row) for row in self._cursor.fetchall()]

    def __iter__(self) -> Iterator[Any]:
        return (_as_text(row) for row in self._cursor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def _sqlalchemy_url(connection: Any) -> str:
    """The SQLAlchemy dialect and driver of a Django connection (its address is not
    needed: SQLAlchemy uses Django's connection itself)."""
    if connection.vendor == "sqlite":
        return "sqlite://"
    if connection.vendor == "postgresql":
        module = type(connection.connection).__module__.split(".")[0]
        return "postgresql+psycopg2://" if module == "psycopg2" else "postgresql+psycopg://"
    raise InvalidArgument("pg_dj.bind works on SQLite and PostgreSQL databases")


@contextmanager
def bind(*, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Make piiguard's writes join Django's transaction on ``using`` for the block, which
    runs in ``transaction.atomic(using=using)``: a customer saved and their consent grant
    (retention tracking, vault entries, the audit events reporting them) commit together
    or not at all. What must outlive a rollback keeps its own transaction, as with
    ``guard.bind`` (docs/transactions.md). piiguard's store must be in the same database
    (the same SQLite file, or the same PostgreSQL database with the store's schema on the
    connection's search path).

    Raises:
        InvalidArgument: the store is in another database, the database is neither SQLite
            nor PostgreSQL, or this context is bound already.
    """
    guard_ = guard()
    with transaction.atomic(using=using):
        connection = connections[using]
        driver = connection.connection  # atomic connected it
        options: dict[str, Any] = {"poolclass": NullPool, "pool_reset_on_return": None}
        if connection.vendor == "postgresql":
            options["use_native_hstore"] = False  # no type adapters set on Django's connection
        engine = create_engine(
            _sqlalchemy_url(connection), creator=lambda: _DjangoOwned(driver), **options
        )
        # what piiguard asks to run after the commit, relayed by one callback registered
        # here, at this block's level: a savepoint rolled back inside the block (where
        # piiguard's first write may have been) does not take it along
        after_commit: list[Callable[[], None]] = []
        transaction.on_commit(lambda: [action() for action in after_commit], using=using)
        try:
            with (
                engine.connect() as shared,
                shared.begin(),  # Django's transaction, as SQLAlchemy sees it (no SQL)
                guard_.bind(shared, on_commit=after_commit.append),
            ):
                yield
        finally:
            engine.dispose()


# -- stored values -------------------------------------------------------------------------


class _Opening(DeferredAttribute):  # type: ignore[misc]
    """The field's attribute: reading it on an instance gives the plaintext (audited)."""

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        value = super().__get__(instance, cls)
        if instance is None:
            return value
        if isinstance(value, _Sealed):
            if value.plaintext is None:
                _open(instance, self.field, value)
            return value.plaintext
        if isinstance(value, _Pending):
            return value.plaintext
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        # a data descriptor, so that reads come here even once the value is in __dict__
        instance.__dict__[self.field.attname] = value


class EncryptedField(models.TextField):  # type: ignore[misc]
    """A field of one PII kind, stored encrypted and bound to its row.

    Args:
        kind: a built-in kind's name.
        subject: the field holding the subject id: values are encrypted under that
            subject's key, so ``guard.erase(subject)`` makes them unreadable.
        searchable: keep ``<name>_index`` (a blind index normalised by kind) for
            :func:`lookup`.
        masked: keep ``<name>_masked``, the kind's display mask, for list pages.
    """

    descriptor_class = _Opening

    def __init__(
        self,
        kind: str,
        *,
        subject: str | None = None,
        searchable: bool = False,
        masked: bool = False,
        **options: Any,
    ) -> None:
        self.kind = get_kind(kind).name
        self.subject = subject
        self.searchable = bool(searchable)
        self.masked = bool(masked)
        options.setdefault("null", True)
        super().__init__(**options)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.update(
            kind=self.kind, subject=self.subject, searchable=self.searchable, masked=self.masked
        )
        return name, path, args, kwargs

    def contribute_to_class(self, cls: Any, name: str, private_only: bool = False) -> None:
        super().contribute_to_class(cls, name, private_only=private_only)
        if cls._meta.abstract:
            return
        _batch_loads(cls)
        _clean_without_reading(cls)
        if self.masked:
            cls.add_to_class(name + _MASKED, models.CharField(max_length=255, null=True))
        if self.searchable:
            cls.add_to_class(
                name + _INDEX, models.CharField(max_length=64, null=True, db_index=True)
            )
        pre_save.connect(_saving, weak=False, dispatch_uid="piiguard_saving")
        post_save.connect(_seal_after_insert, weak=False, dispatch_uid="piiguard_sealing")

    @functools.cached_property
    def validators(self) -> list[Any]:
        """Django's, and the kind's check: a ``ModelForm`` or ``full_clean`` refuses a value
        that is not of the kind (not ``save()``, which never validates)."""
        return [*super().validators, _KindCheck(self.kind)]

    def formfield(self, **kwargs: Any) -> Any:
        """A one-line text input (not the text area of a ``TextField``) that checks the
        kind, as the model field does."""
        return super().formfield(
            **{"widget": forms.TextInput, "validators": [_KindCheck(self.kind)], **kwargs}
        )

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return None if value is None or value == PENDING_TEXT else _Sealed(str(value))

    def get_prep_value(self, value: Any) -> Any:
        stored = written(
            value,
            "an EncryptedField takes values through model.save(): a plain value in a "
            "queryset's update() or a raw query would be stored in clear",
        )
        if isinstance(stored, InvalidArgument):
            del value  # a plain value passed by mistake stays out of this frame
            raise stored
        return stored

    def pre_save(self, model_instance: Any, add: bool) -> Any:
        return _seal(self, model_instance, add)

    def get_placeholder(self, value: Any, compiler: Any, connection: Any) -> str:
        """Django asks every field how to write a value: an expression (``Value``, ``F``,
        ``Concat``, ``Case``) would be stored as SQL computes it, so it is refused."""
        if hasattr(value, "as_sql") or hasattr(value, "resolve_expression"):
            raise InvalidArgument(
                "an EncryptedField takes sealed values only: a SQL expression would be "
                "stored as it is"
            )
        return "%s"

    def get_lookup(self, lookup_name: str) -> Any:
        """Only equality with a sealed value and NULL tests: a pattern (``contains``,
        ``iexact``, ``regex``) would send the value to SQL and match nothing."""
        if lookup_name not in ("exact", "in", "isnull"):
            return None
        return super().get_lookup(lookup_name)


class _KindCheck:
    """A Django validator: the value is one of the kind's (its message never holds it)."""

    def __init__(self, kind: str) -> None:
        self.kind = get_kind(kind)

    def __call__(self, value: Any) -> None:
        if value is None or value == "" or isinstance(value, _Sealed | _Pending):
            return
        valid = self.kind.is_valid(value)
        del value
        if not valid:
            label = self.kind.description or self.kind.name
            raise ValidationError(f"Enter a valid {label}.", code="invalid")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _KindCheck) and other.kind == self.kind

    def __hash__(self) -> int:
        return hash(self.kind.name)


def _context(field: EncryptedField, instance: Any) -> dict[str, str]:
    return {
        "table": field.model._meta.db_table,
        "field": field.column,
        "id": _row_id(instance),
        "kind": field.kind,
    }


def _row_id(instance: Any) -> str:
    """The key as the database gives it back (``"07"`` for an integer key is stored as 7)."""
    return str(instance._meta.pk.to_python(instance.pk))


@boundary
def _seal(field: EncryptedField, instance: Any, add: bool = False) -> Any:
    """The value to store: a plain value (just assigned) sealed with the row's key, its
    companions filled; a server-side key's row waits for its key (sealed after the INSERT)."""
    value = instance.__dict__.get(field.attname)
    moved = (
        isinstance(value, _Sealed)
        and value.row is not None
        and instance.pk is not None
        and value.row != _row_id(instance)
    )
    if isinstance(value, _Sealed) and (add or moved):
        # a stored value going into another row (a clone saved with pk=None, a key
        # changed in place): bound to the old row, it would never open there; sealed
        # again if it was read, else refused
        if value.plaintext is None:
            raise InvalidArgument(
                "a row carries another row's encrypted value (a new row, or a changed "
                "primary key): read or assign it first"
            )
        value = value.plaintext
    elif isinstance(value, _Sealed) and field.subject and instance.pk is not None:
        value = _resealed(field, instance, value)
    if value is None or isinstance(value, _Sealed | _Pending):
        if value is None:
            for suffix, wanted in ((_MASKED, field.masked), (_INDEX, field.searchable)):
                if wanted:
                    setattr(instance, field.name + suffix, None)
        return value
    if not isinstance(value, str):
        raise InvalidArgument("an EncryptedField holds text")
    plaintext = str(value)
    guard_ = guard()
    if field.masked:
        setattr(instance, field.name + _MASKED, mask(plaintext, field.kind))
    if field.searchable:
        index = guard_.blind_index(plaintext, field=_field_name(field), kind=field.kind)
        setattr(instance, field.name + _INDEX, index)
    if instance.pk is None:
        if not instance.__dict__.get(_SAVING):
            # bulk_create sends no post_save: the row's key would never come to seal it
            raise InvalidArgument(
                "an EncryptedField of a row whose key the database chooses is sealed after "
                "its INSERT, by save(): bulk_create cannot do that (give the rows their "
                "keys, or save() each)"
            )
        pending = _Pending(plaintext)
        instance.__dict__[field.attname] = pending
        return pending
    subject = getattr(instance, field.subject) if field.subject else None
    text = guard_.encrypt(
        plaintext,
        context=_context(field, instance),
        subject=None if subject is None else str(subject),
    )
    sealed = instance.__dict__[field.attname] = _Sealed(text, plaintext, _row_id(instance))
    return sealed


def _resealed(field: EncryptedField, instance: Any, value: _Sealed) -> Any:
    """A stored value whose row now names another subject: sealed again under the new
    subject's key if it was read (and its old subject not erased), else refused; left
    under the old key, an erasure of the new subject would miss it."""
    subject = getattr(instance, field.subject or "")
    keys = guard().keys
    if subject is None or keys.destroyed(value.text):
        return value  # a value erased stays erased, whatever the row names now
    if keys.sealed_for(value.text, str(subject)):
        return value
    if value.plaintext is None:
        raise InvalidArgument(
            "a row's subject changes but its encrypted values were not read or assigned "
            "again: read or assign them before save() (an erasure of the new subject would "
            "miss them)"
        )
    return value.plaintext  # sealed below, under the new subject


def _field_name(field: EncryptedField) -> str:
    return f"{field.model._meta.db_table}.{field.column}"


_SAVING = "_piiguard_saving"


def _one(written: int) -> None:
    if written != 1:
        raise InvalidArgument("sealing a new row's values did not write one row")


def _fields_of(model: Any) -> list[EncryptedField]:
    """A model's encrypted fields, found once per model (every loaded row asks)."""
    found = _FIELDS.get(model)
    if found is None:
        found = _FIELDS[model] = [
            f for f in model._meta.concrete_fields if isinstance(f, EncryptedField)
        ]
    return found


_FIELDS: dict[Any, list[EncryptedField]] = {}


def _saving(sender: Any, instance: Any, **_: Any) -> None:
    """A ``save()`` is under way (``bulk_create`` sends no signal): its ``post_save`` will
    come to seal the values of a row whose key the database chooses."""
    if _fields_of(sender):
        instance.__dict__[_SAVING] = True


@boundary
def _seal_after_insert(
    sender: Any, instance: Any, created: bool, update_fields: Any = None, **_: Any
) -> None:
    """Seal the values of a row whose key the database chose, right after its INSERT (a
    failure deletes the row again: under autocommit the INSERT is already committed); and
    write the companions a ``save(update_fields=...)`` left out."""
    instance.__dict__.pop(_SAVING, None)
    fields = _fields_of(sender)
    if not fields:
        return
    rows = sender._base_manager.using(instance._state.db).filter(pk=instance.pk)
    sealed: dict[str, _Sealed] = {}
    try:
        for field in fields:
            value = instance.__dict__.get(field.attname)
            if isinstance(value, _Pending):
                subject = getattr(instance, field.subject) if field.subject else None
                text = guard().encrypt(
                    value.plaintext,
                    context=_context(field, instance),
                    subject=None if subject is None else str(subject),
                )
                sealed[field.attname] = _Sealed(text, value.plaintext, _row_id(instance))
        if sealed:
            with transaction.atomic(using=instance._state.db):
                _one(rows.update(**sealed))
    except BaseException:
        if created:
            rows.delete()  # nothing unsealed stays: no placeholder, no mask, no index
        raise
    instance.__dict__.update(sealed)
    if update_fields:
        companions = {
            name: getattr(instance, name)
            for field in fields
            if field.name in update_fields or field.attname in update_fields
            for suffix, wanted in ((_MASKED, field.masked), (_INDEX, field.searchable))
            if wanted and (name := field.name + suffix) not in update_fields
        }
        if companions:
            rows.update(**companions)


# -- reading: the rows one query loaded open together ----------------------------------------


class _Batch:
    """The instances one query loaded: an encrypted field is opened in all of them at its
    first read in any of them (one ``decrypt_many``, one audit event)."""

    __slots__ = ("members",)

    def __init__(self) -> None:
        self.members: list[weakref.ref[Any]] = []


#: The batch of each query being read, by the list of field names Django passes to every
#: ``from_db`` call of one query (one list per query; held here, so its id is not reused).
_LOADING: OrderedDict[int, tuple[list[str], _Batch]] = OrderedDict()
_LOADING_LOCK = threading.Lock()
_LOADING_KEPT = 32  # queries read at once (nested ones); an older one starts a new batch


def _batch_loads(model: Any) -> None:
    """Make ``model.from_db`` put the instances of one query in one batch: once per model
    and its subclasses (a subclass's own ``from_db`` reaches its parent's through
    ``super()``); a ``from_db`` of the model's own is kept and called."""
    for klass in model.__mro__:
        if getattr(klass.__dict__.get("from_db"), "__func__", None) in _BATCHING:
            return
    inner = model.from_db.__func__

    def from_db(cls: Any, db: str, field_names: list[str], values: Any) -> Any:
        instance = inner(cls, db, field_names, values)
        _join(instance, field_names)
        return instance

    _BATCHING.add(from_db)
    model.from_db = classmethod(from_db)


#: The ``from_db`` functions that batch (one per model that has encrypted fields).
_BATCHING: set[Callable[..., Any]] = set()
#: The ``clean_fields`` methods that leave unread values alone (one per such model).
_CLEANING: set[Callable[..., Any]] = set()


def _clean_without_reading(model: Any) -> None:
    """Make ``model.clean_fields`` (``full_clean``, a ``ModelForm``) skip encrypted values
    loaded and not read: Django reads every field to validate it, which would reveal (and
    audit) each one, and a value nobody read was not changed. Once per model hierarchy."""
    for klass in model.__mro__:
        if klass.__dict__.get("clean_fields") in _CLEANING:
            return
    inner = model.clean_fields

    def clean_fields(self: Any, exclude: Any = None) -> Any:
        unread = {
            field.name
            for field in _fields_of(type(self))
            if type(value := self.__dict__.get(field.attname)) is _Sealed
            and value.plaintext is None
        }
        if unread:
            exclude = set(exclude or ()) | unread
        return inner(self, exclude=exclude)

    _CLEANING.add(clean_fields)
    model.clean_fields = clean_fields


def _join(instance: Any, field_names: list[str]) -> None:
    """Note the row a loaded instance's values are bound to (a key changed in place is
    then seen at ``save()``), and put the instance in the batch of its query."""
    sealed = [
        value
        for field in _fields_of(type(instance))
        if type(value := instance.__dict__.get(field.attname)) is _Sealed
    ]
    if not sealed:
        return
    row = _row_id(instance)
    for value in sealed:
        value.row = row
    key = id(field_names)
    with _LOADING_LOCK:
        found = _LOADING.get(key)
        if found is None or found[0] is not field_names:
            found = _LOADING[key] = (field_names, _Batch())
            while len(_LOADING) > _LOADING_KEPT:
                _LOADING.popitem(last=False)
        batch = found[1]
    batch.members.append(weakref.ref(instance))
    for value in sealed:
        value.batch = batch


def _open(instance: Any, field: EncryptedField, sealed: _Sealed) -> None:
    """Open ``sealed``, and the same field of every instance its query loaded that still
    waits for it. The batch keeps only instances with a value left to open (a query read
    with ``.iterator()`` keeps adding to it); a batch that does not open is left, and each
    of its values opens alone."""
    batch = sealed.batch
    members = [instance]
    if batch is not None:
        alive: list[weakref.ref[Any]] = []
        for ref in batch.members:
            other = ref()
            if other is None or not _waiting(other):
                continue
            alive.append(ref)
            if other is not instance and type(other) is type(instance):
                members.append(other)
        batch.members = alive
    try:
        open_all(members, field.attname)
    except DecryptionError:
        if len(members) == 1:
            raise
        for member in members:  # one row does not open (copied, erased): each alone
            value = member.__dict__.get(field.attname)
            if isinstance(value, _Sealed):
                value.batch = None
        open_all([instance], field.attname)
    sealed.batch = None


def _waiting(instance: Any) -> bool:
    """Whether an instance has an encrypted value loaded and not opened yet."""
    return any(
        type(value := instance.__dict__.get(field.attname)) is _Sealed and value.plaintext is None
        for field in _fields_of(type(instance))
    )


@boundary
def open_all(instances: Sequence[Any], name: str) -> list[str | None]:
    """Open one field of many instances in one ``decrypt_many`` (one audit event), by the
    actor and purpose of ``pg.acting``; each instance keeps its plaintext afterwards."""
    if not instances:
        return []
    field = type(instances[0])._meta.get_field(name)
    if not isinstance(field, EncryptedField):
        raise InvalidArgument("open_all takes an EncryptedField's name")
    waiting = [
        (instance, value)
        for instance in instances
        if isinstance(value := instance.__dict__.get(field.attname), _Sealed)
        and value.plaintext is None
    ]
    if waiting:
        base = _context(field, waiting[0][0])
        del base["id"]
        opened = guard().decrypt_many(
            [value.text for _, value in waiting],
            # the row each value is bound to: its key as loaded, even if changed since
            contexts=Rows(
                base, "id", [value.row or _row_id(instance) for instance, value in waiting]
            ),
        )
        for (_, value), plaintext in zip(waiting, opened, strict=True):
            value.plaintext = plaintext
            value.batch = None
    return [getattr(instance, field.attname) for instance in instances]


@boundary
def lookup(model: Any, name: str, value: str) -> Q:
    """``Q(<name>_index=...)``: rows whose value equals ``value`` written any way the kind
    allows.

    Raises:
        InvalidArgument: not a searchable EncryptedField.
        InvalidPII: ``value`` is not of the field's kind.
    """
    field = model._meta.get_field(name)
    if not isinstance(field, EncryptedField) or not field.searchable:
        raise InvalidArgument("lookup takes a searchable EncryptedField's name")
    index = guard().blind_index(value, field=_field_name(field), kind=field.kind)
    return Q(**{name + _INDEX: index})


# -- participants --------------------------------------------------------------------------


def participate(
    model: Any, *, subject: str, erase: str = "delete", using: str | None = None
) -> None:
    """Make ``guard.erase(subject)`` and ``guard.export(subject)`` reach the model's rows
    whose ``subject`` field holds the subject id: ``erase="delete"`` deletes them,
    ``"clear"`` sets every EncryptedField (and its companions) to NULL. ``using``: the
    database alias (default: the model's router)."""
    if erase not in ("delete", "clear"):
        raise InvalidArgument('erase is "delete" or "clear"')
    guard_ = guard()
    table = model._meta.db_table
    encrypted = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]

    @guard_.subjects.eraser(table)
    def erase_rows(subject_id: str) -> int:
        rows = model._base_manager.db_manager(using).filter(**{subject: subject_id})
        if erase == "delete":
            return int(rows.delete()[0])
        cleared: dict[str, Any] = {}
        for field in encrypted:
            cleared[field.attname] = None
            for suffix, wanted in ((_MASKED, field.masked), (_INDEX, field.searchable)):
                if wanted:
                    cleared[field.name + suffix] = None
        return int(rows.update(**cleared))

    @guard_.subjects.exporter(table)
    def export_rows(subject_id: str) -> list[dict[str, Any]]:
        manager = model._base_manager.db_manager(using)
        rows = list(manager.filter(**{subject: subject_id}).order_by("pk"))
        for field in encrypted:
            open_all(rows, field.name)
        return [
            {f.name: _plain(getattr(row, f.attname)) for f in model._meta.concrete_fields}
            for row in rows
        ]


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


# -- views ---------------------------------------------------------------------------------


def _problem(error: ConsentRequired | AccessDenied) -> JsonResponse:
    body = access_problem(error) if isinstance(error, AccessDenied) else consent_problem(error)
    return JsonResponse(body, status=403, content_type=MEDIA_TYPE)


def consent(
    *purposes: str, subject: Callable[[HttpRequest], str | None]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A view decorator: the view runs only if ``subject(request)`` consented to
    ``purposes``; else 403 with an RFC 9457 problem body."""

    def refusal(request: HttpRequest) -> JsonResponse | None:
        who = subject(request)
        if not isinstance(who, str) or not who:
            return _problem(AccessDenied("no_subject", "this view needs a subject"))
        lacking = guard().consent.missing(who, purposes)
        return _problem(ConsentRequired(lacking)) if lacking else None

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refused = await sync_to_async(refusal)(request)  # the store, off the loop
                return refused or await view(request, *args, **kwargs)

            return async_wrapper

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return refusal(request) or view(request, *args, **kwargs)

        return wrapper

    return decorate


def acting(
    purpose: str, *, actor: Callable[[HttpRequest], str | None]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A view decorator naming the actor (``actor(request)``) and ``purpose`` of every
    reveal the view makes (``pg.acting``); no actor, or one that is no name: 403."""

    def scope_of(request: HttpRequest) -> Any:
        """The ``pg.acting`` scope of the request, or the 403 answer."""
        who = actor(request)
        if not isinstance(who, str) or not who:
            return _problem(AccessDenied("no_actor", "this view needs an actor"))
        try:
            scope = acting_as(actor=who, purpose=purpose)
            scope.__enter__()
        except InvalidArgument:
            return _problem(AccessDenied("no_actor", "this view needs a staff id"))
        return scope

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                scope = scope_of(request)
                if isinstance(scope, JsonResponse):
                    return scope
                try:
                    return await view(request, *args, **kwargs)
                except (AccessDenied, ConsentRequired) as error:
                    return _problem(error)
                finally:
                    scope.__exit__(None, None, None)

            return async_wrapper

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            scope = scope_of(request)
            if isinstance(scope, JsonResponse):
                return scope
            try:
                return view(request, *args, **kwargs)
            except (AccessDenied, ConsentRequired) as error:
                return _problem(error)
            finally:
                scope.__exit__(None, None, None)

        return wrapper

    return decorate
