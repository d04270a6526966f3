"""piiguard.integrations.sqlalchemy on real databases: the application's tables on a SQLite
file and on PostgreSQL, piiguard's store beside them (its own file, or its own schema)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import (
    Engine,
    ForeignKey,
    MetaData,
    String,
    create_engine,
    insert,
    select,
    text,
)
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, make_transient, mapped_column

import piiguard as pg
import piiguard.integrations.sqlalchemy as pg_sa
from piiguard.testing import allow_test_reveals
from tests.backends import postgres_schema
from tests.helpers import CANARY_ID, CANARY_PHONE, piiguard_frames_text
from tests.strategies import mobiles

TESTING = {"actor": "tester", "purpose": "testing"}


class Base(DeclarativeBase):
    pass


class Customer(Base):
    """A server-side primary key (autoincrement), a subject, both companions."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str | None] = mapped_column(
        pg_sa.Encrypted("phone", subject="user_id", searchable=True, masked=True)
    )
    id_number: Mapped[str | None] = mapped_column(pg_sa.Encrypted("cn_resident_id"))


class Address(Base):
    """A client-side primary key."""

    __tablename__ = "addresses"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    line: Mapped[str] = mapped_column(pg_sa.Encrypted("address", masked=True))


class Line(Base):
    """A composite primary key."""

    __tablename__ = "order_lines"
    order_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    number: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    receiver_phone: Mapped[str] = mapped_column(pg_sa.Encrypted("phone"))


@pytest.fixture(params=["sqlite", "postgresql"])
def app_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The application's own database, with its tables created."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    else:
        with postgres_schema() as (url, schema):
            engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
            with engine.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            Base.metadata.create_all(engine)
            yield engine
            engine.dispose()
            return
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def shop(guard: pg.Guard, app_engine: Engine) -> Iterator[Session]:
    pg_sa.install(guard, Base)
    with Session(app_engine) as session:
        yield session


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    assert isinstance(bind, Engine)
    return bind


def _raw(session: Session) -> str:
    """Every row of every application table, as the database holds it."""
    with _engine(session).connect() as connection:
        return repr(
            [connection.execute(select(table)).all() for table in Base.metadata.sorted_tables]
        )


def _decrypts(guard: pg.Guard) -> list[Any]:
    return [e for e in guard.audit.events(action="decrypt") if e.result == "ok"]


def test_values_are_stored_encrypted_with_their_display_mask(
    shop: Session, guard: pg.Guard
) -> None:
    shop.add(Customer(user_id="customer-1", phone=CANARY_PHONE, id_number=CANARY_ID))
    shop.commit()
    stored = _raw(shop)
    assert CANARY_PHONE not in stored
    assert CANARY_ID not in stored
    assert "138****5678" in stored  # the companion, for list pages
    (masked,) = shop.scalars(select(Customer.phone_masked)).all()  # type: ignore[attr-defined]
    assert masked == "138****5678"
    assert _decrypts(guard) == []  # a list page reveals nothing


def test_a_query_opens_a_column_for_all_its_rows_at_once_on_first_access(
    shop: Session, guard: pg.Guard
) -> None:
    phones = [f"1381234{n:04d}" for n in range(12)]
    shop.add_all([Customer(user_id=f"customer-{n}", phone=p) for n, p in enumerate(phones)])
    shop.commit()
    shop.expunge_all()
    customers = shop.scalars(select(Customer).order_by(Customer.id)).all()
    assert _decrypts(guard) == []  # loading reveals nothing
    with pytest.raises(pg.AccessDenied):
        _ = customers[3].phone  # who, and why?
    with pg.acting(**TESTING):
        assert [c.phone for c in customers] == phones
        assert customers[0].phone == phones[0]  # opened once, kept
    (event,) = _decrypts(guard)
    assert (event.actor, event.purpose, event.count) == ("tester", "testing", 12)
    assert len(event.detail["rows"]) == 12  # one row per customer (ids as keyed digests)
    assert event.detail["common"]["table"] == "customers"


