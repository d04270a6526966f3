"""A hypothesis state machine for key epochs against a plain model (issue 9).

Encryptions, shreds, epoch advances and backups (SQLite online copies) in any order. The model
says what each copy must open: a copy opens the ciphertexts it holds keys for until the next
advance, and none after it; the live store opens every ciphertext whose subject was not
shredded since, and a shredded one raises KeyDestroyed.
"""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import piiguard as pg
from piiguard.keys import LocalKEK
from piiguard.testing import allow_test_reveals

SUBJECTS = ("u0", "u1", "u2")
CONTEXT = {"table": "t", "field": "f"}


@dataclass
class Copy:
    path: Path
    advances: int  # the number of advances when it was taken
    texts: dict[str, list[str]]  # ciphertexts it holds keys for, by subject


class EpochMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.home = Path(tempfile.mkdtemp())
        self.kek = LocalKEK.generate(self.home / "kek.key")
        self.path = self.home / "live.db"
        self.guard = pg.Guard.open(f"sqlite:///{self.path}", kek=self.kek, key_epoch=None)
        allow_test_reveals(self.guard)  # in the store: every copy has it too
        self.texts: dict[str, list[str]] = {s: [] for s in SUBJECTS}
        self.advances = 0
        self.copies: list[Copy] = []
        self.gone: list[str] = []

    @rule(subject=st.sampled_from(SUBJECTS))
    def encrypt(self, subject: str) -> None:
        self.texts[subject].append(self.guard.encrypt(subject, context=CONTEXT, subject=subject))

    @rule(subject=st.sampled_from(SUBJECTS))
    def shred(self, subject: str) -> None:
        self.guard.shred(subject)
        self.gone.extend(self.texts[subject])  # none of them opens in the live store any more
        self.texts[subject] = []

    @rule(batch=st.sampled_from([1, 2, 1000]))
    def advance(self, batch: int) -> None:
        report = self.guard.keys.advance_epoch(batch_size=batch)
        assert report.unreadable == ()
        self.advances += 1

    @precondition(lambda self: len(self.copies) < 3)
    @rule()
    def backup(self) -> None:
        target = self.home / f"copy{len(self.copies)}.db"
        with sqlite3.connect(self.path) as source, sqlite3.connect(target) as copy:
            source.backup(copy)
        self.copies.append(
            Copy(
                target,
                self.advances,
                {s: list(t) for s, t in self.texts.items()},
            )
        )

    @invariant()
    def the_live_store_opens_exactly_the_live_subjects(self) -> None:
        for subject, texts in self.texts.items():
            for text in texts:
                assert (
                    self.guard.decrypt(text, context=CONTEXT, actor="tester", purpose="testing")
                    == subject
                )
        for text in self.gone:
            try:
                self.guard.decrypt(text, context=CONTEXT, actor="tester", purpose="testing")
            except pg.KeyDestroyed:
                continue
            raise AssertionError("a shredded subject's data opened in the live store")

    @invariant()
    def copies_open_only_until_the_next_advance(self) -> None:
        for copy in self.copies:
            with pg.Guard.open(f"sqlite:///{copy.path}", kek=self.kek, key_epoch=None) as old:
                for subject, texts in copy.texts.items():
                    for text in texts:
                        try:
                            opened = old.decrypt(
                                text, context=CONTEXT, actor="tester", purpose="testing"
                            )
                        except pg.DecryptionError:
                            opened = None
                        if copy.advances < self.advances:
                            assert opened is None, "a copy opened data after an advance"
                        else:
                            assert opened == subject

    def teardown(self) -> None:
        self.guard.close()


TestEpochMachine = EpochMachine.TestCase
TestEpochMachine.settings = settings(
    max_examples=25,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
