"""The error contract: every error a caller meets at run time is a PiiGuardError, and none
carries a value in its message, its args, its chain or the locals of piiguard's frames.

Bad inputs (lone surrogates, NUL, non-ASCII digits, a 10 MB text, bytes, None, numbers, lists)
that hold a canary are fed through every public call, in every position that takes caller data.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import piiguard as pg
from piiguard.keys import LocalKEK
from piiguard.testing import SettableClock, allow_test_reveals, throwaway_guard
from tests.backends import postgres_schema
from tests.helpers import CANARIES, CANARY_ID, CANARY_PHONE

CTX = {"table": "customers", "column": "phone"}
CARD = "6222020200112233445"[:-1]


def _bad_values() -> st.SearchStrategy[object]:
    """Inputs that hold a canary and are wrong in some way."""
    canary = st.sampled_from([CANARY_PHONE, CANARY_ID])
    return st.one_of(
        canary.map(lambda c: c + "\ud800"),
        canary.map(lambda c: "\ud800" + c),
        canary.map(lambda c: c + "\x00"),
        canary.map(lambda c: c.encode()),
        canary.map(lambda c: bytearray(c.encode())),
        canary.map(lambda c: [c]),
        canary.map(lambda c: {"value": c}),
        canary.map(lambda c: (c, c)),
        st.just(int(CANARY_PHONE)),
        st.just(float(CANARY_PHONE)),
        st.just(None),
        st.just(""),
        canary.map(lambda c: c * 2 + "x" * 10_000_000),
        canary.map(lambda c: " " + c + "\u0663"),  # an Arabic-Indic digit after the canary
    )


#: Each public call with the bad value in one position that takes caller data.
CALLS: dict[str, Callable[[pg.Guard, Any], object]] = {
    "encrypt(value)": lambda g, v: g.encrypt(v, context=CTX),
    "encrypt(context value)": lambda g, v: g.encrypt("x", context={"k": v}),
    "encrypt(context)": lambda g, v: g.encrypt("x", context=v),
    "encrypt(subject)": lambda g, v: g.encrypt("x", context=CTX, subject=v),
    "encrypt_bytes(value)": lambda g, v: g.encrypt_bytes(v, context=CTX),
    "encrypt_many(values)": lambda g, v: g.encrypt_many([v], contexts=[CTX]),
    "encrypt_many(lengths)": lambda g, v: g.encrypt_many([v, v], contexts=[CTX]),
    "encrypt_many(subject)": lambda g, v: g.encrypt_many(["x"], contexts=[CTX], subject=v),
    "decrypt(ciphertext)": lambda g, v: g.decrypt(
        v, context=CTX, actor="tester", purpose="testing"
    ),
    "decrypt(actor)": lambda g, v: g.decrypt(
        g.encrypt("x", context=CTX), context=CTX, actor=v, purpose="testing"
    ),
    "decrypt_many(lengths)": lambda g, v: g.decrypt_many(
        [v, v], contexts=[CTX], actor="tester", purpose="testing"
    ),
    "encrypt_deterministically(value)": lambda g, v: g.encrypt_deterministically(v, context=CTX),
    "blind_index(value)": lambda g, v: g.blind_index(v, field="phone"),
    "blind_index(bits)": lambda g, v: g.blind_index(CANARY_PHONE, field="phone", bits=7),
    "blind_index(field)": lambda g, v: g.blind_index("x", field=v),
    "blind_index(subject)": lambda g, v: g.blind_index(CANARY_PHONE, field="f", subject=v),
    "tokens.token(value)": lambda g, v: g.tokens.token(v, kind="phone"),
    "tokens.token(kind)": lambda g, v: g.tokens.token(CANARY_PHONE, kind=v),
    "tokens.token_many": lambda g, v: g.tokens.token_many([CANARY_PHONE, v], kind="phone"),
    "tokens.fpe(value)": lambda g, v: g.tokens.fpe(v, kind="bank_card"),
    "tokens.fpe(tweak)": lambda g, v: g.tokens.fpe(CARD, kind="bank_card", tweak=v),
    "tokens.fpe_decrypt": lambda g, v: g.tokens.fpe_decrypt(
        v, kind="bank_card", actor="tester", purpose="testing"
    ),
    "vault.tokenize(value)": lambda g, v: g.vault.tokenize(v, kind="phone"),
    "vault.tokenize(subject)": lambda g, v: g.vault.tokenize(CANARY_PHONE, kind="phone", subject=v),
    "vault.tokenize(no kind)": lambda g, v: g.vault.tokenize(v),  # type: ignore[call-arg]
    "vault.detokenize": lambda g, v: g.vault.detokenize(v, actor="tester", purpose="testing"),
    "vault.entries": lambda g, v: g.vault.entries(v, actor="tester", purpose="testing"),
    "consent.check(subject)": lambda g, v: g.consent.check(v, "marketing"),
    "consent.check(purpose)": lambda g, v: g.consent.check(CANARY_PHONE, v),
    "consent.missing": lambda g, v: g.consent.missing(v, ["marketing"]),
    "consent.grant(subject)": lambda g, v: g.consent.grant(v, "marketing", notice="v1"),
    "consent.grant(notice)": lambda g, v: g.consent.grant(CANARY_PHONE, "marketing", notice=v),
    "consent.grant(evidence)": lambda g, v: g.consent.grant(
        CANARY_PHONE, "marketing", notice="v1", evidence={"ip": v}
    ),
    "consent.grant(born)": lambda g, v: g.consent.grant(
        CANARY_PHONE, "marketing", notice="v1", born=v
    ),
    "consent.grant(id_number)": lambda g, v: g.consent.grant(
        "someone", "marketing", notice="v1", id_number=v
    ),
    "consent.withdraw": lambda g, v: g.consent.withdraw(v, "marketing"),
    "consent.filter": lambda g, v: list(g.consent.filter(["a", v], "marketing")),
    "consent.proof": lambda g, v: g.consent.proof(v, "marketing", actor="tester"),
    "consent.history": lambda g, v: g.consent.history(v),
    "consent.publish_notice": lambda g, v: g.consent.publish_notice(v, purposes=["marketing"]),
    "consent.publish_notice(text)": lambda g, v: g.consent.publish_notice(
        "v9", purposes=["marketing"], text=v
    ),
    "retention.track(record)": lambda g, v: g.retention.track("orders", v),
    "retention.track(subject)": lambda g, v: g.retention.track("orders", "o1", subject=v),
    "retention.hold(subject)": lambda g, v: g.retention.hold(subject=v, reason="audit"),
    "retention.hold(reason)": lambda g, v: g.retention.hold(category="orders", reason=v),
    "retention.is_frozen": lambda g, v: g.retention.is_frozen("orders", v),
    "erase": lambda g, v: g.erase(v),
    "export": lambda g, v: g.export(v, actor="tester", purpose="testing"),
    "shred": lambda g, v: g.shred(v),
    "erasure_receipts": lambda g, v: g.erasure_receipts(v),
    "scan": lambda g, v: pg.scan(v),
    "redact": lambda g, v: pg.redact(v),
    "mask(phone)": lambda g, v: pg.mask(v, "phone"),
    "mask(id)": lambda g, v: pg.mask(v, "cn_resident_id"),
    "mask(kind)": lambda g, v: pg.mask(CANARY_PHONE, v),
    "normalise": lambda g, v: pg.normalise(v, "cn_resident_id"),
    "Phone": lambda g, v: pg.Phone(v),
    "CNResidentID": lambda g, v: pg.CNResidentID(v),
    "BankCard": lambda g, v: pg.BankCard(v),
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_guard(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[pg.Guard]:
    """One Guard per backend for every example (hypothesis reruns a test body many times)."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            guard = stack.enter_context(throwaway_guard(clock=SettableClock()))
        else:
            url, schema = stack.enter_context(postgres_schema())
            kek = LocalKEK.generate(tmp_path_factory.mktemp("contract") / "kek.key")
            guard = stack.enter_context(
                pg.Guard.open(url, kek=kek, schema=schema, clock=SettableClock())
            )
        allow_test_reveals(guard)  # throwaway_guard has it already; the PostgreSQL one not
        guard.consent.register(pg.Purpose("marketing", basis="consent", kinds={"phone"}))
        guard.consent.publish_notice("v1", purposes=["marketing"])
        guard.retention.policy(pg.RetentionPolicy("orders", keep=timedelta(days=30)))
        yield guard


