"""guard.bind against a plain model: consent and tracking written in application transactions
that commit or roll back, checked inside and outside the transaction, and the audit log's
consent events counted against what committed."""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import piiguard as pg
from piiguard.keys import LocalKEK

SUBJECTS = st.sampled_from(["s1", "s2", "s3"])


class BindMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._directory = tempfile.TemporaryDirectory(prefix="piiguard-bind-")
        base = Path(self._directory.name)
        url = f"sqlite:///{base / 'shop.db'}"
        self.guard = pg.Guard.open(url, kek=LocalKEK.generate(base / "kek.key"))
        self.guard.consent.register(pg.Purpose("news", kinds={"email"}))
        self.guard.consent.publish_notice("v1", purposes=["news"])
        self.guard.retention.policy(pg.RetentionPolicy("orders", keep=timedelta(days=30)))
        self.engine = create_engine(url)
        self.open: ExitStack | None = None
        self.session: Session | None = None
        # the model: what holds once committed, and what the open transaction changed
        self.granted: dict[str, bool] = {}
        self.pending: dict[str, bool] = {}
        self.tracked: set[str] = set()
        self.pending_tracked: set[str] = set()
        self.events = 0
        self.pending_events = 0

    def teardown(self) -> None:
        if self.open is not None:
            self.open.close()
        self.guard.close()
        self.engine.dispose()
        self._directory.cleanup()

    @precondition(lambda self: self.open is None)
    @rule()
    def begin(self) -> None:
        self.open = ExitStack()
        self.session = self.open.enter_context(Session(self.engine))
        self.open.enter_context(self.guard.bind(self.session))

    @rule(subject=SUBJECTS, give=st.booleans())
    def change(self, subject: str, give: bool) -> None:
        if give:
            self.guard.consent.grant(subject, "news", notice="v1")
        else:
            self.guard.consent.withdraw(subject, "news")
        target = self.pending if self.open is not None else self.granted
        target[subject] = give
        if self.open is not None:
            self.pending_events += 1
        else:
            self.events += 1

    @rule(subject=SUBJECTS)
    def track(self, subject: str) -> None:
        self.guard.retention.track("orders", f"order-{subject}", subject=subject)
        (self.pending_tracked if self.open is not None else self.tracked).add(subject)

    @precondition(lambda self: self.open is not None)
    @rule(commit=st.booleans())
    def end(self, commit: bool) -> None:
        assert self.session is not None
        assert self.open is not None
        if commit:
            self.session.commit()
            self.granted.update(self.pending)
            self.tracked |= self.pending_tracked
            self.events += self.pending_events
        else:
            self.session.rollback()
        self.open.close()
        self.open, self.session = None, None
        self.pending, self.pending_tracked, self.pending_events = {}, set(), 0

    @invariant()
    def consent_is_as_modelled(self) -> None:
        seen = {**self.granted, **self.pending}
        for subject in ("s1", "s2", "s3"):
            assert self.guard.consent.check(subject, "news") == seen.get(subject, False)

    @invariant()
    def tracking_is_as_modelled(self) -> None:
        table = self.guard.store.tables.retention
        with self.guard.store.reading() as connection:
            rows = connection.execute(select(table.c.record_id)).scalars().all()
        assert set(rows) == {f"order-{s}" for s in self.tracked | self.pending_tracked}

    @precondition(lambda self: self.open is None)
    @invariant()
    def the_log_holds_what_committed(self) -> None:
        changes = sum(
            1
            for event in self.guard.audit.events()
            if event.action in ("consent_grant", "consent_withdraw")
        )
        assert changes == self.events


BindMachine.TestCase.settings = settings(max_examples=20, stateful_step_count=14, deadline=None)
TestBindMachine = BindMachine.TestCase