def test_a_query_read_in_chunks_opens_each_chunk_once(shop: Session, guard: pg.Guard) -> None:
    """With yield_per, the first read in each chunk opens the rows loaded so far that are
    still closed: no row twice, every row once."""
    phones = [f"1381234{n:04d}" for n in range(12)]
    shop.add_all([Customer(user_id=f"customer-{n}", phone=p) for n, p in enumerate(phones)])
    shop.commit()
    shop.expunge_all()
    with pg.acting(**TESTING):
        read = [
            c.phone
            for c in shop.scalars(
                select(Customer).order_by(Customer.id).execution_options(yield_per=5)
            )
        ]
    assert read == phones
    assert [event.count for event in _decrypts(guard)] == [5, 5, 2]


def test_rows_the_application_let_go_of_are_not_opened(shop: Session, guard: pg.Guard) -> None:
    """The batch holds its values weakly: a row dropped before the first read is not
    revealed with the rows still held."""
    shop.add_all([Customer(user_id=f"customer-{n}", phone=f"1381234{n:04d}") for n in range(8)])
    shop.commit()
    shop.expunge_all()
    customers = shop.scalars(select(Customer).order_by(Customer.id)).all()
    kept = customers[2:4]
    del customers
    with pg.acting(**TESTING):
        assert [c.phone for c in kept] == ["13812340002", "13812340003"]
    (event,) = _decrypts(guard)
    assert event.count == 2


def test_a_value_replaced_before_the_first_read_is_not_opened(
    shop: Session, guard: pg.Guard
) -> None:
    """SQLAlchemy keeps a replaced value until the flush: the batch leaves it closed."""
    shop.add_all([Customer(user_id=f"customer-{n}", phone=f"1381234{n:04d}") for n in range(3)])
    shop.commit()
    shop.expunge_all()
    customers = shop.scalars(select(Customer).order_by(Customer.id)).all()
    customers[0].phone = "13912345670"
    customers[2].phone = None
    with pg.acting(**TESTING):
        assert customers[1].phone == "13812340001"
    (event,) = _decrypts(guard)
    assert event.count == 1


def test_a_row_copied_to_a_new_key_before_its_first_read_does_not_open_there(
    shop: Session, guard: pg.Guard
) -> None:
    """A loaded row made transient and added under a new key carries the old row's
    ciphertext: it does not open as the new row, alone or in its query's batch (the batch
    binds each value to its row's key at the read, not at the load)."""
    shop.add_all([Customer(user_id="customer-1", phone=CANARY_PHONE)] * 1)
    shop.add(Customer(user_id="customer-2", phone="13812340002"))
    shop.commit()
    shop.expunge_all()
    copied, other = shop.scalars(select(Customer).order_by(Customer.id)).all()
    shop.expunge(copied)
    make_transient(copied)
    copied.id = 77
    shop.add(copied)
    shop.flush()
    with pg.acting(**TESTING):
        assert other.phone == "13812340002"  # the batch fails on the copy; each opens alone
        with pytest.raises(pg.DecryptionError) as caught:
            _ = copied.phone
    assert CANARY_PHONE not in piiguard_frames_text(caught.value)
    assert [event.count for event in _decrypts(guard)] == [1]


def test_client_side_and_composite_keys(shop: Session, guard: pg.Guard) -> None:
    allow_test_reveals(guard)
    customer = Customer(user_id="customer-1", phone=CANARY_PHONE)
    shop.add(customer)
    shop.flush()
    shop.add(Address(id="addr-1", customer_id=customer.id, line="北京市朝阳区建国路88号"))
    shop.add_all([Line(order_id="o-1", number=n, receiver_phone=CANARY_PHONE) for n in (1, 2)])
    shop.commit()
    shop.expunge_all()
    with pg.acting(**TESTING):
        assert shop.get_one(Address, "addr-1").line == "北京市朝阳区建国路88号"
        lines = shop.scalars(select(Line).order_by(Line.number)).all()
        assert [line.receiver_phone for line in lines] == [CANARY_PHONE] * 2
    assert shop.get_one(Address, "addr-1").line_masked == "北京市朝阳区****"  # type: ignore[attr-defined]


