"""guard.bind: piiguard's writes join the application's transaction, on a shared SQLite file
and on PostgreSQL, through a Session, a Connection or an Engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import piiguard as pg
import piiguard.integrations.sqlalchemy as pg_sa
from piiguard.keys import LocalKEK
from piiguard.testing import allow_test_reveals
from tests.backends import postgres_schema
from tests.helpers import CANARY_ID, CANARY_PHONE

TESTING = {"actor": "tester", "purpose": "testing"}
app_metadata = MetaData()
customers = Table(
    "shop_customers",
    app_metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", String(40), nullable=False),
)


class Shop:
    """A Guard and the application's engine on one database."""

    def __init__(self, guard: pg.Guard, engine: Engine) -> None:
        self.guard = guard
        self.engine = engine

    def customer_count(self) -> int:
        with self.engine.connect() as connection:
            return len(connection.execute(select(customers.c.id)).all())


def _prepare(guard: pg.Guard) -> None:
    allow_test_reveals(guard)
    guard.consent.register(pg.Purpose("marketing_sms", kinds={"phone"}))
    guard.consent.publish_notice("v1", purposes=["marketing_sms"])
    guard.retention.policy(pg.RetentionPolicy("orders", keep=timedelta(days=365)))
    guard.encrypt("warm", context={"t": "warm"})  # the store's first key epoch, made outside


