"""Consent: purposes, notices, the append-only ledger, the rules of PIPL, and the decorator."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

import piiguard as pg
from piiguard.keys import LocalKEK
from piiguard.testing import SettableClock, throwaway_guard
from piiguard.validate import cn_resident_id_check_char
from tests.conftest import StoreTarget
from tests.helpers import CANARY_PHONE, assert_no_canary, piiguard_frames_text

NOTICE = "2026-11"


def _setup(guard: pg.Guard) -> None:
    guard.consent.register(pg.Purpose("marketing_sms", basis="consent", kinds={"phone"}))
    guard.consent.register(
        pg.Purpose("face_login", basis="consent", kinds={"biometric"}, separate=True)
    )
    guard.consent.register(
        pg.Purpose(
            "delivery", basis="contract", kinds={"phone", "address", "person_name"}, essential=True
        )
    )
    guard.consent.register(pg.Purpose("analytics", basis="consent", kinds={"ipv4"}))
    guard.consent.publish_notice(
        NOTICE, purposes=["marketing_sms", "face_login", "delivery", "analytics"]
    )


@pytest.fixture
def shop(guard: pg.Guard) -> pg.Guard:
    """A Guard with the shop's purposes and a published notice."""
    _setup(guard)
    return guard


def _event_count(guard: pg.Guard) -> int:
    events = guard.store.tables.consent_events
    with guard.store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(events)).scalar_one())


# -- purposes --------------------------------------------------------------------------------


def test_sensitive_purposes_need_separate_consent() -> None:
    """PIPL Art. 29: a purpose processing sensitive PI must be marked separate."""
    with pytest.raises(pg.PolicyViolation, match="separate=True"):
        pg.Purpose("face_login", kinds={"biometric"})
    with pytest.raises(pg.PolicyViolation):
        pg.Purpose("kyc", kinds={"cn_resident_id", "phone"})
    assert pg.Purpose("kyc", kinds={"cn_resident_id"}, separate=True).separate


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "Marketing"}, ValueError),
        ({"name": "marketing", "basis": "legitimate_interest"}, ValueError),
        ({"name": "marketing", "kinds": {"telephone"}}, pg.UnknownKind),
        ({"name": "x" * 65}, ValueError),
    ],
)
def test_purposes_are_checked_when_built(kwargs: dict[str, object], error: type) -> None:
    """Names, the bases of PIPL Art. 13 (no 'legitimate interest' in China), known kinds."""
    with pytest.raises(error):
        pg.Purpose(**kwargs)  # type: ignore[arg-type]


def test_redefining_a_purpose_bumps_its_version_and_stales_grants(shop: pg.Guard) -> None:
    """PIPL Art. 14: a changed purpose needs fresh consent; an identical one changes nothing."""
    shop.consent.grant("u1", "marketing_sms", notice=NOTICE)
    assert shop.consent.register(pg.Purpose("marketing_sms", kinds={"phone"})) == 1
    assert shop.consent.check("u1", "marketing_sms")
    assert shop.consent.register(pg.Purpose("marketing_sms", kinds={"phone", "email"})) == 2
    assert not shop.consent.check("u1", "marketing_sms")
    shop.consent.publish_notice("2026-12", purposes=["marketing_sms"])
    shop.consent.grant("u1", "marketing_sms", notice="2026-12")
    assert shop.consent.check("u1", "marketing_sms")
    assert shop.consent.purpose("marketing_sms").kinds == {"phone", "email"}
    with pytest.raises(TypeError):
        shop.consent.register("marketing_sms")  # type: ignore[arg-type]


def test_notices_are_versioned_and_checked(shop: pg.Guard) -> None:
    """A notice names registered purposes; a version means one content, for ever."""
    published = shop.consent.notice(NOTICE)
    assert published is not None
    assert shop.consent.notice("nope") is None
    with pytest.raises(pg.PolicyViolation, match="other content"):
        shop.consent.publish_notice(NOTICE, purposes=["delivery"])
    again = shop.consent.publish_notice(
        NOTICE, purposes=["marketing_sms", "face_login", "delivery", "analytics"]
    )
    assert again == published  # a second instance starting with the same code: a no-op
    with pytest.raises(pg.UnknownPurpose):
        shop.consent.publish_notice("2027-01", purposes=["telemarketing"])
    with pytest.raises(ValueError, match="version"):
        shop.consent.publish_notice("", purposes=["delivery"])