def test_a_ciphertext_copied_to_another_row_or_column_does_not_open_there(
    shop: Session, guard: pg.Guard
) -> None:
    """An insider copying u1's ciphertext over u2's (or into another column) gets nothing;
    the other rows of the batch still open."""
    allow_test_reveals(guard)
    shop.add_all(
        [Customer(user_id=f"customer-{n}", phone=f"1391234567{n}") for n in range(3)]
        + [Customer(user_id="customer-9", phone=CANARY_PHONE, id_number=CANARY_ID)]
    )
    shop.commit()
    with _engine(shop).begin() as connection:
        connection.execute(
            text(
                "UPDATE customers SET phone = (SELECT phone FROM customers WHERE id = 4), "
                "id_number = (SELECT phone FROM customers WHERE id = 4) WHERE id = 2"
            )
        )
    shop.expunge_all()
    customers = shop.scalars(select(Customer).order_by(Customer.id)).all()
    with pg.acting(**TESTING):
        with pytest.raises(pg.DecryptionError) as caught:
            _ = customers[1].phone
        assert CANARY_PHONE not in piiguard_frames_text(caught.value)
        with pytest.raises(pg.DecryptionError):
            _ = customers[1].id_number
        assert [customers[n].phone for n in (0, 2)] == ["13912345670", "13912345672"]
        assert customers[3].phone == CANARY_PHONE


def test_lookup_finds_a_row_by_any_spelling_of_its_value(shop: Session, guard: pg.Guard) -> None:
    shop.add_all(
        [
            Customer(user_id="customer-1", phone="+8613812345678"),
            Customer(user_id="customer-2", phone="13912345678"),
        ]
    )
    shop.commit()
    for spelling in ("138 1234 5678", "13812345678", "+86-138-1234-5678"):
        (found,) = shop.scalars(select(Customer).where(pg_sa.lookup(Customer.phone, spelling)))
        assert found.user_id == "customer-1"
    with pytest.raises(pg.InvalidPII) as caught:
        pg_sa.lookup(Customer.phone, CANARY_ID)
    assert CANARY_ID not in piiguard_frames_text(caught.value)
    with pytest.raises(pg.InvalidArgument):
        pg_sa.lookup(Customer.id_number, CANARY_ID)  # not searchable
    with pytest.raises(pg.InvalidArgument):
        pg_sa.lookup(Customer.user_id, "customer-1")  # not encrypted


def test_an_update_reseals_the_value_and_its_companions(shop: Session, guard: pg.Guard) -> None:
    allow_test_reveals(guard)
    customer = Customer(user_id="customer-1", phone=CANARY_PHONE)
    shop.add(customer)
    shop.commit()
    before = _raw(shop)
    customer.phone = "13912345678"
    shop.commit()
    shop.expunge_all()
    (found,) = shop.scalars(select(Customer).where(pg_sa.lookup(Customer.phone, "13912345678")))
    assert found.phone_masked == "139****5678"  # type: ignore[attr-defined]
    with pg.acting(**TESTING):
        assert found.phone == "13912345678"
    assert (
        shop.scalars(select(Customer).where(pg_sa.lookup(Customer.phone, CANARY_PHONE))).all() == []
    )
    assert before != _raw(shop)
    found.phone = None
    shop.commit()
    assert shop.scalars(select(Customer.phone_masked)).all() == [None]  # type: ignore[attr-defined]


def test_erasing_the_subject_makes_its_values_unreadable(shop: Session, guard: pg.Guard) -> None:
    allow_test_reveals(guard)
    shop.add_all(
        [
            Customer(user_id="customer-1", phone=CANARY_PHONE),
            Customer(user_id="customer-2", phone="13912345678"),
        ]
    )
    shop.commit()
    guard.erase("customer-1")
    shop.expunge_all()
    first, second = shop.scalars(select(Customer).order_by(Customer.id)).all()
    with pg.acting(**TESTING):
        with pytest.raises(pg.KeyDestroyed):
            _ = first.phone
        assert second.phone == "13912345678"