@pytest.fixture(params=["sqlite", "postgresql"])
def shop(request: pytest.FixtureRequest, tmp_path: Path, kek: LocalKEK) -> Iterator[Shop]:
    """piiguard and the application on the same database: one SQLite file, or one
    PostgreSQL database (piiguard in its own schema)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shop.db'}"
        with pg.Guard.open(url, kek=kek) as guard:
            engine = create_engine(url)
            app_metadata.create_all(engine)
            _prepare(guard)
            yield Shop(guard, engine)
            engine.dispose()
        return
    with postgres_schema() as (url, schema), pg.Guard.open(url, kek=kek, schema=schema) as guard:
        engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
        app_metadata.create_all(engine)
        _prepare(guard)
        yield Shop(guard, engine)
        engine.dispose()


def _actions(guard: pg.Guard, action: str) -> int:
    return sum(1 for _ in guard.audit.events(action=action))


def _customer_with_consent(shop: Shop, session: Session, user: str) -> str:
    session.execute(customers.insert().values(user_id=user))
    shop.guard.consent.grant(user, "marketing_sms", notice="v1")
    shop.guard.retention.track("orders", f"order-{user}", subject=user)
    return shop.guard.vault.tokenize(CANARY_PHONE, kind="phone", subject=user)


def test_a_session_commits_the_customer_and_the_grant_together(shop: Shop) -> None:
    guard = shop.guard
    with Session(shop.engine) as session, guard.bind(session):
        token = _customer_with_consent(shop, session, "u-commit")
        # the application sees its own uncommitted writes through piiguard ...
        assert guard.consent.check("u-commit", "marketing_sms")
        if _on_postgres(shop):  # a reveal is recorded beside the transaction at once ...
            assert guard.vault.detokenize(token, **TESTING) == "+86" + CANARY_PHONE
        else:  # ... which SQLite's one writer cannot do while the application holds the file
            with pytest.raises(pg.EventNotRecorded, match="holds the SQLite file"):
                guard.vault.detokenize(token, **TESTING)
        session.commit()
    assert shop.customer_count() == 1
    assert guard.consent.check("u-commit", "marketing_sms")
    assert guard.vault.detokenize(token, **TESTING) == "+86" + CANARY_PHONE
    assert guard.retention.is_frozen("orders", "order-u-commit") is False
    assert _actions(guard, "consent_grant") == 1  # chained right after the commit
    assert guard.audit.verify().ok


def test_a_rollback_takes_the_grant_tracking_and_token_with_it(shop: Shop) -> None:
    guard = shop.guard
    with Session(shop.engine) as session, guard.bind(session):
        token = _customer_with_consent(shop, session, "u-back")
        assert guard.consent.check("u-back", "marketing_sms")  # seen inside ...
        session.rollback()
    assert shop.customer_count() == 0
    assert not guard.consent.check("u-back", "marketing_sms")  # ... gone with the rollback
    assert guard.consent.history("u-back") == []
    with pytest.raises(pg.TokenNotFound):
        guard.vault.detokenize(token, **TESTING)
    assert _actions(guard, "consent_grant") == 0  # its event went with it
    assert guard.audit.verify().ok
    # and nothing was cached from inside the transaction: a second look agrees
    assert not guard.consent.check("u-back", "marketing_sms")


def test_an_exception_in_an_engine_block_rolls_everything_back(shop: Shop) -> None:
    guard = shop.guard

    def fail_midway() -> None:
        with guard.bind(shop.engine) as connection:
            connection.execute(customers.insert().values(user_id="u-raise"))
            guard.consent.grant("u-raise", "marketing_sms", notice="v1")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_midway()
    assert shop.customer_count() == 0
    assert not guard.consent.check("u-raise", "marketing_sms")
    with guard.bind(shop.engine) as connection:
        connection.execute(customers.insert().values(user_id="u-ok"))
        guard.consent.grant("u-ok", "marketing_sms", notice="v1")
    assert shop.customer_count() == 1
    assert guard.consent.check("u-ok", "marketing_sms")
    assert _actions(guard, "consent_grant") == 1


def test_a_connection_the_application_commits_is_chained_at_the_next_read(shop: Shop) -> None:
    guard = shop.guard
    with shop.engine.connect() as connection:
        with guard.bind(connection):
            connection.execute(customers.insert().values(user_id="u-conn"))
            guard.consent.grant("u-conn", "marketing_sms", notice="v1")
        connection.commit()
    assert guard.consent.check("u-conn", "marketing_sms")
    assert _actions(guard, "consent_grant") == 1
    assert guard.audit.verify().ok


def test_events_committed_but_not_chained_survive_a_crash(shop: Shop, kek: LocalKEK) -> None:
    """The process ends between the application's commit and the chaining: the events wait
    in the store, and the next Guard chains them."""
    guard = shop.guard
    with shop.engine.connect() as connection:
        with guard.bind(connection):
            guard.consent.grant("u-crash", "marketing_sms", notice="v1")
        connection.commit()
    outbox = guard.store.tables.audit_outbox
    with guard.store.engine.connect() as connection:
        assert len(connection.execute(select(outbox.c.id)).all()) == 1
    url = guard.store.engine.url.render_as_string(hide_password=False)
    schema = guard.store.tables.metadata.schema
    with pg.Guard.open(url, kek=kek, schema=schema) as second:
        assert _actions(second, "consent_grant") == 1
        assert second.audit.verify().ok
    with guard.store.engine.connect() as connection:
        assert connection.execute(select(outbox.c.id)).all() == []


def test_a_row_put_in_the_outbox_by_hand_is_never_chained(shop: Shop) -> None:
    guard = shop.guard
    forged = (
        '{"action":"consent_grant","actor":"attacker","at_us":0,"count":1,"detail":"{}",'
        '"kind":null,"purpose":"marketing_sms","result":"ok","subjects":"[]"}'
    )
    with guard.store.transaction() as connection:
        connection.execute(
            guard.store.tables.audit_outbox.insert().values(row=forged, mac=bytes(32))
        )
    assert guard.audit.drain() == 0
    assert _actions(guard, "consent_grant") == 0
    refused = list(guard.audit.events(action="audit_outbox_refused"))
    assert [event.count for event in refused] == [1]
    assert guard.audit.verify().ok


def test_a_sealed_outbox_row_put_back_after_it_was_chained_is_never_chained_again(
    shop: Shop,
) -> None:
    """An insider who copied an outbox row (its seal holds) before it was chained, and puts
    it back afterwards, or twice at once, gets no second event: each row carries a one-time
    name the chaining remembers."""
    guard = shop.guard
    outbox = guard.store.tables.audit_outbox
    with shop.engine.connect() as connection:
        with guard.bind(connection):
            guard.consent.grant("u-replay", "marketing_sms", notice="v1")
        connection.commit()
    with guard.store.engine.connect() as connection:
        (saved,) = connection.execute(select(outbox.c.row, outbox.c.mac)).all()
    assert guard.audit.drain() == 1
    assert _actions(guard, "consent_grant") == 1
    with guard.store.transaction() as connection:
        for _ in range(2):
            connection.execute(outbox.insert().values(row=saved.row, mac=saved.mac))
    assert guard.audit.drain() == 0
    assert _actions(guard, "consent_grant") == 1
    refused = list(guard.audit.events(action="audit_outbox_refused"))
    assert [event.count for event in refused] == [2]
    assert guard.audit.verify().ok


def test_an_outbox_row_written_before_schema_12_is_still_chained(shop: Shop) -> None:
    """A row an earlier piiguard sealed (no one-time name) waiting at the upgrade."""
    from piiguard.audit.chain import outbox_seal

    guard = shop.guard
    body = (
        '{"action":"consent_grant","actor":"svc:old","at_us":1,"count":1,"detail":"{}",'
        '"kind":null,"purpose":"marketing_sms","result":"ok","subjects":"[]"}'
    )
    seal = outbox_seal(guard.audit._chain_mac(), body.encode())
    with guard.store.transaction() as connection:
        connection.execute(guard.store.tables.audit_outbox.insert().values(row=body, mac=seal))
    assert guard.audit.drain() == 1
    assert [event.actor for event in guard.audit.events(action="consent_grant")] == ["svc:old"]
    with guard.store.transaction() as connection:  # put back: refused like any copy
        connection.execute(guard.store.tables.audit_outbox.insert().values(row=body, mac=seal))
    assert guard.audit.drain() == 0
    assert [event.actor for event in guard.audit.events(action="consent_grant")] == ["svc:old"]
    assert guard.audit.verify().ok


def test_outbox_rows_hold_no_personal_information(shop: Shop) -> None:
    guard = shop.guard
    with Session(shop.engine) as session, guard.bind(session):
        guard.consent.grant(CANARY_ID, "marketing_sms", notice="v1", evidence={"ip": CANARY_PHONE})
        guard.retention.track("orders", "o-canary", subject=CANARY_ID)
        rows = session.execute(select(guard.store.tables.audit_outbox.c.row)).scalars().all()
        assert rows
        assert not any(CANARY_ID in row or CANARY_PHONE in row for row in rows)
        session.rollback()


def test_bind_refuses_another_database_and_a_second_binding(shop: Shop, tmp_path: Path) -> None:
    other = create_engine(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    before = shop.guard.keys.counts()
    with pytest.raises(pg.InvalidArgument, match="store's own database"), shop.guard.bind(other):
        pass  # pragma: no cover - refused before the block
    assert shop.guard.keys.counts() == before  # refused before it made any key
    with (
        pytest.raises(pg.InvalidArgument, match="already bound"),
        shop.guard.bind(shop.engine),
        shop.guard.bind(shop.engine),
    ):
        pass  # pragma: no cover
    with (
        pytest.raises(pg.InvalidArgument, match="Session, Connection or Engine"),
        shop.guard.bind("sqlite:///x.db"),  # type: ignore[arg-type]
    ):
        pass  # pragma: no cover
    other.dispose()


def test_another_transaction_never_sees_an_uncommitted_grant(kek: LocalKEK) -> None:
    """PostgreSQL: another thread's check runs beside the open transaction and does not see
    (or cache) its grant. (SQLite has one writer: its side is the StoreBusy test below.)"""
    with postgres_schema() as (url, schema), pg.Guard.open(url, kek=kek, schema=schema) as guard:
        _prepare(guard)
        engine = create_engine(url)
        seen: list[bool] = []
        with Session(engine) as session, guard.bind(session):
            guard.consent.grant("u-iso", "marketing_sms", notice="v1")
            assert guard.consent.check("u-iso", "marketing_sms")
            worker = threading.Thread(
                target=lambda: seen.append(guard.consent.check("u-iso", "marketing_sms"))
            )
            worker.start()
            worker.join()
            session.commit()
        assert seen == [False]
        assert guard.consent.check("u-iso", "marketing_sms")
        engine.dispose()


def test_sqlite_writes_beside_a_holding_transaction_fail_fast(
    tmp_path: Path, kek: LocalKEK
) -> None:
    """A reveal's record cannot wait for the application's own lock: StoreBusy at once,
    never a hang; keys for new subjects are made inside the transaction instead."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    with pg.Guard.open(url, kek=kek) as guard:
        _prepare(guard)
        engine = create_engine(url)
        app_metadata.create_all(engine)
        sealed = guard.encrypt(CANARY_PHONE, context={"t": "c"}, subject="u-before")
        with Session(engine) as session, guard.bind(session):
            session.execute(customers.insert().values(user_id="u-lock"))
            started = time.monotonic()
            with pytest.raises(pg.EventNotRecorded, match="own transaction holds the SQLite file"):
                guard.decrypt(sealed, context={"t": "c"}, **TESTING)
            assert time.monotonic() - started < 2
            fresh = guard.encrypt(CANARY_PHONE, context={"t": "n"}, subject="u-new")
            guard.consent.grant("u-new", "marketing_sms", notice="v1", evidence={"ip": "x"})
            session.commit()
        assert guard.decrypt(fresh, context={"t": "n"}, **TESTING) == CANARY_PHONE
        assert guard.consent.check("u-new", "marketing_sms")
        with Session(engine) as session, guard.bind(session):
            session.execute(customers.insert().values(user_id="u-gone"))
            lost = guard.encrypt(CANARY_PHONE, context={"t": "g"}, subject="u-gone")
            session.rollback()
        with pytest.raises(pg.DecryptionError):  # its key went with the row that held it
            guard.decrypt(lost, context={"t": "g"}, **TESTING)
        engine.dispose()


