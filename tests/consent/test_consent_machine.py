"""The consent ledger against a plain model: a hypothesis state machine on SQLite and
PostgreSQL. After every step, check, missing, filter and proof must all say what the model
says, for every subject and purpose."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

import piiguard as pg
from piiguard.keys import LocalKEK
from tests.conftest import StoreTarget

# names that broke a LIKE match: a wildcard, the name it matches, a non-ASCII one
NAMES = ("ab_c", "abxc", "publicité")
SEPARATE = "face"  # sensitive: never granted in a bundle
UNREGISTERED = "never"  # asked for, never registered
SUBJECTS = ("u1", "u2")
PURPOSES = st.sampled_from((*NAMES, SEPARATE, UNREGISTERED))
# definitions a purpose may be (re)registered with
VARIANTS = (
    {"basis": "consent", "kinds": {"phone"}},
    {"basis": "consent", "kinds": {"phone", "email"}},
    {"basis": "contract", "kinds": {"phone"}},
)
_RUNS = itertools.count()


@dataclass
class Model:
    """What the ledger should hold, kept the plainest way."""

    purposes: dict[str, list[pg.Purpose]] = field(default_factory=dict)  # every version
    notices: list[tuple[str, frozenset[str], bool]] = field(default_factory=list)
    events: dict[tuple[str, str], list[tuple[str, int, str | None]]] = field(default_factory=dict)

    def holds(self, subject: str, purpose: str) -> bool:
        current = self.purposes[purpose][-1]
        if current.basis != "consent":
            return True
        history = self.events.get((subject, purpose), [])
        if not history:
            return False
        action, version, notice = history[-1]
        if action != "grant" or version != len(self.purposes[purpose]):
            return False
        assert notice is not None
        shown = [n for n, _, _ in self.notices].index(notice)
        return not any(
            material and purpose in covered for _, covered, material in self.notices[shown + 1 :]
        )

    def last_grant(self, subject: str, purpose: str) -> tuple[str, int, str | None] | None:
        grants = [e for e in self.events.get((subject, purpose), []) if e[0] == "grant"]
        return grants[-1] if grants else None


class ConsentMachine(RuleBasedStateMachine):
    def __init__(self, guard: pg.Guard, clock: list[datetime]) -> None:
        super().__init__()
        self.guard = guard
        self.clock = clock
        self.run = f"r{next(_RUNS)}_"  # every example gets its own names in the shared store
        self.model = Model()

    def _name(self, name: str) -> str:
        return self.run + name

    def _notice(self, index: int) -> str:
        return f"{self.run}n{index}"

    def _subject(self, subject: str) -> str:
        return self.run + subject

    @initialize()
    def open_shop(self) -> None:
        """Every purpose registered and a first notice published: grants can succeed."""
        for name in NAMES:
            self.register(name, VARIANTS[0])
        self.register_separate()
        self.publish({*NAMES, SEPARATE}, material=True)

    @rule(name=st.sampled_from(NAMES), variant=st.sampled_from(VARIANTS))
    def register(self, name: str, variant: dict[str, object]) -> None:
        purpose = pg.Purpose(self._name(name), **variant)  # type: ignore[arg-type]
        versions = self.model.purposes.setdefault(name, [])
        if not versions or versions[-1].definition() != purpose.definition():
            versions.append(purpose)
        assert self.guard.consent.register(purpose) == len(versions)

    @rule()
    def register_separate(self) -> None:
        purpose = pg.Purpose(self._name(SEPARATE), kinds={"biometric"}, separate=True)
        self.model.purposes.setdefault(SEPARATE, [purpose])
        assert self.guard.consent.register(purpose) == 1
        # sensitive: consent is collected only after an impact assessment (PIPL Art. 55)
        self.guard.records.assessment(purpose.name, risks=["r"], measures=["m"], author="dpo")

    @rule(covered=st.sets(PURPOSES), material=st.booleans())
    def publish(self, covered: set[str], material: bool) -> None:
        version = self._notice(len(self.model.notices))
        names = [self._name(n) for n in covered]
        if not covered <= self.model.purposes.keys():
            try:
                self.guard.consent.publish_notice(version, purposes=names, material=material)
            except pg.UnknownPurpose:
                return
            raise AssertionError("a notice for an unregistered purpose was published")
        self.guard.consent.publish_notice(version, purposes=names, material=material)
        self.model.notices.append((version, frozenset(covered), material))

    @rule()
    def tick(self) -> None:
        """Time moves only here: most events share an instant."""
        self.clock[0] += timedelta(seconds=1)

    @rule(
        subject=st.sampled_from(SUBJECTS),
        purposes=st.lists(PURPOSES, min_size=1, max_size=3),
        age=st.integers(-1, 3),
        bundle=st.booleans(),
    )
    def grant(self, subject: str, purposes: list[str], age: int, bundle: bool) -> None:
        """Under the notice published ``age`` notices ago (-1: one never published)."""
        if not bundle:
            purposes = purposes[:1]
        notice = len(self.model.notices) if age < 0 else max(0, len(self.model.notices) - 1 - age)
        version = self._notice(notice)
        expected: type[Exception] | None = None
        if not set(purposes) <= self.model.purposes.keys():
            expected = pg.UnknownPurpose
        elif notice >= len(self.model.notices):
            expected = pg.UnknownNotice
        elif (bundle and SEPARATE in purposes) or not set(purposes) <= self.model.notices[notice][
            1
        ]:
            expected = pg.PolicyViolation
        call = self.guard.consent.grant_many if bundle else self.guard.consent.grant
        target = [self._name(p) for p in purposes] if bundle else self._name(purposes[0])
        if expected is not None:
            with pytest.raises(expected):
                call(self._subject(subject), target, notice=version)  # type: ignore[arg-type]
            return
        call(self._subject(subject), target, notice=version)  # type: ignore[arg-type]
        for purpose in purposes:
            self.model.events.setdefault((subject, purpose), []).append(
                ("grant", len(self.model.purposes[purpose]), version)
            )

    @rule(
        subject=st.sampled_from(SUBJECTS),
        purpose=PURPOSES,
        action=st.sampled_from(("withdraw", "expire")),
    )
    def end(self, subject: str, purpose: str, action: str) -> None:
        call = self.guard.consent.withdraw if action == "withdraw" else self.guard.consent.expire
        if purpose not in self.model.purposes:
            try:
                call(self._subject(subject), self._name(purpose))
            except pg.UnknownPurpose:
                return
            raise AssertionError("an unregistered purpose was withdrawn")
        call(self._subject(subject), self._name(purpose))
        self.model.events.setdefault((subject, purpose), []).append(
            (action, len(self.model.purposes[purpose]), None)
        )

    @invariant()
    def every_question_agrees_with_the_model(self) -> None:
        consent = self.guard.consent
        names = sorted(self.model.purposes)
        for subject in SUBJECTS:
            who = self._subject(subject)
            expected_missing = {self._name(p) for p in names if not self.model.holds(subject, p)}
            assert consent.missing(who, [self._name(p) for p in names]) == expected_missing
            for purpose in names:
                expected = self.model.holds(subject, purpose)
                name = self._name(purpose)
                assert consent.check(who, name) is expected
                assert (list(consent.filter([who], name)) == [who]) is expected
                proof = consent.proof(who, name, actor="tester")
                assert proof.valid is expected
                assert proof.purpose_version == len(self.model.purposes[purpose])
                grant = self.model.last_grant(subject, purpose)
                if grant is None:
                    assert proof.grant is None
                else:
                    assert proof.grant is not None
                    assert (proof.grant.purpose_version, proof.grant.notice) == grant[1:]
                    assert proof.agreed == self.model.purposes[purpose][grant[1] - 1]


def test_the_ledger_agrees_with_a_plain_model(store_target: StoreTarget, kek: LocalKEK) -> None:
    url, schema = store_target
    clock = [datetime(2026, 11, 1, tzinfo=UTC)]
    with pg.Guard.open(url, kek=kek, schema=schema, clock=lambda: clock[0]) as guard:
        run_state_machine_as_test(
            lambda: ConsentMachine(guard, clock),  # type: ignore[arg-type]
            settings=settings(max_examples=30, stateful_step_count=25, deadline=None),
        )