def test_plain_values_never_reach_the_database_outside_the_orm_events(
    shop: Session, guard: pg.Guard
) -> None:
    """Core inserts and ORM bulk inserts skip the events: their plain values are refused,
    not stored in clear."""
    table = Base.metadata.tables["customers"]
    with pytest.raises(pg.InvalidArgument) as caught:
        shop.execute(insert(table).values(user_id="customer-1", phone=CANARY_PHONE))
    assert CANARY_PHONE not in str(caught.value)
    with pytest.raises(StatementError) as bound:  # compared with a plain value: the bind
        shop.execute(select(table).where(table.c.phone == CANARY_PHONE))
    assert isinstance(bound.value.orig, pg.InvalidArgument)
    assert CANARY_PHONE not in str(bound.value)
    shop.rollback()
    with pytest.raises(pg.InvalidArgument) as refused:  # refused before it is rendered
        shop.execute(insert(Customer), [{"user_id": "customer-1", "phone": CANARY_PHONE}])
    assert CANARY_PHONE not in str(refused.value)
    shop.rollback()
    assert CANARY_PHONE not in _raw(shop)


def test_core_seals_and_opens_rows(shop: Session, guard: pg.Guard) -> None:
    table = Base.metadata.tables["customers"]
    rows = [
        pg_sa.seal_row(table, {"id": n, "user_id": f"customer-{n}", "phone": f"1381234567{n}"})
        for n in range(1, 4)
    ]
    shop.execute(insert(table), rows)
    shop.commit()
    assert "13812345671" not in _raw(shop)
    read = [row._asdict() for row in shop.execute(select(table).order_by(table.c.id))]
    opened = pg_sa.open_rows(table, read, **TESTING)
    assert [row["phone"] for row in opened] == ["13812345671", "13812345672", "13812345673"]
    assert [row["phone_masked"] for row in opened] == ["138****5671", "138****5672", "138****5673"]
    assert len(_decrypts(guard)) == 1
    with pytest.raises(pg.InvalidArgument):
        pg_sa.seal_row(table, {"user_id": "customer-9", "phone": CANARY_PHONE})


def test_core_reads_an_erased_customers_value_as_none_and_opens_the_rest(
    shop: Session, guard: pg.Guard
) -> None:
    """An export over a table holding one erased customer goes on; an altered value still
    fails the whole call."""
    table = Base.metadata.tables["customers"]
    rows = [
        pg_sa.seal_row(table, {"id": n, "user_id": f"customer-{n}", "phone": f"1381234567{n}"})
        for n in range(1, 4)
    ]
    shop.execute(insert(table), rows)
    shop.commit()
    guard.erase("customer-2")
    read = [row._asdict() for row in shop.execute(select(table).order_by(table.c.id))]
    opened = pg_sa.open_rows(table, read, **TESTING)
    assert [row["phone"] for row in opened] == ["13812345671", None, "13812345673"]
    moved = [dict(row) for row in read]
    moved[0]["phone"], moved[2]["phone"] = moved[2]["phone"], moved[0]["phone"]
    with pytest.raises(pg.DecryptionError):
        pg_sa.open_rows(table, moved, **TESTING)


def test_a_flush_that_fails_leaves_no_value_in_its_frames(shop: Session, guard: pg.Guard) -> None:
    """A value that is not of the column's kind fails the flush with InvalidPII (the index
    needs a valid value), and nothing the error passes through in piiguard holds it."""
    shop.add(Customer(user_id="customer-1", phone=CANARY_ID))
    with pytest.raises(pg.InvalidPII) as caught:
        shop.commit()
    assert CANARY_ID not in piiguard_frames_text(caught.value)
    shop.rollback()
    assert shop.scalars(select(Customer)).all() == []