# -- grants ------------------------------------------------------------------------------------


def test_grant_check_withdraw(shop: pg.Guard) -> None:
    """DESIGN §3: grant, check, withdraw; withdrawal takes effect at once."""
    assert not shop.consent.check("u1", "marketing_sms")
    shop.consent.grant("u1", "marketing_sms", notice=NOTICE, evidence={"channel": "app"})
    assert shop.consent.check("u1", "marketing_sms")
    assert not shop.consent.check("u2", "marketing_sms")
    shop.consent.withdraw("u1", "marketing_sms")
    assert not shop.consent.check("u1", "marketing_sms")


def test_withdrawal_reaches_another_guard_at_once(store_target: StoreTarget, kek: LocalKEK) -> None:
    """PIPL Art. 15: a withdrawal in one instance is seen by the next check of another."""
    url, schema = store_target
    with (
        pg.Guard.open(url, kek=kek, schema=schema) as first,
        pg.Guard.open(url, kek=kek, schema=schema) as second,
    ):
        _setup(first)
        first.consent.grant("u1", "marketing_sms", notice=NOTICE)
        assert second.consent.check("u1", "marketing_sms")
        first.consent.withdraw("u1", "marketing_sms")
        assert not second.consent.check("u1", "marketing_sms")


def test_separate_consent_is_never_bundled(shop: pg.Guard) -> None:
    """grant_many refuses a separate purpose and writes nothing at all."""
    with pytest.raises(pg.PolicyViolation, match="face_login"):
        shop.consent.grant_many("u1", ["marketing_sms", "face_login"], notice=NOTICE)
    assert _event_count(shop) == 0
    shop.consent.grant_many("u1", ["marketing_sms", "analytics"], notice=NOTICE)
    assert shop.consent.missing("u1", ["marketing_sms", "analytics", "face_login"]) == {
        "face_login"
    }
    with pytest.raises(pg.PolicyViolation, match="impact assessment"):  # sensitive: assess first
        shop.consent.grant("u1", "face_login", notice=NOTICE, evidence={"channel": "app"})
    shop.records.assessment("face_login", risks=["face data leaks"], measures=["m"], author="dpo")
    shop.consent.grant("u1", "face_login", notice=NOTICE, evidence={"channel": "app"})
    assert shop.consent.check("u1", "face_login")


def test_bad_input_writes_nothing(shop: pg.Guard) -> None:
    """Unknown purposes, empty subjects, unpublished or silent notices, malformed evidence."""
    attempts: list[tuple[Callable[[], object], type[BaseException]]] = [
        (lambda: shop.consent.grant("u1", "telemarketing", notice=NOTICE), pg.UnknownPurpose),
        (lambda: shop.consent.grant("", "marketing_sms", notice=NOTICE), ValueError),
        (lambda: shop.consent.grant("u1", "marketing_sms", notice="1999-01"), pg.UnknownNotice),
        (lambda: shop.consent.grant("u1", "telemarketing", notice="1999-01"), pg.UnknownPurpose),
        (
            lambda: shop.consent.grant("u1", "marketing_sms", notice=NOTICE, evidence={"ip": 1}),  # type: ignore[dict-item]
            ValueError,
        ),
        (
            lambda: shop.consent.grant("u1", "marketing_sms", notice=NOTICE, evidence=["app"]),  # type: ignore[arg-type]
            ValueError,
        ),
        (
            lambda: shop.consent.grant(
                "u1", "marketing_sms", notice=NOTICE, evidence={"bad key": "x"}
            ),
            ValueError,
        ),
        (
            lambda: shop.consent.grant(
                "u1", "marketing_sms", notice=NOTICE, evidence={"ua": "x" * 600}
            ),
            ValueError,
        ),
        (
            lambda: shop.consent.grant_many(
                "u1", ["marketing_sms", "telemarketing"], notice=NOTICE
            ),
            pg.UnknownPurpose,
        ),
        (lambda: shop.consent.withdraw("u1", "telemarketing"), pg.UnknownPurpose),
        (lambda: shop.consent.check("u1", "telemarketing"), pg.UnknownPurpose),
    ]
    for attempt, error in attempts:
        with pytest.raises(error):
            attempt()
    assert _event_count(shop) == 0


