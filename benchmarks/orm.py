"""The ORM: loading 10,000 customers and reading each one's phone, through an Encrypted column
(decrypted in one batch, one audit event) against the same model with a plaintext column,
on SQLite files. The bar compares rows that differ only in that column; a second row, with
no bar, adds the masked companion column (one more plain column to load) to the encrypted
model, as a list page's model would have it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import String, create_engine, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import piiguard as pg
import piiguard.integrations.sqlalchemy as pg_sa
from benchmarks._harness import Case, Ratio, best_ns
from piiguard.keys import LocalKEK
from piiguard.testing import allow_test_reveals

ROWS = 10_000


class Base(DeclarativeBase):
    pass


class Encrypted(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str] = mapped_column(pg_sa.Encrypted("phone", subject="user_id"))


class Masked(Base):
    __tablename__ = "masked_customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str] = mapped_column(pg_sa.Encrypted("phone", subject="user_id", masked=True))


class Plain(Base):
    __tablename__ = "plain_customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str] = mapped_column(String(20))


def _load(engine: Any, model: Any) -> int:
    with Session(engine) as session, pg.acting(actor="bench", purpose="testing"):
        return sum(len(c.phone) for c in session.scalars(select(model)).all())


def orm() -> list[Ratio]:
    """ORM load of 10,000 encrypted rows, each phone read, against plaintext rows."""
    home = Path(tempfile.mkdtemp())
    with pg.Guard.open(
        f"sqlite:///{home / 'piiguard.db'}", kek=LocalKEK.generate(home / "kek.key")
    ) as guard:
        allow_test_reveals(guard)
        pg_sa.install(guard, Base)
        engine = create_engine(f"sqlite:///{home / 'shop.db'}")
        Base.metadata.create_all(engine)
        phones = [f"138{n:08d}" for n in range(ROWS)]
        with Session(engine) as session:
            for model in (Encrypted, Masked):
                rows = [
                    pg_sa.seal_row(
                        model.__table__,  # type: ignore[arg-type]
                        {"id": n + 1, "user_id": f"u{n % 500}", "phone": phone},
                    )
                    for n, phone in enumerate(phones)
                ]
                session.execute(insert(model), rows)
            session.execute(
                insert(Plain),
                [{"id": n + 1, "user_id": f"u{n % 500}", "phone": p} for n, p in enumerate(phones)],
            )
            session.commit()
        times = best_ns(
            {
                name: Case(f"load(e, {name})", {"load": _load, "e": engine, name: model})
                for name, model in (("Encrypted", Encrypted), ("Plain", Plain), ("Masked", Masked))
            },
            number=1,
            rounds=15,
        )
        engine.dispose()
    return [
        Ratio(
            f"ORM load of {ROWS:,} rows, each phone read: Encrypted / plaintext",
            times["Encrypted"],
            times["Plain"],
            2.0,
        ),
        Ratio(
            "  the same, with a masked companion column",
            times["Masked"],
            times["Plain"],
            None,
            "info",
        ),
    ]