def test_a_stored_value_shows_nothing_in_reprs(shop: Session, guard: pg.Guard) -> None:
    shop.add(Customer(user_id="customer-1", phone=CANARY_PHONE))
    shop.commit()
    shop.expunge_all()
    customer = shop.scalars(select(Customer)).one()
    assert CANARY_PHONE not in repr(vars(customer))
    with pg.acting(**TESTING):
        allow_test_reveals(guard)
        _ = customer.phone
    assert CANARY_PHONE not in repr(customer.__dict__["phone"])
    import pickle  # an opened value pickles as its ciphertext alone (one stored-value class)

    assert CANARY_PHONE.encode() not in pickle.dumps(customer.__dict__["phone"])


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mobiles)
def test_any_mobile_round_trips_and_is_found(shop: Session, guard: pg.Guard, mobile: str) -> None:
    allow_test_reveals(guard)
    customer = Customer(user_id="customer-h", phone=mobile)
    shop.add(customer)
    shop.commit()
    shop.expunge_all()
    (found,) = shop.scalars(select(Customer).where(pg_sa.lookup(Customer.phone, f"+86 {mobile}")))
    with pg.acting(**TESTING):
        assert found.phone == mobile
    shop.delete(found)
    shop.commit()


def test_install_refuses_what_is_not_a_guard_or_a_base(guard: pg.Guard) -> None:
    with pytest.raises(pg.InvalidArgument):
        pg_sa.install("guard", Base)  # type: ignore[arg-type]
    with pytest.raises(pg.InvalidArgument):
        pg_sa.install(guard, object())
    pg_sa.install(guard, MetaData())  # Core: a MetaData of tables is enough
    with pytest.raises(pg.UnknownKind):
        pg_sa.Encrypted("shoe_size")
    with pytest.raises(pg.InvalidArgument):
        pg_sa.Encrypted("phone", subject="user id")


# -- found by the attack review of issue 13 ----------------------------------------------------


class Person(Base):
    __tablename__ = "people"
    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str] = mapped_column(String(40))
    __mapper_args__ = {"polymorphic_on": "type", "polymorphic_identity": "person"}  # noqa: RUF012


class Employee(Person):
    """Joined-table inheritance: the Encrypted column lives in the subclass's table."""

    __tablename__ = "employees"
    id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    phone: Mapped[str] = mapped_column(
        pg_sa.Encrypted("phone", subject="user_id", searchable=True, masked=True)
    )
    __mapper_args__ = {"polymorphic_identity": "employee"}  # noqa: RUF012


def test_joined_inheritance_seals_each_row_alone(shop: Session, guard: pg.Guard) -> None:
    """Found by the review: the seal's UPDATE named the base table's key, so every insert
    wrote its ciphertext over every row of the subclass's table."""
    phones = ["13812345671", "13812345672", "13812345673"]
    shop.add_all([Employee(user_id=f"customer-{n}", phone=p) for n, p in enumerate(phones)])
    shop.commit()
    shop.expunge_all()
    with pg.acting(**TESTING):
        assert [e.phone for e in shop.scalars(select(Employee).order_by(Employee.id))] == phones
    (found,) = shop.scalars(select(Employee).where(pg_sa.lookup(Employee.phone, phones[1])))
    assert found.user_id == "customer-1"


def test_merging_a_new_row_seals_it(shop: Session, guard: pg.Guard) -> None:
    shop.merge(Address(id="addr-9", customer_id=_customer(shop), line="上海市浦东新区世纪大道1号"))
    shop.commit()
    shop.expunge_all()
    with pg.acting(**TESTING):
        assert shop.get_one(Address, "addr-9").line == "上海市浦东新区世纪大道1号"


def _customer(session: Session) -> int:
    customer = Customer(user_id="customer-m", phone=CANARY_PHONE)
    session.add(customer)
    session.flush()
    return customer.id