def test_a_notice_that_does_not_describe_a_purpose_cannot_carry_its_consent(shop: pg.Guard) -> None:
    """Informed consent: the notice shown must describe the purpose granted."""
    shop.consent.publish_notice("delivery-only", purposes=["delivery"])
    with pytest.raises(pg.PolicyViolation, match="does not describe"):
        shop.consent.grant("u1", "marketing_sms", notice="delivery-only")


def test_children_under_14_need_a_guardian(shop: pg.Guard) -> None:
    """PIPL Art. 31: by birth date or by resident ID, a minor's grant names a guardian."""
    today = shop.consent.now().date()  # the Guard's clock, not the machine's
    young = today - timedelta(days=365 * 10)
    with pytest.raises(pg.PolicyViolation, match="guardian"):
        shop.consent.grant("kid-1", "marketing_sms", notice=NOTICE, born=young)
    shop.consent.grant(
        "kid-1", "marketing_sms", notice=NOTICE, born=young, evidence={"guardian": "parent-1"}
    )
    assert shop.consent.check("kid-1", "marketing_sms")
    first17 = "440308" + young.strftime("%Y%m%d") + "002"
    child_id = first17 + cn_resident_id_check_char(first17)
    with pytest.raises(pg.PolicyViolation, match="guardian"):
        shop.consent.grant("kid-2", "marketing_sms", notice=NOTICE, id_number=child_id)
    adult = today - timedelta(days=365 * 30)
    shop.consent.grant("adult", "marketing_sms", notice=NOTICE, born=adult)
    with pytest.raises(pg.InvalidPII):
        shop.consent.grant("kid-3", "marketing_sms", notice=NOTICE, id_number="11010519491231002Y")


def test_the_guardian_age_is_exact_to_the_day() -> None:
    """A subject 14 tomorrow needs a guardian today and not tomorrow (a settable clock)."""
    clock = SettableClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    with throwaway_guard(clock=clock) as guard:
        _setup(guard)
        born = date(2012, 3, 2)
        with pytest.raises(pg.PolicyViolation, match="guardian"):
            guard.consent.grant("kid", "marketing_sms", notice=NOTICE, born=born)
        clock.advance(timedelta(days=1))
        guard.consent.grant("kid", "marketing_sms", notice=NOTICE, born=born)
        assert guard.consent.check("kid", "marketing_sms")
        with pytest.raises(pg.InvalidArgument, match="born"):
            guard.consent.grant("kid", "marketing_sms", notice=NOTICE, born="2012-03-02")  # type: ignore[arg-type]


def test_a_material_notice_makes_earlier_grants_stale(shop: pg.Guard) -> None:
    """A material change needs re-consent; a non-material one does not."""
    shop.consent.grant("u1", "marketing_sms", notice=NOTICE)
    shop.consent.grant("u1", "analytics", notice=NOTICE)
    shop.consent.publish_notice("typo-fix", purposes=["marketing_sms"], material=False)
    assert shop.consent.check("u1", "marketing_sms")
    shop.consent.publish_notice("2027-01", purposes=["marketing_sms"], material=True)
    assert not shop.consent.check("u1", "marketing_sms")
    assert shop.consent.check("u1", "analytics")  # the new notice does not cover it
    shop.consent.grant("u1", "marketing_sms", notice="2027-01")
    assert shop.consent.check("u1", "marketing_sms")


