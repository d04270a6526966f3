"""Canary values never appear in reprs, errors, tracebacks' locals or logs.

Error trackers record the repr of every local of every frame (sentry's
include_local_variables): an error raised by piiguard must carry no value in its message, its
args, its chain, or the locals of piiguard's frames.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import piiguard as pg
from piiguard.validate import upgrade_legacy_cn_id
from tests.helpers import (
    CANARY_ID,
    CANARY_PHONE,
    assert_no_canary,
    exception_text,
    piiguard_frames_text,
)


class Customer(pg.PIIModel):
    phone: pg.Phone
    id_number: pg.CNResidentID


# Each call fails on input that contains a canary.
FAILING_CALLS: dict[str, Callable[[], object]] = {
    "Phone()": lambda: pg.Phone(CANARY_PHONE + "9"),
    "CNResidentID()": lambda: pg.CNResidentID(CANARY_ID[:-1] + "3"),
    "normalise(id)": lambda: pg.normalise(CANARY_ID[:-1] + "3", "cn_resident_id"),
    "normalise(phone)": lambda: pg.normalise(CANARY_PHONE + "9", "phone"),
    "kind.normalise": lambda: pg.get_kind("bank_card").normalise(CANARY_ID),
    "mask(unknown kind)": lambda: pg.mask(CANARY_PHONE, "telephone"),
    "mask(swapped args)": lambda: pg.mask("phone", CANARY_PHONE),
    "mask(int)": lambda: pg.mask(int(CANARY_PHONE), "phone"),  # type: ignore[arg-type]
    "mask(bytes)": lambda: pg.mask(CANARY_ID.encode(), "cn_resident_id"),  # type: ignore[arg-type]
    "mask(list)": lambda: pg.mask(list(CANARY_ID), "cn_resident_id"),  # type: ignore[arg-type]
    "mask(bytes phone)": lambda: pg.mask(CANARY_PHONE.encode(), "phone"),  # type: ignore[arg-type]
    "mask(bytes health)": lambda: pg.mask(CANARY_ID.encode(), "health"),  # type: ignore[arg-type]
    "mask_many(unknown kind)": lambda: pg.mask_many([CANARY_PHONE], "telephone"),
    "mask_many(int)": lambda: pg.mask_many([CANARY_PHONE, int(CANARY_PHONE)], "phone"),  # type: ignore[list-item]
    "upgrade_legacy_cn_id": lambda: upgrade_legacy_cn_id(CANARY_ID),
    "upgrade_legacy_cn_id(bad date)": lambda: upgrade_legacy_cn_id("110105491232002"),
    "PIIModel()": lambda: Customer(phone=CANARY_PHONE + "9", id_number=CANARY_ID[:-1] + "3"),
    "PIIModel(missing)": lambda: Customer(phone=CANARY_PHONE),  # type: ignore[call-arg]
    "model_validate": lambda: Customer.model_validate(
        {"phone": CANARY_PHONE, "id_number": CANARY_ID[:-1] + "3"}
    ),
    "model_validate_json": lambda: Customer.model_validate_json(
        json.dumps({"phone": CANARY_PHONE, "id_number": CANARY_ID[:-1] + "3"})
    ),
    "model_validate_strings": lambda: Customer.model_validate_strings(
        {"phone": CANARY_PHONE, "id_number": CANARY_ID[:-1] + "3"}
    ),
    "MaskingPolicy(unknown role)": lambda: pg.MaskingPolicy({}).rule_for("phone", CANARY_PHONE),
}


@pytest.mark.parametrize("call", FAILING_CALLS.values(), ids=FAILING_CALLS.keys())
def test_errors_carry_no_canary_anywhere(call: Callable[[], object]) -> None:
    """Message, args, chained errors and the locals of every frame are canary-free."""
    with pytest.raises((pg.PiiGuardError, ValidationError, TypeError)) as caught:
        call()
    text = exception_text(caught.value)
    assert_no_canary(text)


def test_validation_error_in_every_form_is_canary_free() -> None:
    """str, repr, errors() and json() of a PIIModel's error hold no input."""
    with pytest.raises(ValidationError) as caught:
        Customer(phone=CANARY_PHONE + "9", id_number=CANARY_ID[:-1] + "3")
    error = caught.value
    assert_no_canary(str(error) + repr(error) + repr(error.errors()) + error.json())