def test_bulk_statements_with_plain_values_name_no_value(shop: Session, guard: pg.Guard) -> None:
    """Found by the review: SQLAlchemy printed a bulk statement's parameters, the plaintext
    among them, and piiguard's bind processor kept it in its frame."""
    for call in (
        lambda: shop.execute(insert(Customer), [{"user_id": "c", "phone": CANARY_PHONE}] * 2),
        lambda: shop.bulk_save_objects([Customer(user_id="c", phone=CANARY_PHONE)]),
        lambda: shop.execute(
            insert(Base.metadata.tables["customers"]).values(user_id="c", phone=CANARY_PHONE)
        ),
    ):
        with pytest.raises((pg.InvalidArgument, StatementError)) as caught:
            call()
        assert CANARY_PHONE not in str(caught.value)
        assert CANARY_PHONE not in piiguard_frames_text(caught.value)
        if caught.value.__cause__ is not None:
            assert CANARY_PHONE not in piiguard_frames_text(caught.value.__cause__)
        shop.rollback()
    assert CANARY_PHONE not in _raw(shop)


def test_a_key_that_does_not_read_back_as_written_is_refused(guard: pg.Guard) -> None:
    from sqlalchemy import CHAR, Column, Numeric, Table

    metadata = MetaData()
    for key_type in (CHAR(8), Numeric(10, 2)):
        table = Table(
            f"t_{len(metadata.tables)}",
            metadata,
            Column("id", key_type, primary_key=True),
            Column("phone", pg_sa.Encrypted("phone")),
        )
        pg_sa.install(guard, metadata)
        with pytest.raises(pg.InvalidArgument):
            pg_sa.seal_row(table, {"id": "ab", "phone": CANARY_PHONE})


def test_changing_a_subject_reseals_what_was_read_and_refuses_what_was_not(
    shop: Session, guard: pg.Guard
) -> None:
    """Found by the review: after a change of subject, erasing the new subject left the
    value readable (it stayed under the old subject's key)."""
    allow_test_reveals(guard)
    shop.add_all(
        [Customer(user_id="customer-1", phone=CANARY_PHONE), Customer(user_id="customer-2")]
    )
    shop.commit()
    shop.expunge_all()
    first = shop.scalars(select(Customer).where(Customer.user_id == "customer-1")).one()
    first.user_id = "customer-3"
    with pytest.raises(pg.InvalidArgument):
        shop.commit()  # never read, never assigned: refused
    shop.rollback()
    with pg.acting(**TESTING):
        assert first.phone == CANARY_PHONE
    first.user_id = "customer-3"
    shop.commit()  # read in this session: sealed again under customer-3
    guard.erase("customer-3")
    shop.expunge_all()
    again = shop.scalars(select(Customer).where(Customer.user_id == "customer-3")).one()
    with pg.acting(**TESTING), pytest.raises(pg.KeyDestroyed):
        _ = again.phone


def test_every_way_around_the_unit_of_work_is_refused_before_anything_is_written(
    shop: Session, guard: pg.Guard
) -> None:
    """Found by the second review of issue 13: named bind parameters, typed text() binds and
    SQL expressions put plaintext in the column or in SQLAlchemy's message, and a bulk
    UPDATE of the subject left the value under the old subject's key."""
    from sqlalchemy import bindparam, func, literal, update

    shop.add(Customer(user_id="customer-1", phone="13912345678"))
    shop.commit()
    table = Base.metadata.tables["customers"]
    attempts: list[Callable[[], object]] = [
        lambda: shop.execute(
            update(table).where(table.c.id == bindparam("b_id")).values(phone=bindparam("p")),
            [{"b_id": 1, "p": CANARY_PHONE}, {"b_id": 2, "p": CANARY_PHONE}],
        ),
        lambda: shop.execute(
            text("UPDATE customers SET phone = :p").bindparams(
                bindparam("p", type_=table.c.phone.type)
            ),
            {"p": CANARY_PHONE},
        ),
        lambda: shop.execute(update(table).values(phone=literal(CANARY_PHONE))),
        lambda: shop.execute(update(table).values(phone=func.lower(CANARY_PHONE))),
        lambda: shop.execute(update(table).values(phone=table.c.user_id)),
        lambda: shop.execute(
            insert(table).from_select(
                ["user_id", "phone"], select(table.c.user_id, table.c.user_id)
            )
        ),
        lambda: shop.execute(update(Customer).where(Customer.id == 1).values(user_id="u-new")),
        lambda: shop.execute(update(table).where(table.c.id == 1).values(id=22)),
    ]
    for attempt in attempts:
        with pytest.raises(pg.InvalidArgument) as refused:
            attempt()
        assert CANARY_PHONE not in str(refused.value)
        assert CANARY_PHONE not in piiguard_frames_text(refused.value)
        shop.rollback()
    assert CANARY_PHONE not in _raw(shop)
    assert shop.scalars(select(Customer.user_id)).all() == ["customer-1"]