def test_on_postgres_reveals_inside_a_bound_transaction_are_recorded_at_once(
    tmp_path: Path, kek: LocalKEK
) -> None:
    with postgres_schema() as (url, schema), pg.Guard.open(url, kek=kek, schema=schema) as guard:
        _prepare(guard)
        engine = create_engine(url)
        sealed = guard.encrypt(CANARY_PHONE, context={"t": "c"}, subject="u-pg")
        with Session(engine) as session, guard.bind(session):
            guard.consent.grant("u-pg", "marketing_sms", notice="v1")
            assert guard.decrypt(sealed, context={"t": "c"}, **TESTING) == CANARY_PHONE
            session.rollback()  # the grant goes; the reveal's record stays
        assert _actions(guard, "decrypt") == 1
        assert _actions(guard, "consent_grant") == 0
        engine.dispose()


def _on_postgres(shop: Shop) -> bool:
    return shop.engine.dialect.name == "postgresql"


def test_the_store_url_of_the_shop_is_the_one_bound(shop: Shop) -> None:
    """A sanity check of the fixture: piiguard's tables are reachable from the app's side."""
    with shop.engine.connect() as connection:
        table = shop.guard.store.tables.consent_events
        assert connection.execute(select(table.c.subject).limit(1)).all() == []
        assert connection.execute(text("SELECT 1")).scalar() == 1


