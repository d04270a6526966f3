"""A hypothesis state machine for erasure, holds and sweeps against a plain model (issue 9).

Subjects get encrypted data and tracked records (orders kept 3 years by law, chats 30 days),
holds come and go, time moves, erasures and sweeps run in any order. After every step:

- a subject's keys are destroyed only if its erasure was requested;
- keys are never destroyed while a hold on the subject is in force;
- no hook ever runs for a record of a held subject;
- a receipt that says ``completed`` is true at that moment: the keys are gone;
- once holds end and the legal minimum passes, one sweep shreds every erased subject.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import piiguard as pg
from piiguard.keys import LocalKEK
from piiguard.testing import allow_test_reveals

SUBJECTS = ("u0", "u1", "u2")
CONTEXT = {"table": "customers", "field": "phone"}
YEAR = timedelta(days=365)


class ErasureMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        home = Path(tempfile.mkdtemp())
        self.now = datetime(2026, 12, 1, tzinfo=UTC)
        self.guard = pg.Guard.open(
            f"sqlite:///{home / 'm.db'}",
            kek=LocalKEK.generate(home / "kek.key"),
            clock=lambda: self.now,
            key_epoch=None,
        )
        allow_test_reveals(self.guard)
        self.guard.retention.policy(pg.RetentionPolicy("orders", keep=3 * YEAR, legal_minimum=True))
        self.guard.retention.policy(pg.RetentionPolicy("chats", keep=timedelta(days=30)))
        self.deleted: list[str] = []
        for category in ("orders", "chats"):
            self.guard.retention.hook(category)(self._hook)
        self.texts = {s: self.guard.encrypt(s, context=CONTEXT, subject=s) for s in SUBJECTS}
        self.erase_requested: set[str] = set()
        self.holds: dict[str, list[str]] = {s: [] for s in SUBJECTS}
        self.owner: dict[str, str] = {}
        self.count = 0

    def _hook(self, ids: list[str]) -> None:
        for record in ids:
            assert not self.holds[self.owner[record]], "a hook ran for a held subject's record"
        self.deleted.extend(ids)

    def destroyed(self, subject: str) -> bool:
        try:
            self.guard.decrypt(
                self.texts[subject], context=CONTEXT, actor="tester", purpose="testing"
            )
        except pg.KeyDestroyed:
            return True
        return False

    @rule(subject=st.sampled_from(SUBJECTS), category=st.sampled_from(["orders", "chats"]))
    def track(self, subject: str, category: str) -> None:
        self.count += 1
        record = f"{category[0]}{self.count}"
        self.owner[record] = subject
        self.guard.retention.track(category, record, subject=subject, at=self.now)

    @rule(subject=st.sampled_from(SUBJECTS))
    def hold(self, subject: str) -> None:
        self.holds[subject].append(self.guard.retention.hold(subject=subject, reason="case"))

    @precondition(lambda self: any(self.holds.values()))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        subject = data.draw(st.sampled_from([s for s in SUBJECTS if self.holds[s]]))
        self.guard.retention.release(self.holds[subject].pop())

    @rule(subject=st.sampled_from(SUBJECTS))
    def erase(self, subject: str) -> None:
        self.erase_requested.add(subject)
        receipt = self.guard.erase(subject)
        if receipt.completed:
            assert self.destroyed(subject), "a completed receipt with live keys"
        if self.holds[subject]:
            assert not receipt.completed

    @rule(days=st.sampled_from([1, 31, 400, 3 * 365 + 1]))
    def wait(self, days: int) -> None:
        self.now += timedelta(days=days)

    @rule()
    def sweep(self) -> None:
        self.guard.retention.sweep()

    @invariant()
    def keys_go_only_when_asked(self) -> None:
        for subject in SUBJECTS:
            if self.destroyed(subject):
                assert subject in self.erase_requested, "keys destroyed without an erasure"

    @rule(subject=st.sampled_from(SUBJECTS))
    def a_hold_keeps_the_keys(self, subject: str) -> None:
        """Hold a live subject, then erase and sweep years later: the keys stay."""
        if self.destroyed(subject):
            return
        hold = self.guard.retention.hold(subject=subject, reason="check")
        self.holds[subject].append(hold)
        self.erase_requested.add(subject)
        self.guard.erase(subject)
        self.now += 4 * YEAR
        self.guard.retention.sweep()
        assert not self.destroyed(subject), "a sweep destroyed a held subject's keys"

    def teardown(self) -> None:
        # every hold ends, the legal minimum passes: every erased subject's keys go
        for subject in SUBJECTS:
            while self.holds[subject]:
                self.guard.retention.release(self.holds[subject].pop())
        self.now += 4 * YEAR
        self.guard.retention.sweep()
        self.now += timedelta(days=2)  # past any retry backoff
        self.guard.retention.sweep()
        for subject in SUBJECTS:
            erased = subject in self.erase_requested
            if erased and self.guard.erasure_receipts(subject):
                last = self.guard.erasure_receipts(subject)[-1]
                failed = any(step["outcome"] == "failed" for step in last["steps"])
                if not failed:
                    assert self.destroyed(subject), "an erased subject's keys outlived every hold"
            assert erased or not self.destroyed(subject)
        self.guard.close()


TestErasureMachine = ErasureMachine.TestCase
TestErasureMachine.settings = settings(
    max_examples=30,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