def test_seal_row_needs_the_subject_and_keys_are_bound_as_the_database_gives_them_back(
    shop: Session, guard: pg.Guard
) -> None:
    """Found by the second review: a sealed row without its subject column was encrypted
    under no subject (an erasure missed it), and an integer key given as "07" never opened."""
    allow_test_reveals(guard)
    table = Base.metadata.tables["customers"]
    with pytest.raises(pg.InvalidArgument):
        pg_sa.seal_row(table, {"id": 5, "phone": CANARY_PHONE})
    shop.execute(
        insert(table), [pg_sa.seal_row(table, {"id": "07", "user_id": "u7", "phone": CANARY_PHONE})]
    )
    shop.add(Customer(id="08", user_id="u8", phone=CANARY_PHONE))
    shop.commit()
    shop.expunge_all()
    with pg.acting(**TESTING):
        assert [c.phone for c in shop.scalars(select(Customer).order_by(Customer.id))] == [
            CANARY_PHONE
        ] * 2


def test_a_bulk_update_by_key_cannot_move_a_value_to_another_subject(
    shop: Session, guard: pg.Guard
) -> None:
    """Found by the second review of issue 13: the value stayed under the old subject's key,
    so erasing the new subject missed it. The ORM's own flush (which seals again) passes."""
    from sqlalchemy import update

    allow_test_reveals(guard)
    shop.add_all([Customer(id=1, user_id="u1", phone=CANARY_PHONE), Customer(id=2, user_id="u2")])
    shop.commit()
    with pytest.raises(pg.InvalidArgument):
        shop.execute(update(Customer), [{"id": 1, "user_id": "u-new"}])
    shop.rollback()
    empty = shop.get_one(Customer, 2)
    empty.user_id = "u-other"  # no value to seal: the flush moves it
    shop.commit()
    assert shop.get_one(Customer, 2).user_id == "u-other"


def test_a_value_read_before_its_subject_was_erased_is_not_sealed_again(
    shop: Session, guard: pg.Guard
) -> None:
    """Found by the second review of issue 13: the plaintext kept from before the erasure
    was sealed under the new subject, bringing the erased value back."""
    allow_test_reveals(guard)
    shop.add(Customer(id=1, user_id="u1", phone=CANARY_PHONE))
    shop.commit()
    customer = shop.get_one(Customer, 1)
    with pg.acting(**TESTING):
        assert customer.phone == CANARY_PHONE
    guard.erase("u1")
    assert guard.keys.destroyed(customer.__dict__["phone"].text)
    customer.user_id = "u2"
    with pytest.raises(pg.InvalidArgument):
        shop.commit()
    shop.rollback()
    customer = shop.get_one(Customer, 1)
    customer.user_id, customer.phone = "u2", "13912345678"  # a new value: fine
    shop.commit()
    with pg.acting(**TESTING):
        assert shop.get_one(Customer, 1).phone == "13912345678"
    with pytest.raises(pg.InvalidArgument):
        guard.keys.destroyed("not a ciphertext!")