class OrmBase(DeclarativeBase):
    pass


class Member(OrmBase):
    __tablename__ = "shop_members"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str | None] = mapped_column(
        pg_sa.Encrypted("phone", subject="user_id", searchable=True, masked=True)
    )


def test_an_orm_customer_and_its_consent_commit_together(shop: Shop) -> None:
    """The Issue's case: a new customer (encrypted phone, server-side key) and their grant
    and tracking in one transaction, on the store's own SQLite file or PostgreSQL database;
    a rollback leaves neither, a commit both."""
    guard = shop.guard
    OrmBase.metadata.create_all(shop.engine)
    pg_sa.install(guard, OrmBase)
    with Session(shop.engine) as session, guard.bind(session):
        session.add(Member(user_id="m-back", phone=CANARY_PHONE))
        session.flush()
        guard.consent.grant("m-back", "marketing_sms", notice="v1")
        session.rollback()
    with Session(shop.engine) as session, guard.bind(session):
        member = Member(user_id="m-1", phone=CANARY_PHONE)
        session.add(member)
        session.flush()
        guard.consent.grant("m-1", "marketing_sms", notice="v1")
        guard.retention.track("orders", "order-m-1", subject="m-1")
        session.commit()
    assert not guard.consent.check("m-back", "marketing_sms")
    assert guard.consent.check("m-1", "marketing_sms")
    with Session(shop.engine) as session, pg.acting(**TESTING):
        (found,) = session.scalars(select(Member).where(pg_sa.lookup(Member.phone, CANARY_PHONE)))
        assert found.user_id == "m-1"
        assert found.phone == CANARY_PHONE
    assert _actions(guard, "consent_grant") == 1
    assert guard.audit.verify().ok


