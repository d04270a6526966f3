"""Every reveal names who and why (issue 11): no actor, no registered purpose, or a purpose
that does not cover the kind, and nothing is revealed; ``pg.acting`` names them per thread
and per task. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading

import pytest

import piiguard as pg
from piiguard.testing import allow_test_reveals
from tests.helpers import CANARY_PHONE, assert_no_canary, exception_text, piiguard_frames_text

CONTEXT = {"table": "customers", "field": "phone", "id": "u1"}


@pytest.fixture
def shop(guard: pg.Guard) -> pg.Guard:
    guard.consent.register(pg.Purpose("after_sales", basis="contract", kinds={"phone"}))
    return guard


def _reveals(guard: pg.Guard) -> list[pg.AuditEvent]:
    return list(guard.audit.events())


def test_a_reveal_without_an_actor_is_denied_and_opens_nothing(shop: pg.Guard) -> None:
    ciphertext = shop.encrypt(CANARY_PHONE, context=CONTEXT, subject="u1")
    for call in (
        lambda: shop.decrypt(ciphertext, context=CONTEXT),
        lambda: shop.decrypt(ciphertext, context=CONTEXT, purpose="after_sales"),
        lambda: shop.decrypt(ciphertext, context=CONTEXT, actor="", purpose="after_sales"),
        lambda: shop.decrypt_many([ciphertext], contexts=[CONTEXT]),
    ):
        with pytest.raises(pg.AccessDenied) as caught:
            call()
        assert caught.value.reason == "no_actor"
        assert isinstance(caught.value, PermissionError)
        assert_no_canary(exception_text(caught.value))
    with pytest.raises(pg.AccessDenied) as caught:
        shop.decrypt(ciphertext, context=CONTEXT, actor="cs-7")
    assert caught.value.reason == "no_purpose"
    assert not [e for e in _reveals(shop) if e.result == "ok"]


def test_an_unregistered_purpose_is_denied_and_the_denial_recorded(shop: pg.Guard) -> None:
    ciphertext = shop.encrypt(CANARY_PHONE, context=CONTEXT, subject="u1")
    with pytest.raises(pg.AccessDenied) as caught:
        shop.decrypt(ciphertext, context=CONTEXT, actor="cs-7", purpose="anything_goes")
    assert caught.value.reason == "unknown_purpose"
    (event,) = _reveals(shop)
    assert (event.actor, event.purpose, event.result) == ("cs-7", "anything_goes", "denied")


def test_a_purpose_must_cover_the_kind_the_context_names(shop: pg.Guard) -> None:
    card_context = {**CONTEXT, "field": "card", "kind": "bank_card"}
    ciphertext = shop.encrypt("6222021234567890128", context=card_context, subject="u1")
    with pytest.raises(pg.AccessDenied) as caught:
        shop.decrypt(ciphertext, context=card_context, actor="cs-7", purpose="after_sales")
    assert caught.value.reason == "kind_not_covered"
    phone_context = {**CONTEXT, "kind": "phone"}
    phone = shop.encrypt(CANARY_PHONE, context=phone_context)
    assert shop.decrypt(phone, context=phone_context, actor="cs-7", purpose="after_sales") == (
        CANARY_PHONE
    )
    with pytest.raises(pg.AccessDenied):
        shop.decrypt_many(
            [phone, ciphertext],
            contexts=[phone_context, card_context],
            actor="cs-7",
            purpose="after_sales",
        )


def test_a_redefined_purpose_that_drops_a_kind_stops_revealing_it(shop: pg.Guard) -> None:
    context = {**CONTEXT, "kind": "phone"}
    ciphertext = shop.encrypt(CANARY_PHONE, context=context)
    assert shop.decrypt(ciphertext, context=context, actor="cs-7", purpose="after_sales")
    shop.consent.register(pg.Purpose("after_sales", basis="contract", kinds={"email"}))
    with pytest.raises(pg.AccessDenied):
        shop.decrypt(ciphertext, context=context, actor="cs-7", purpose="after_sales")


def test_acting_names_actor_and_purpose_and_the_call_s_own_win(shop: pg.Guard) -> None:
    shop.consent.register(pg.Purpose("fraud_review", basis="legal_obligation", kinds={"phone"}))
    ciphertext = shop.encrypt(CANARY_PHONE, context=CONTEXT)
    with pg.acting(actor="svc:sms", purpose="after_sales"):
        assert pg.current_acting() == ("svc:sms", "after_sales")
        shop.decrypt(ciphertext, context=CONTEXT)
        shop.decrypt(ciphertext, context=CONTEXT, actor="cs-9", purpose="fraud_review")
        with pg.acting(actor="cs-1", purpose="fraud_review"):
            shop.decrypt(ciphertext, context=CONTEXT)
        shop.decrypt(ciphertext, context=CONTEXT)
    assert pg.current_acting() is None
    with pytest.raises(pg.AccessDenied):
        shop.decrypt(ciphertext, context=CONTEXT)
    assert [(e.actor, e.purpose) for e in _reveals(shop)] == [
        ("svc:sms", "after_sales"),
        ("cs-9", "fraud_review"),
        ("cs-1", "fraud_review"),
        ("svc:sms", "after_sales"),
    ]


@pytest.mark.parametrize("bad", ["", 7, None, "x" * 129, "cs\n7"])
def test_acting_refuses_bad_names(bad: object) -> None:
    with pytest.raises(pg.InvalidArgument), pg.acting(actor=bad, purpose="after_sales"):  # type: ignore[arg-type]
        pass
    assert pg.current_acting() is None


def test_threads_keep_their_own_actor(shop: pg.Guard) -> None:
    ciphertext = shop.encrypt(CANARY_PHONE, context=CONTEXT)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with pg.acting(actor=name, purpose="after_sales"):
                barrier.wait()
                for _ in range(5):
                    assert pg.current_acting() == (name, "after_sales")
                    shop.decrypt(ciphertext, context=CONTEXT)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"cs-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    counts: dict[str, int] = {}
    for event in _reveals(shop):
        counts[event.actor] = counts.get(event.actor, 0) + 1
    assert counts == {f"cs-{n}": 5 for n in range(4)}


def test_async_tasks_keep_their_own_actor(shop: pg.Guard) -> None:
    ciphertext = shop.encrypt(CANARY_PHONE, context=CONTEXT)

    async def handler(name: str) -> tuple[str, str] | None:
        with pg.acting(actor=name, purpose="after_sales"):
            await asyncio.sleep(0)
            shop.decrypt(ciphertext, context=CONTEXT)
            await asyncio.sleep(0)
            return pg.current_acting()

    async def main() -> list[tuple[str, str] | None]:
        return await asyncio.gather(*(handler(f"cs-{n}") for n in range(5)))

    assert asyncio.run(main()) == [(f"cs-{n}", "after_sales") for n in range(5)]
    assert sorted(e.actor for e in _reveals(shop)) == [f"cs-{n}" for n in range(5)]


def test_the_vault_and_fpe_reveals_name_who_and_why(shop: pg.Guard) -> None:
    shop.consent.register(
        pg.Purpose("refund", basis="contract", kinds={"bank_card"}, separate=True)
    )
    token = shop.vault.tokenize("6222021234567890128", subject="u1", kind="bank_card")
    with pytest.raises(pg.AccessDenied):
        shop.vault.detokenize(token)
    with pytest.raises(pg.AccessDenied) as caught:
        shop.vault.detokenize(token, actor="finance-1", purpose="after_sales")
    assert caught.value.reason == "kind_not_covered"
    assert shop.vault.detokenize(token, actor="finance-1", purpose="refund") == (
        "6222021234567890128"
    )
    fpe = shop.tokens.fpe(CANARY_PHONE, kind="phone")
    with pytest.raises(pg.AccessDenied):
        shop.tokens.fpe_decrypt(fpe, kind="phone")
    with pytest.raises(pg.AccessDenied):
        shop.tokens.fpe_decrypt(fpe, kind="phone", actor="svc:sms", purpose="refund")
    with pg.acting(actor="svc:sms", purpose="after_sales"):
        assert shop.tokens.fpe_decrypt(fpe, kind="phone") == CANARY_PHONE
        assert shop.tokens.fpe_decrypt_many([fpe, fpe], kind="phone") == [CANARY_PHONE] * 2
    ok = [(e.action, e.actor, e.kind, e.count) for e in _reveals(shop) if e.result == "ok"]
    assert ok == [
        ("detokenize", "finance-1", "bank_card", 1),
        ("fpe_decrypt", "svc:sms", "phone", 1),
        ("fpe_decrypt", "svc:sms", "phone", 2),
    ]


def test_export_names_who_and_why_and_records_each_value(shop: pg.Guard) -> None:
    shop.consent.register(
        pg.Purpose("access_request", basis="legal_obligation", kinds={"bank_card"}, separate=True)
    )
    shop.vault.tokenize("6222021234567890128", subject="u1", kind="bank_card")
    with pytest.raises(pg.AccessDenied):
        shop.export("u1")
    exported = shop.export("u1", actor="dpo-1", purpose="access_request")
    assert exported["vault"][0]["value"] == "6222021234567890128"
    actions = [(e.action, e.actor, e.purpose) for e in _reveals(shop)]
    assert actions == [
        ("detokenize", "dpo-1", "access_request"),
        ("export", "dpo-1", "access_request"),
    ]
    assert pg.current_acting() is None


def test_a_test_purpose_reveals_every_kind(guard: pg.Guard) -> None:
    allow_test_reveals(guard)
    token = guard.vault.tokenize("6222021234567890128", subject="u1", kind="bank_card")
    assert guard.vault.detokenize(token, actor="tester", purpose="testing")


def test_a_value_passed_as_purpose_or_kind_is_not_echoed(shop: pg.Guard) -> None:
    ciphertext = shop.encrypt(CANARY_PHONE, context=CONTEXT)
    with pytest.raises(pg.AccessDenied) as caught:
        shop.decrypt(ciphertext, context=CONTEXT, actor="cs-7", purpose=CANARY_PHONE)
    assert_no_canary(exception_text(caught.value))
    sneaky = {**CONTEXT, "kind": CANARY_PHONE}
    sealed = shop.encrypt(CANARY_PHONE, context=sneaky)
    with pytest.raises(pg.AccessDenied) as caught:
        shop.decrypt(sealed, context=sneaky, actor="cs-7", purpose="after_sales")
    # this test's own frame holds the context; piiguard's frames and the error must not
    assert_no_canary(str(caught.value) + repr(caught.value.args))
    assert_no_canary(piiguard_frames_text(caught.value))


def test_a_consent_proof_opens_evidence_only_for_a_named_actor_and_is_recorded(
    shop: pg.Guard,
) -> None:
    """The evidence in a proof (an IP address, a device) is the subject's information: a
    proof names who opens it, and the audit log has it before the proof returns."""
    shop.consent.register(pg.Purpose("marketing_sms", basis="consent", kinds={"phone"}))
    shop.consent.publish_notice("2026-11", text="notice", purposes=["marketing_sms"])
    shop.consent.grant("u1", "marketing_sms", notice="2026-11", evidence={"ip": "203.0.113.9"})
    with pytest.raises(pg.AccessDenied) as caught:
        shop.consent.proof("u1", "marketing_sms")
    assert caught.value.reason == "no_actor"
    with pg.acting(actor="dpo", purpose="after_sales"):
        proof = shop.consent.proof("u1", "marketing_sms")
    assert proof.evidence == {"ip": "203.0.113.9"}
    (event,) = shop.audit.events(action="consent_proof")
    assert (event.actor, event.subjects) == ("dpo", (shop.audit.pseudonym("u1"),))
    assert event.detail["context"] == {"purpose": "marketing_sms"}
    assert shop.audit.scope(actors=["dpo"]).subjects == 1