def test_reprs_of_values_models_and_findings_are_canary_free() -> None:
    """Every object that holds or locates a canary shows it masked."""
    customer = Customer(phone=CANARY_PHONE, id_number=CANARY_ID)
    shown = [
        repr(customer),
        str(customer),
        repr(customer.phone),
        repr(customer.id_number),
        repr([customer.phone]),
        repr(pg.scan(f"x {CANARY_PHONE} {CANARY_ID}")),
        repr(pg.mask_model(customer)),
        repr(pg.inventory(customer)),
    ]
    assert_no_canary("".join(shown))


def test_log_records_of_values_and_models_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    """A model logged with %s or %r, and a value logged with %r, show masked."""
    customer = Customer(phone=CANARY_PHONE, id_number=CANARY_ID)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("shop").warning(
            "customer %s / %r phone %r", customer, customer, customer.phone
        )
    rendered = structlog.processors.KeyValueRenderer()(None, "info", {"customer": customer})
    assert_no_canary(caplog.text + str(rendered))


@given(st.text(min_size=1, max_size=30))
def test_no_error_message_echoes_its_input(text: str) -> None:
    """For any input, the InvalidPII of any kind never contains the input (when the input
    is not itself part of the fixed message)."""
    for kind in pg.BUILTIN_KINDS.values():
        result = kind.check(CANARY_PHONE + text)
        if isinstance(result, pg.InvalidPII):
            assert CANARY_PHONE not in str(result)


def test_ff1_refusals_keep_the_text_out_of_every_frame() -> None:
    """A character outside the alphabet: no frame of the error holds the text."""
    from piiguard.tokens import FF1

    ff1 = FF1(b"k" * 16)
    for call in (
        lambda: ff1.encrypt(CANARY_PHONE + "a"),
        lambda: ff1.decrypt(CANARY_PHONE + "a"),
        lambda: ff1.encrypt_many(["1234567", CANARY_PHONE + "a"]),
        lambda: ff1.decrypt_many([CANARY_PHONE + "a"]),
    ):
        with pytest.raises(ValueError, match="alphabet") as caught:
            call()
        assert_no_canary(exception_text(caught.value))


def test_consent_refusals_keep_id_numbers_and_evidence_out_of_every_frame(tmp_path: object) -> None:
    """An invalid ID number or malformed evidence (an IP among it) is refused without any frame
    of the error holding them."""
    from piiguard.keys import LocalKEK

    with pg.Guard.open(
        f"sqlite:///{tmp_path}/c.db", kek=LocalKEK.generate(f"{tmp_path}/k.key")
    ) as guard:
        guard.consent.register(pg.Purpose("marketing_sms", kinds={"phone"}))
        guard.consent.publish_notice("n1", purposes=["marketing_sms"])
        bad_evidence = {"phone": CANARY_PHONE, "bad key": "x"}
        calls: list[Callable[[], object]] = [
            lambda: guard.consent.grant(
                "u1", "marketing_sms", notice="n1", id_number=CANARY_ID[:-1] + "3"
            ),
            lambda: guard.consent.grant("u1", "marketing_sms", notice="n1", evidence=bad_evidence),
            lambda: guard.consent.grant_many(
                "u1", ["marketing_sms"], notice="n1", evidence=bad_evidence
            ),
            lambda: guard.consent.withdraw("u1", "marketing_sms", evidence=bad_evidence),
        ]
        for call in calls:
            with pytest.raises((pg.InvalidPII, ValueError)) as caught:
                call()
            assert_no_canary(piiguard_frames_text(caught.value))