# -- found by the attack review of guard.bind ----------------------------------------------------


def _sqlite_shop(tmp_path: Path, kek: LocalKEK) -> tuple[pg.Guard, Engine]:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    guard = pg.Guard.open(url, kek=kek)
    _prepare(guard)
    engine = create_engine(url)
    app_metadata.create_all(engine)
    return guard, engine


def test_a_key_made_in_a_savepoint_that_rolled_back_is_never_used_again(
    tmp_path: Path, kek: LocalKEK
) -> None:
    """SQLite: the key a new customer needed was made inside a savepoint; the savepoint
    rolls back (its row with it); what is sealed afterwards must still open after the
    commit."""
    guard, engine = _sqlite_shop(tmp_path, kek)
    with engine.connect() as connection, guard.bind(connection):
        connection.execute(customers.insert().values(user_id="u-sp"))
        savepoint = connection.begin_nested()
        guard.encrypt(CANARY_PHONE, context={"t": "lost"}, subject="u-sp")
        savepoint.rollback()
        kept = guard.encrypt(CANARY_PHONE, context={"t": "kept"}, subject="u-sp")
        connection.commit()
    assert guard.decrypt(kept, context={"t": "kept"}, **TESTING) == CANARY_PHONE
    guard.close()
    engine.dispose()


def test_a_session_closed_inside_the_block_takes_its_keys_with_it(
    tmp_path: Path, kek: LocalKEK
) -> None:
    guard, engine = _sqlite_shop(tmp_path, kek)
    with Session(engine) as session, guard.bind(session):
        session.execute(customers.insert().values(user_id="u-close"))
        guard.encrypt(CANARY_PHONE, context={"t": "gone"}, subject="u-close")
        session.close()
        session.execute(customers.insert().values(user_id="u-close"))
        kept = guard.encrypt(CANARY_PHONE, context={"t": "kept"}, subject="u-close")
        session.commit()
    assert guard.decrypt(kept, context={"t": "kept"}, **TESTING) == CANARY_PHONE
    guard.close()
    engine.dispose()


def test_a_pooled_connection_bound_again_still_hears_its_rollback(
    tmp_path: Path, kek: LocalKEK
) -> None:
    """Two requests on the same pooled connection: the second's rollback reaches its
    binding too (nothing is kept in the pooled connection's info)."""
    guard, engine = _sqlite_shop(tmp_path, kek)
    for attempt in range(2):
        with engine.connect() as connection, guard.bind(connection):
            connection.execute(customers.insert().values(user_id=f"u-pool-{attempt}"))
            guard.encrypt(CANARY_PHONE, context={"t": "x"}, subject=f"u-pool-{attempt}")
            connection.rollback()
            kept = guard.encrypt(CANARY_PHONE, context={"t": "y"}, subject=f"u-pool-{attempt}")
            connection.execute(customers.insert().values(user_id=f"u-pool-{attempt}"))
            connection.commit()
        assert guard.decrypt(kept, context={"t": "y"}, **TESTING) == CANARY_PHONE
    guard.close()
    engine.dispose()


def test_operations_that_never_join_keep_their_events_through_a_rollback(shop: Shop) -> None:
    """An erasure commits on its own: its audit event too, whatever the application's
    transaction then does."""
    guard = shop.guard
    guard.encrypt(CANARY_PHONE, context={"t": "e"}, subject="u-erase")
    with Session(shop.engine) as session, guard.bind(session):
        guard.erase("u-erase")
        session.rollback()
    assert _actions(guard, "erase") == 1