TESTS = str(Path(__file__).resolve().parent)


def _recorded(error: BaseException) -> str:
    """What an error tracker records of ``error``: every message and every local of every
    frame in its chain, leaving out the test's own frames (they hold the bad value by
    necessity)."""
    text: list[str] = []
    pending: list[traceback.TracebackException | None] = [
        traceback.TracebackException.from_exception(error, capture_locals=True)
    ]
    while pending:
        current = pending.pop()
        if current is None:
            continue
        text.extend(current.format_exception_only())
        text.extend(
            f"{frame.name} {frame.locals}"
            for frame in current.stack
            if not frame.filename.startswith(TESTS)
        )
        pending += [current.__cause__, current.__context__]
    return "".join(text) + repr(error.args)


def _outcome(
    call: Callable[[pg.Guard, Any], object], guard: pg.Guard, bad: object
) -> Exception | None:
    try:
        call(guard, bad)
    except Exception as error:
        return error
    return None


@pytest.mark.parametrize("name", sorted(CALLS))
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(bad=_bad_values())
def test_no_value_in_any_error(shared_guard: pg.Guard, name: str, bad: object) -> None:
    error = _outcome(CALLS[name], shared_guard, bad)
    if error is None:
        return
    assert isinstance(error, pg.PiiGuardError), (
        f"{name}: {type(error).__name__} is outside the tree"
    )
    text = _recorded(error)
    for canary in CANARIES:
        assert canary not in text, f"{name}: a canary leaked through {type(error).__name__}"