def test_non_consent_bases_need_no_grant_and_essentials_are_never_blocked(shop: pg.Guard) -> None:
    """Delivery (contract) holds without a grant; declining marketing does not block it."""
    assert shop.consent.check("u9", "delivery")
    shop.consent.grant("u9", "marketing_sms", notice=NOTICE)
    shop.consent.withdraw("u9", "marketing_sms")
    assert shop.consent.missing("u9", ["delivery", "marketing_sms"]) == {"marketing_sms"}

    @shop.requires_consent("delivery", subject="user_id")
    def ship(user_id: str) -> str:
        return "shipped"

    assert ship("u9") == "shipped"


# -- history, proof, filter --------------------------------------------------------------------


def test_history_and_proof(shop: pg.Guard) -> None:
    """The ledger only grows; proof names notice, purpose version and evidence."""
    shop.consent.grant(
        "u1", "marketing_sms", notice=NOTICE, evidence={"channel": "app", "ip": "10.1.2.3"}
    )
    shop.consent.withdraw("u1", "marketing_sms", evidence={"channel": "web"})
    shop.consent.grant("u1", "marketing_sms", notice=NOTICE, evidence={"channel": "sms"})
    assert [(e.purpose, e.action, e.notice) for e in shop.consent.history("u1")] == [
        ("marketing_sms", "grant", NOTICE),
        ("marketing_sms", "withdraw", None),
        ("marketing_sms", "grant", NOTICE),
    ]
    proof = shop.consent.proof("u1", "marketing_sms", actor="tester")
    assert proof.valid
    assert proof.evidence == {"channel": "sms"}
    assert proof.notice is not None
    assert proof.notice.version == NOTICE
    assert proof.purpose_version == 1
    assert proof.grant is not None
    assert proof.grant.at <= shop.consent.now()
    shop.consent.grant("u3", "marketing_sms", notice=NOTICE, evidence={"ip": "203.0.113.9"})
    assert "203.0.113.9" not in repr(shop.consent.proof("u3", "marketing_sms", actor="tester"))
    empty = shop.consent.proof("u2", "marketing_sms", actor="tester")
    assert (empty.valid, empty.grant, empty.evidence) == (False, None, {})


def test_filter_streams_campaign_audiences(shop: pg.Guard) -> None:
    """filter() keeps order, crosses chunk boundaries, and honours withdrawals."""
    subjects = [f"s{i}" for i in range(1200)]
    for subject in subjects[::3]:
        shop.consent.grant(subject, "marketing_sms", notice=NOTICE)
    shop.consent.withdraw("s0", "marketing_sms")
    expected = [s for s in subjects[::3] if s != "s0"]
    assert list(shop.consent.filter(iter(subjects), "marketing_sms")) == expected
    assert list(shop.consent.filter(["a", "b"], "delivery")) == ["a", "b"]
    with pytest.raises(ValueError, match="subject"):
        list(shop.consent.filter(["s3", ""], "marketing_sms"))


def test_the_ledger_names_no_subject_and_seals_evidence(tmp_path: Path, kek: LocalKEK) -> None:
    """Subject ids and evidence (an IP, a user agent) are not in the database file in clear."""
    path = tmp_path / "consent.db"
    with pg.Guard.open(f"sqlite:///{path}", kek=kek) as guard:
        _setup(guard)
        guard.consent.grant(
            "customer-4711",
            "marketing_sms",
            notice=NOTICE,
            evidence={"ip": "203.0.113.77", "user_agent": "ShopApp/9.1"},
        )
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("consent.db*"))
    for secret in (b"customer-4711", b"203.0.113.77", b"ShopApp/9.1"):
        assert secret not in raw


def test_concurrent_grants_and_withdrawals_lose_no_event(shop: pg.Guard) -> None:
    """Eight threads append at once: every event is kept; the state is the last event's."""

    def churn(worker: int) -> None:
        for i in range(15):
            subject = f"w{worker}"
            if i % 2 == 0:
                shop.consent.grant(subject, "marketing_sms", notice=NOTICE)
            else:
                shop.consent.withdraw(subject, "marketing_sms")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(churn, range(8)))
    assert _event_count(shop) == 8 * 15
    for worker in range(8):
        history = shop.consent.history(f"w{worker}")
        assert len(history) == 15
        assert shop.consent.check(f"w{worker}", "marketing_sms") is (history[-1].action == "grant")