def test_erasure_inside_a_transaction_that_has_written_is_refused(shop: Shop) -> None:
    """It would miss the transaction's own rows, or (PostgreSQL) wait for ever on its
    locks."""
    guard = shop.guard
    with Session(shop.engine) as session, guard.bind(session):
        guard.retention.track("orders", "order-u-x", subject="u-x")
        started = time.monotonic()
        with pytest.raises(pg.InvalidArgument, match="commit first"):
            guard.erase("u-x")
        with pytest.raises(pg.InvalidArgument, match="commit first"):
            guard.shred("u-x")
        assert time.monotonic() - started < 2
        session.rollback()


def test_a_savepoint_rolled_back_in_a_session_keeps_what_was_written_before_it(
    shop: Shop,
) -> None:
    guard = shop.guard
    with Session(shop.engine) as session, guard.bind(session):
        guard.consent.grant("u-nested", "marketing_sms", notice="v1")
        nested = session.begin_nested()
        guard.consent.withdraw("u-nested", "marketing_sms")
        nested.rollback()
        assert guard.consent.check("u-nested", "marketing_sms")
        session.commit()
    assert guard.consent.check("u-nested", "marketing_sms")
    assert _actions(guard, "consent_grant") == 1
    assert _actions(guard, "consent_withdraw") == 0


def test_bind_refuses_autocommit_an_unbound_session_and_changes_nothing(shop: Shop) -> None:
    guard = shop.guard
    before = guard.keys.counts()
    with (
        pytest.raises(pg.InvalidArgument, match="Session, Connection or Engine"),
        guard.bind("x"),  # type: ignore[arg-type]
    ):
        pass  # pragma: no cover
    assert guard.keys.counts() == before
    with pytest.raises(pg.InvalidArgument, match="bound to an engine"), guard.bind(Session()):
        pass  # pragma: no cover
    autocommit = shop.engine.execution_options(isolation_level="AUTOCOMMIT")
    with (
        autocommit.connect() as connection,
        pytest.raises(pg.InvalidArgument, match="AUTOCOMMIT"),
        guard.bind(connection),
    ):
        pass  # pragma: no cover
    with (
        Session(shop.engine) as session,
        pytest.raises(pg.InvalidArgument, match="on_commit is for a Connection"),
        guard.bind(session, on_commit=lambda callback: None),
    ):
        pass  # pragma: no cover
    assert guard.keys.counts() == before


def test_postgres_bind_refuses_a_connection_that_names_other_piiguard_tables(
    kek: LocalKEK,
) -> None:
    """A store whose schema comes from its URL's search path names its tables unqualified:
    an application connection with another search path would write them elsewhere."""
    with postgres_schema() as (url, schema), postgres_schema() as (_, elsewhere):
        admin = create_engine(url)
        with admin.begin() as connection:
            for name in (schema, elsewhere):
                connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{name}"'))
        admin.dispose()
        store_url = f"{url}?options=-csearch_path%3D{schema}"
        with pg.Guard.open(store_url, kek=kek) as guard:
            other = create_engine(url, connect_args={"options": f"-csearch_path={elsewhere}"})
            with pytest.raises(pg.InvalidArgument, match="own database"), guard.bind(other):
                pass  # pragma: no cover
            same = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
            with guard.bind(same):
                pass
            other.dispose()
            same.dispose()


def test_an_audit_read_never_waits_on_a_writer_to_chain_the_outbox(
    tmp_path: Path, kek: LocalKEK
) -> None:
    """Events committed by a bound Connection wait to be chained; a read while another
    connection holds the SQLite file returns at once (and chains them later)."""
    guard, engine = _sqlite_shop(tmp_path, kek)
    with engine.connect() as connection:
        with guard.bind(connection):
            guard.consent.grant("u-read", "marketing_sms", notice="v1")
        connection.commit()
    with engine.connect() as holder:
        holder.execute(customers.insert().values(user_id="u-holding"))  # holds the file
        started = time.monotonic()
        list(guard.audit.events(action="consent_grant"))
        assert time.monotonic() - started < 2
        holder.rollback()
    assert _actions(guard, "consent_grant") == 1
    guard.close()
    engine.dispose()


