"""The Alembic recipe of docs/orm.md: an existing plaintext column becomes an Encrypted
column, in batches, on SQLite and PostgreSQL, run with Alembic's own operations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import piiguard as pg
import piiguard.integrations.sqlalchemy as pg_sa
from piiguard.testing import allow_test_reveals
from tests.backends import postgres_schema
from tests.helpers import CANARY_PHONE

PHONES = [CANARY_PHONE, "13912345678", "+86 150 1234 5678", None, "18612345678"]


class After(DeclarativeBase):
    pass


class Customer(After):
    """The model once the migration has run."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(40))
    phone: Mapped[str | None] = mapped_column(
        pg_sa.Encrypted("phone", subject="user_id", searchable=True, masked=True)
    )


def upgrade(connection: sa.Connection, guard: pg.Guard) -> int:
    """The recipe: rename the plaintext column, add the Encrypted one under the final name
    (values are bound to the column's name) with its companions, move the values in
    batches, drop the plaintext column."""
    op = Operations(MigrationContext.configure(connection))
    with op.batch_alter_table("customers") as batch:
        batch.alter_column("phone", new_column_name="phone_plain")
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.Text(), nullable=True))
        batch.add_column(sa.Column("phone_masked", sa.String(255), nullable=True))
        batch.add_column(sa.Column("phone_index", sa.String(64), nullable=True))
    during = sa.Table(
        "customers",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.String(40)),
        sa.Column("phone_plain", sa.String(40)),
        sa.Column(
            "phone", pg_sa.Encrypted("phone", subject="user_id", searchable=True, masked=True)
        ),
    )
    pg_sa.install(guard, during.metadata)
    moved = pg_sa.encrypt_column(
        connection, during, source="phone_plain", target="phone", batch_size=2
    )
    assert pg_sa.encrypt_column(connection, during, source="phone_plain", target="phone") == 0
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("phone_plain")
    return moved


@pytest.fixture(params=["sqlite", "postgresql"])
def app_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
        yield engine
        engine.dispose()
        return
    with postgres_schema() as (url, schema):
        engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
        with engine.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        yield engine
        engine.dispose()


def test_a_plaintext_column_is_moved_into_an_encrypted_one(
    guard: pg.Guard, app_engine: sa.Engine
) -> None:
    allow_test_reveals(guard)
    before = sa.Table(
        "customers",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.String(40)),
        sa.Column("phone", sa.String(40)),
    )
    with app_engine.begin() as connection:
        before.create(connection)
        connection.execute(
            sa.insert(before),
            [{"id": n + 1, "user_id": f"customer-{n}", "phone": p} for n, p in enumerate(PHONES)],
        )
    with app_engine.begin() as connection:
        assert upgrade(connection, guard) == 4  # the NULL stays NULL
    with app_engine.connect() as connection:
        raw = repr(connection.execute(sa.text("SELECT * FROM customers")).all())
        columns = {c["name"] for c in sa.inspect(connection).get_columns("customers")}
    assert CANARY_PHONE not in raw
    assert "138****5678" in raw
    assert columns == {"id", "user_id", "phone", "phone_masked", "phone_index"}
    pg_sa.install(guard, After)
    with Session(app_engine) as session, pg.acting(actor="tester", purpose="testing"):
        customers = session.scalars(sa.select(Customer).order_by(Customer.id)).all()
        assert [c.phone for c in customers] == PHONES
        (found,) = session.scalars(
            sa.select(Customer).where(pg_sa.lookup(Customer.phone, "150-1234-5678"))
        )
        assert found.user_id == "customer-2"


def test_encrypt_column_refuses_what_it_cannot_move(guard: pg.Guard) -> None:
    table = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("plain", sa.String(40)),
        sa.Column("phone", pg_sa.Encrypted("phone")),
    )
    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        for arguments in (
            {"source": "plain", "target": "plain"},
            {"source": "nothing", "target": "phone"},
            {"source": "phone", "target": "phone"},
            {"source": "plain", "target": "phone", "batch_size": 0},
        ):
            with pytest.raises(pg.InvalidArgument):
                pg_sa.encrypt_column(connection, table, **arguments)