# -- the decorator -----------------------------------------------------------------------------


def test_decorator_reads_the_subject_from_a_parameter(shop: pg.Guard) -> None:
    """Positional, keyword or default; ConsentRequired names what is missing."""
    shop.consent.grant("u1", "marketing_sms", notice=NOTICE)

    @shop.requires_consent("marketing_sms", "analytics", subject="user_id")
    def send_promo(text: str, user_id: str = "u1") -> str:
        """Send one promotional SMS."""
        return f"sent {text}"

    with pytest.raises(pg.ConsentRequired) as caught:
        send_promo("hi")
    assert caught.value.missing == ("analytics",)
    assert isinstance(caught.value, PermissionError)
    shop.consent.grant("u1", "analytics", notice=NOTICE)
    assert send_promo("hi") == "sent hi"
    assert send_promo("hi", "u1") == "sent hi"
    with pytest.raises(pg.ConsentRequired, match="analytics, marketing_sms"):
        send_promo("hi", user_id="u2")
    assert send_promo.__name__ == "send_promo"
    assert send_promo.__doc__ == "Send one promotional SMS."
    assert inspect.signature(send_promo) == inspect.signature(send_promo.__wrapped__)  # type: ignore[attr-defined]


def test_decorator_supports_async_callables_and_context_variables(shop: pg.Guard) -> None:
    """Coroutine functions stay coroutine functions; the subject can come from anywhere."""
    current_user: ContextVar[str] = ContextVar("current_user")
    shop.consent.grant("u1", "marketing_sms", notice=NOTICE)

    @shop.requires_consent("marketing_sms", subject=current_user)
    async def promo() -> str:
        return "async sent"

    @shop.requires_consent("marketing_sms", subject=lambda order: order["buyer"])
    def promo_for(order: dict[str, str]) -> str:
        return "sent"

    assert inspect.iscoroutinefunction(promo)
    current_user.set("u1")
    assert asyncio.run(promo()) == "async sent"
    current_user.set("u2")
    with pytest.raises(pg.ConsentRequired):
        asyncio.run(promo())
    assert promo_for({"buyer": "u1"}) == "sent"
    with pytest.raises(pg.ConsentRequired):
        promo_for({"buyer": "u2"})


def test_decorator_misuse_fails_early(shop: pg.Guard) -> None:
    """A missing subject parameter fails at decoration; an unknown purpose at the call."""
    with pytest.raises(TypeError, match="user_id"):

        @shop.requires_consent("marketing_sms")
        def no_subject(customer: str) -> None: ...

    with pytest.raises(TypeError, match="purpose"):
        shop.requires_consent()

    @shop.requires_consent("telemarketing")
    def call(user_id: str) -> None: ...

    with pytest.raises(pg.UnknownPurpose):
        call("u1")

    @shop.requires_consent("marketing_sms")
    def needs_subject(user_id: str) -> None: ...

    with pytest.raises(TypeError, match="user_id"):
        needs_subject()  # type: ignore[call-arg]


def test_an_expired_consent_no_longer_holds(shop: pg.Guard) -> None:
    """expire() appends an 'expire' event: consent lapses without a withdrawal."""
    shop.consent.grant("u1", "marketing_sms", notice=NOTICE)
    shop.consent.expire("u1", "marketing_sms")
    assert not shop.consent.check("u1", "marketing_sms")
    assert [e.action for e in shop.consent.history("u1")] == ["grant", "expire"]
    with pytest.raises(pg.UnknownPurpose):
        shop.consent.expire("u1", "telemarketing")


def _churn(url: str, schema: str | None, kek_path: str, worker: int) -> None:
    kek = LocalKEK.from_file(kek_path)
    with pg.Guard.open(url, kek=kek, schema=schema) as guard:
        for i in range(12):
            if i % 2 == 0:
                guard.consent.grant(f"p{worker}", "marketing_sms", notice=NOTICE)
            else:
                guard.consent.withdraw(f"p{worker}", "marketing_sms")
            guard.consent.grant("shared", "analytics", notice=NOTICE)


