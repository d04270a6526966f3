"""The catalog: the one register of processing purposes, and the privacy notices published.

Purposes are versioned and never overwritten (a proof names the definition a subject agreed
to); notices are numbered in publication order, list their purposes as rows, and keep a
hash of the text the subject was shown (PIPL Art. 17).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, func, select

from piiguard.consent.purposes import Purpose
from piiguard.consent.rules import Terms, material_floor
from piiguard.errors import InvalidArgument, PolicyViolation, UnknownPurpose
from piiguard.store import Store, aware

__all__ = ["Notice", "PurposeCatalog"]

_MAX_NOTICE_TEXT = 1_000_000


@dataclass(frozen=True, slots=True)
class Notice:
    """A published version of the privacy notice.

    ``text_sha256`` is the SHA-256 (hex) of the text shown, when one was given; ``text`` is
    the text itself, when it was kept.
    """

    version: str
    purposes: frozenset[str]
    material: bool
    published_at: datetime
    text_sha256: str | None = None
    text: str | None = field(default=None, repr=False)


class PurposeCatalog:
    """Registered purposes and published notices, in one store."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._tables = store.tables
        self._clock = clock

    # -- purposes --------------------------------------------------------------------------

    def register(self, purpose: Purpose) -> int:
        """Register a purpose, or redefine it; return its version (see ConsentLedger)."""
        if not isinstance(purpose, Purpose):
            raise InvalidArgument("register() takes a piiguard.Purpose")
        table, history = self._tables.purposes, self._tables.purpose_versions
        definition = purpose.definition()
        now = self._clock()
        with self._store.changing() as connection:
            self._store.serialize(connection, "purpose:" + purpose.name)
            row = connection.execute(
                select(table.c.version, table.c.definition)
                .where(table.c.name == purpose.name)
                .with_for_update()
            ).first()
            if row is not None and row.definition == definition:
                return int(row.version)
            version = 1 if row is None else int(row.version) + 1
            values = {"version": version, "definition": definition, "registered_at": now}
            if row is None:
                connection.execute(table.insert().values(name=purpose.name, **values))
            else:
                connection.execute(
                    table.update().where(table.c.name == purpose.name).values(**values)
                )
            connection.execute(history.insert().values(name=purpose.name, **values))
            return version

    def current(self, name: str, connection: Connection | None = None) -> tuple[Purpose, int]:
        """The purpose's current definition and version.

        Raises:
            UnknownPurpose: none is registered under that name.
        """
        if type(name) is not str:  # not asked of the store: PostgreSQL would refuse the type
            raise UnknownPurpose(name)
        table = self._tables.purposes
        query = select(table.c.version, table.c.definition).where(table.c.name == name)
        row = self._first(query, connection)
        if row is None:
            raise UnknownPurpose(name)
        return Purpose.from_definition(name, row.definition), int(row.version)

    def definition_at(
        self, name: str, version: int, connection: Connection | None = None
    ) -> Purpose | None:
        """The purpose as defined at ``version`` (None if that version was never recorded:
        stores older than schema 6 kept only the latest)."""
        table = self._tables.purpose_versions
        row = self._first(
            select(table.c.definition).where(table.c.name == name, table.c.version == version),
            connection,
        )
        return None if row is None else Purpose.from_definition(name, row.definition)

    def names(self) -> list[tuple[Purpose, int]]:
        """Every registered purpose, with its current version."""
        table = self._tables.purposes
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                select(table.c.name, table.c.version, table.c.definition).order_by(table.c.name)
            ).all()
        return [(Purpose.from_definition(r.name, r.definition), int(r.version)) for r in rows]

    def terms(self, name: str, connection: Connection | None = None) -> Terms:
        """What a grant for the purpose must meet now.

        Raises:
            UnknownPurpose: none is registered under that name.
        """
        purpose, version = self.current(name, connection)
        if not purpose.needs_grant:
            return Terms(version, needs_grant=False, floor=0)
        notices, covers = self._tables.notices, self._tables.notice_purposes
        query = (
            select(notices.c.seq, notices.c.material)
            .join(covers, covers.c.notice == notices.c.version)
            .where(covers.c.purpose == name)
        )
        if connection is None:
            with self._store.engine.connect() as own:
                rows = own.execute(query).all()
        else:
            rows = connection.execute(query).all()
        return Terms(version, True, material_floor((int(r.seq), bool(r.material)) for r in rows))

    # -- notices ---------------------------------------------------------------------------

    def publish_notice(
        self,
        version: str,
        *,
        purposes: Iterable[str],
        material: bool = True,
        text: str | None = None,
        keep_text: bool = False,
    ) -> Notice:
        """Publish a notice version (see ConsentLedger.publish_notice)."""
        if not isinstance(version, str) or not 0 < len(version) <= 64:
            raise InvalidArgument("a notice version is a text of 1 to 64 characters")
        if text is not None and (not isinstance(text, str) or len(text) > _MAX_NOTICE_TEXT):
            raise InvalidArgument("a notice's text is a str of at most 1,000,000 characters")
        names = frozenset(purposes)
        if not all(isinstance(name, str) for name in names):
            raise InvalidArgument("a notice's purposes are names of registered purposes")
        digest = (
            None
            if text is None
            else hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        )
        notices, covers = self._tables.notices, self._tables.notice_purposes
        with self._store.changing() as connection:
            for name in sorted(names):
                self.current(name, connection)  # UnknownPurpose
            self._store.serialize(connection, "notices")  # one publication order
            found = self._notice(version, connection)
            if found is not None:
                if (found.purposes, found.material, found.text_sha256) != (
                    names,
                    bool(material),
                    digest,
                ):
                    raise PolicyViolation(
                        f"notice {version!r} is published with other content: "
                        "publish changes under a new version"
                    )
                return found
            order = connection.execute(select(func.max(notices.c.seq))).scalar()
            notice = Notice(
                version,
                names,
                bool(material),
                self._clock(),
                digest,
                text if keep_text else None,
            )
            connection.execute(
                notices.insert().values(
                    version=version,
                    purposes="[]",  # the rows below hold them (schema 6)
                    material=notice.material,
                    published_at=notice.published_at,
                    seq=int(order or 0) + 1,
                    text_sha256=digest,
                    text=notice.text,
                )
            )
            if names:
                connection.execute(
                    covers.insert(), [{"notice": version, "purpose": n} for n in sorted(names)]
                )
        return notice

    def notice(self, version: str) -> Notice | None:
        """The published notice of that version, or None."""
        with self._store.engine.connect() as connection:
            return self._notice(version, connection)

    def _notice(self, version: str, connection: Connection) -> Notice | None:
        notices, covers = self._tables.notices, self._tables.notice_purposes
        row = connection.execute(select(notices).where(notices.c.version == version)).first()
        if row is None:
            return None
        names = connection.execute(select(covers.c.purpose).where(covers.c.notice == version))
        return Notice(
            row.version,
            frozenset(names.scalars()),
            bool(row.material),
            aware(row.published_at),
            row.text_sha256,
            row.text,
        )

    def notice_orders(self, connection: Connection) -> dict[str, int]:
        """Every notice's publication order, by version."""
        notices = self._tables.notices
        rows = connection.execute(select(notices.c.version, notices.c.seq))
        return {version: int(order) for version, order in rows}

    def notice_order(self, version: str | None, connection: Connection) -> int | None:
        """One notice's publication order (None for no notice)."""
        if version is None:
            return None
        notices = self._tables.notices
        found = connection.execute(
            select(notices.c.seq).where(notices.c.version == version)
        ).scalar()
        return None if found is None else int(found)

    def _first(self, query: Select[Any], connection: Connection | None) -> Row[Any] | None:
        if connection is None:
            with self._store.engine.connect() as own:
                return own.execute(query).first()
        return connection.execute(query).first()
