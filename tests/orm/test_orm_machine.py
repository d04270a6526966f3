"""A hypothesis state machine drives Encrypted columns through adds, updates, subject
changes, erasures, lookups and reads against a plain model of what each row should say."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import String, create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import piiguard as pg
import piiguard.integrations.sqlalchemy as pg_sa
from piiguard.keys import LocalKEK
from piiguard.testing import allow_test_reveals
from tests.strategies import mobiles

SUBJECTS = ("s1", "s2", "s3")


class MachineBase(DeclarativeBase):
    pass


class Member(MachineBase):
    __tablename__ = "members"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(20))
    phone: Mapped[str | None] = mapped_column(
        pg_sa.Encrypted("phone", subject="user_id", searchable=True, masked=True)
    )


class OrmMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.home = Path(tempfile.mkdtemp())
        self.guard = pg.Guard.open(
            f"sqlite:///{self.home / 'piiguard.db'}",
            kek=LocalKEK.generate(self.home / "kek.key"),
            key_epoch=None,
        )
        allow_test_reveals(self.guard)
        pg_sa.install(self.guard, MachineBase)
        self.engine = create_engine(f"sqlite:///{self.home / 'shop.db'}")
        MachineBase.metadata.create_all(self.engine)
        # the model: row id -> (subject, phone or None); the rows whose value an erasure
        # destroyed (a value written afterwards gets a new key and opens again)
        self.rows: dict[int, tuple[str, str | None]] = {}
        self.dead: set[int] = set()

    def teardown(self) -> None:
        self.engine.dispose()
        self.guard.close()

    @rule(subject=st.sampled_from(SUBJECTS), phone=st.none() | mobiles)
    def add(self, subject: str, phone: str | None) -> None:
        with Session(self.engine) as session:
            member = Member(user_id=subject, phone=phone)
            session.add(member)
            session.commit()
            self.rows[member.id] = (subject, phone)

    @precondition(lambda self: self.rows)
    @rule(data=st.data(), phone=st.none() | mobiles)
    def update(self, data: st.DataObject, phone: str | None) -> None:
        row_id = data.draw(st.sampled_from(sorted(self.rows)))
        subject, _ = self.rows[row_id]
        with Session(self.engine) as session:
            session.get_one(Member, row_id).phone = phone
            session.commit()
        self.rows[row_id] = (subject, phone)
        self.dead.discard(row_id)

    @precondition(lambda self: self.rows)
    @rule(data=st.data(), subject=st.sampled_from(SUBJECTS))
    def move(self, data: st.DataObject, subject: str) -> None:
        """A row changes hands: read first (re-sealed under the new subject)."""
        row_id = data.draw(st.sampled_from(sorted(self.rows)))
        _, phone = self.rows[row_id]
        if row_id in self.dead:
            return  # its value no longer opens: nothing to carry over
        with Session(self.engine) as session, pg.acting(actor="tester", purpose="testing"):
            member = session.get_one(Member, row_id)
            _ = member.phone
            member.user_id = subject
            session.commit()
        self.rows[row_id] = (subject, phone)

    @rule(subject=st.sampled_from(SUBJECTS))
    def erase(self, subject: str) -> None:
        self.guard.erase(subject)
        self.dead |= {i for i, (s, p) in self.rows.items() if s == subject and p is not None}

    @precondition(lambda self: self.rows)
    @rule(data=st.data())
    def lookup(self, data: st.DataObject) -> None:
        phones = sorted({p for _, p in self.rows.values() if p is not None})
        if not phones:
            return
        phone = data.draw(st.sampled_from(phones))
        with Session(self.engine) as session:
            found = session.scalars(
                select(Member.id).where(pg_sa.lookup(Member.phone, f"+86 {phone}"))
            ).all()
        assert set(found) == {i for i, (_, p) in self.rows.items() if p == phone}

    @invariant()
    def every_row_reads_as_the_model_says(self) -> None:
        with Session(self.engine) as session, pg.acting(actor="tester", purpose="testing"):
            for member in session.scalars(select(Member)).all():
                subject, phone = self.rows[member.id]
                assert member.user_id == subject
                if phone is None:
                    assert member.phone is None
                elif member.id not in self.dead:
                    assert member.phone == phone
                else:
                    try:
                        _ = member.phone
                    except pg.KeyDestroyed:
                        continue
                    raise AssertionError("an erased subject's value still opens")

    @invariant()
    def no_phone_is_stored_in_clear(self) -> None:
        with self.engine.connect() as connection:
            raw: Any = repr(connection.execute(text("SELECT * FROM members")).all())
        for _, phone in self.rows.values():
            if phone is not None:
                assert phone not in raw


OrmMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=12, deadline=None)
TestOrmMachine = OrmMachine.TestCase