@pytest.mark.parametrize("processes", [2, 4])
def test_concurrent_processes_lose_no_event(
    store_target: StoreTarget, tmp_path: Path, processes: int
) -> None:
    """Several processes append to one ledger at once: every event is kept."""
    import multiprocessing

    url, schema = store_target
    kek_path = tmp_path / "kek.key"
    with pg.Guard.open(url, kek=LocalKEK.generate(kek_path), schema=schema) as guard:
        _setup(guard)
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            pool.starmap(_churn, [(url, schema, str(kek_path), w) for w in range(processes)])
        assert _event_count(guard) == processes * 24
        for worker in range(processes):
            assert not guard.consent.check(f"p{worker}", "marketing_sms")  # last event: withdraw
        assert len(guard.consent.history("shared")) == processes * 12


# -- the decorator, as an attacker calls it (issue 10) -------------------------------------------


def test_a_keyword_cannot_shadow_a_positional_only_subject(shop: pg.Guard) -> None:
    """``send("victim", user_id="attacker")`` on ``def send(user_id, /, **kw)``: the subject
    is the bound positional one, the victim, not the attacker's keyword."""
    shop.consent.grant("attacker", "marketing_sms", notice=NOTICE)

    @shop.requires_consent("marketing_sms")
    def send(user_id: str, /, **options: str) -> str:
        return f"sent to {user_id}"

    with pytest.raises(pg.ConsentRequired):
        send("victim", user_id="attacker")
    assert send("attacker") == "sent to attacker"


class _Disguised(str):
    """A str subclass whose __str__ names someone else."""

    def __str__(self) -> str:
        return "u1"


@pytest.mark.parametrize("who", [None, "", _Disguised("victim"), 42, b"u1"])
def test_a_subject_that_is_not_a_plain_string_is_refused(shop: pg.Guard, who: object) -> None:
    """None is not the subject "None"; a str subclass is not checked by its __str__."""
    shop.consent.grant("u1", "marketing_sms", notice=NOTICE)
    shop.consent.grant("None", "marketing_sms", notice=NOTICE)
    ran: list[object] = []

    @shop.requires_consent("marketing_sms")
    def send(user_id: object) -> None:
        ran.append(user_id)

    with pytest.raises(pg.ConsentRequired):
        send(who)
    assert ran == []


def test_generators_are_checked_when_iteration_starts(shop: pg.Guard) -> None:
    """A generator made while consent held and iterated after a withdrawal is refused."""
    shop.consent.grant("u1", "marketing_sms", notice=NOTICE)

    @shop.requires_consent("marketing_sms")
    def messages(user_id: str) -> Iterator[str]:
        yield f"hello {user_id}"

    @shop.requires_consent("marketing_sms")
    async def stream(user_id: str) -> AsyncIterator[str]:
        yield f"hello {user_id}"

    async def collect(user_id: str) -> list[str]:
        return [item async for item in stream(user_id)]

    assert inspect.isgeneratorfunction(messages)
    assert inspect.isasyncgenfunction(stream)
    made = messages("u1")
    shop.consent.withdraw("u1", "marketing_sms")
    with pytest.raises(pg.ConsentRequired):
        next(made)
    with pytest.raises(pg.ConsentRequired):
        asyncio.run(collect("u1"))
    shop.consent.grant("u1", "marketing_sms", notice=NOTICE)
    assert list(messages("u1")) == ["hello u1"]
    assert asyncio.run(collect("u1")) == ["hello u1"]


def test_a_refusal_holds_none_of_the_handlers_arguments(shop: pg.Guard) -> None:
    """The handler's arguments (a phone, an address) are not in the refusal's frames."""

    @shop.requires_consent("marketing_sms")
    def send(user_id: str, phone: str) -> None: ...

    with pytest.raises(pg.ConsentRequired) as caught:
        send("u7", CANARY_PHONE)
    assert_no_canary(piiguard_frames_text(caught.value))