def test_roots_made_for_a_binding_link_nothing_until_an_artefact_is_made_under_them(
    shop: Shop, kek: LocalKEK
) -> None:
    """guard.bind makes the store-wide roots its writes may need, ahead of the application's
    transaction: an erasure receipt counts them as linking only once a blind index or token
    was made. A bound transaction that made one and rolled back leaves the mark (the index
    may have been handed on: a receipt may overstate, never understate)."""
    guard = shop.guard
    with Session(shop.engine) as session, guard.bind(session):
        session.execute(customers.insert().values(user_id="u-link-1"))
        session.commit()
    assert guard.erase("u-link-1").linking == ()
    with Session(shop.engine) as session, guard.bind(session):
        session.execute(customers.insert().values(user_id="u-link-2"))
        guard.blind_index(CANARY_PHONE, field="shop_customers.phone", kind="phone")
        session.rollback()
    assert guard.erase("u-link-2").linking == ("index",)
    guard.tokens.token(CANARY_PHONE, kind="phone")
    with Session(shop.engine) as session, guard.bind(session):
        session.execute(customers.insert().values(user_id="u-link-3"))
        guard.blind_index(CANARY_PHONE, field="shop_customers.phone", kind="phone")
        session.commit()
    assert guard.erase("u-link-3").linking == ("token", "index")
    url = str(guard.store.engine.url.render_as_string(hide_password=False))
    schema = guard.store.tables.meta.schema
    with pg.Guard.open(url, kek=kek, schema=schema) as second:  # what the store says
        assert second.erase("u-link-4").linking == ("token", "index")


def test_binding_after_the_application_wrote_reads_its_keys_or_refuses_at_once(
    shop: Shop, kek: LocalKEK
) -> None:
    """bind makes the keys its writes need before it joins. Made already, they are read,
    even while the application's SQLite transaction holds the file; not made yet on SQLite,
    it cannot make them beside that transaction and says so at once (no wait on the lock);
    on PostgreSQL it makes them beside it."""
    guard = shop.guard
    url = str(guard.store.engine.url.render_as_string(hide_password=False))
    schema = guard.store.tables.meta.schema
    with shop.engine.connect() as connection:
        connection.execute(customers.insert().values(user_id="u-first"))
        if _on_postgres(shop):
            with guard.bind(connection):
                guard.consent.grant("u-first", "marketing_sms", notice="v1")
        else:
            with (
                pytest.raises(pg.StoreBusy, match="bind once before") as busy,
                guard.bind(connection),
            ):
                pass  # pragma: no cover - refused before the block
            assert "guard.bind" not in str(busy.value).split("bind once")[0]
        connection.commit()
    with Session(shop.engine) as session, guard.bind(session):  # the keys, made outside
        session.commit()
    with pg.Guard.open(url, kek=kek, schema=schema) as second, shop.engine.connect() as app:
        app.execute(customers.insert().values(user_id="u-second"))  # holds a SQLite file
        with second.bind(app):  # a fresh Guard reads the keys made: no write, no wait
            second.consent.grant("u-second", "marketing_sms", notice="v1")
        app.commit()
        assert second.consent.check("u-second", "marketing_sms")


def test_a_token_made_in_a_savepoint_that_rolled_back_still_links(
    shop: Shop, kek: LocalKEK
) -> None:
    """Found by a review: on SQLite the mark went with the savepoint while the token was
    committed, and no receipt listed tokens again. The mark is owed, counted and written
    once piiguard's own transaction can run; a second Guard sees it."""
    guard = shop.guard
    with Session(shop.engine) as session, guard.bind(session):
        session.commit()  # the roots, made ahead of use
    with Session(shop.engine) as session, guard.bind(session):
        session.execute(customers.insert().values(user_id="u-sp"))  # holds a SQLite file
        savepoint = session.begin_nested()
        token = guard.tokens.token(CANARY_PHONE, kind="phone")
        savepoint.rollback()
        session.execute(customers.insert().values(user_id=token))
        session.commit()
    assert guard.erase("u-sp").linking == ("token",)
    url = str(guard.store.engine.url.render_as_string(hide_password=False))
    schema = guard.store.tables.meta.schema
    with pg.Guard.open(url, kek=kek, schema=schema) as second:
        assert second.erase("u-sp-2").linking == ("token",)