def test_evidence_moved_to_another_row_does_not_open(shop: pg.Guard) -> None:
    """Alice's evidence copied (a raw SQL edit) into Bob's grant does not become Bob's proof,
    nor does an old grant's evidence copied into a newer grant of the same subject."""
    shop.consent.grant("alice", "marketing_sms", notice=NOTICE, evidence={"channel": "app"})
    shop.consent.grant("bob", "marketing_sms", notice=NOTICE, evidence={"channel": "sms"})
    shop.consent.grant("alice", "analytics", notice=NOTICE, evidence={"channel": "web"})
    events = shop.store.tables.consent_events
    alice = shop._keyring.subject_scope("alice")
    bob = shop._keyring.subject_scope("bob")
    with shop.store.transaction() as connection:
        stolen = connection.execute(
            select(events.c.evidence).where(
                events.c.subject == alice, events.c.purpose == "marketing_sms"
            )
        ).scalar_one()
        connection.execute(
            events.update()
            .where(events.c.subject == bob, events.c.purpose == "marketing_sms")
            .values(evidence=stolen)
        )
        connection.execute(
            events.update()
            .where(events.c.subject == alice, events.c.purpose == "analytics")
            .values(evidence=stolen)
        )
    with pytest.raises(pg.DecryptionError):
        shop.consent.proof("bob", "marketing_sms", actor="tester")
    with pytest.raises(pg.DecryptionError):
        shop.consent.proof("alice", "analytics", actor="tester")
    assert shop.consent.proof("alice", "marketing_sms", actor="tester").evidence == {
        "channel": "app"
    }


def test_an_unpublished_notice_is_a_typed_error_that_says_what_to_do(shop: pg.Guard) -> None:
    """Issue 10: a bare ValueError (a 500 in a web app) became UnknownNotice, a PiiGuardError
    and LookupError whose message says to publish the notice; an unknown purpose is named
    first."""
    with pytest.raises(pg.UnknownNotice, match="publish") as caught:
        shop.consent.grant("u1", "marketing_sms", notice="2099-01")
    assert isinstance(caught.value, pg.PiiGuardError)
    assert isinstance(caught.value, LookupError)
    with pytest.raises(pg.UnknownPurpose):
        shop.consent.grant("u1", "telemarketing", notice="2099-01")


# Functions whose ``user_id`` sits in every place Python allows.
def _positional_only(user_id: str, /, **kw: object) -> None: ...
def _positional_only_default(
    a: str, user_id: str = "d", /, *rest: object, **kw: object
) -> None: ...
def _either(a: str, user_id: str, b: str = "b", **kw: object) -> None: ...
def _either_default(a: str, user_id: str = "d", *rest: object) -> None: ...
def _keyword_only(a: str, *rest: object, user_id: str, **kw: object) -> None: ...
def _keyword_only_default(*, user_id: str = "d", other: str = "o") -> None: ...


@settings(max_examples=300, deadline=None)
@given(
    function=st.sampled_from(
        [
            _positional_only,
            _positional_only_default,
            _either,
            _either_default,
            _keyword_only,
            _keyword_only_default,
        ]
    ),
    args=st.lists(st.sampled_from(["p0", "p1", "p2", "p3"]), max_size=4),
    kwargs=st.dictionaries(
        st.sampled_from(["user_id", "a", "b", "other", "extra"]), st.sampled_from(["k0", "k1"])
    ),
)
def test_the_subject_is_read_where_python_binds_it(
    function: Callable[..., None], args: list[str], kwargs: dict[str, str]
) -> None:
    """The decorator's fast reading of the subject equals inspect's binding for every call
    the function accepts; a call it refuses is refused (and never runs the function)."""
    from piiguard.consent.decorator import _subject_reader

    signature = inspect.signature(function)
    read = _subject_reader(function, "user_id")
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return
    bound.apply_defaults()
    assert read(*args, **kwargs) == bound.arguments["user_id"]
