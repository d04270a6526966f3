"""Logs without PII (issue 11): pg.logging.redact through structlog's JSON, console and logfmt
renderers, and RedactingFilter through stdlib logging; canaries at every level."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

import piiguard as pg
from tests.helpers import CANARY_ID, CANARY_PHONE, assert_no_canary
from tests.strategies import cards, mobiles, resident_ids

CARD = "6222021234567890128"

RENDERERS = {
    "json": structlog.processors.JSONRenderer(),
    "console": structlog.dev.ConsoleRenderer(colors=False),
    "logfmt": structlog.processors.LogfmtRenderer(),
    "keyvalue": structlog.processors.KeyValueRenderer(),
}


@pytest.fixture(autouse=True)
def _structlog_reset() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def _fail(error: Exception) -> None:
    raise error


def _rendered(renderer: Any, **event: Any) -> str:
    out = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.format_exc_info, pg.logging.redact, renderer],
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    structlog.get_logger().info(**event)
    return out.getvalue()


@pytest.mark.parametrize("renderer", sorted(RENDERERS))
def test_structlog_renderers_print_no_canary(renderer: str) -> None:
    class Customer(pg.PIIModel):
        phone: pg.Phone
        id_number: pg.CNResidentID

    customer = Customer(phone=CANARY_PHONE, id_number=CANARY_ID)
    text = _rendered(
        RENDERERS[renderer],
        event=f"refund to {CARD} for {CANARY_PHONE}",
        phone=pg.Phone(CANARY_PHONE),
        mobile=int(CANARY_PHONE),
        id_card=CANARY_ID,
        nested={"deep": [{"note": f"id {CANARY_ID}"}, (CANARY_PHONE,)], "card": CARD},
        customer=customer.model_dump(),
        error=ValueError(f"bad phone {CANARY_PHONE}"),
    )
    assert_no_canary(text)
    assert CARD not in text
    assert "138****5678" in text  # masked, not dropped


def test_an_exception_logged_with_its_traceback_is_redacted() -> None:
    try:
        _fail(RuntimeError(f"card {CARD} declined for {CANARY_PHONE}"))
    except RuntimeError:
        text = _rendered(RENDERERS["json"], event="payment failed", exc_info=True)
    assert_no_canary(text)
    assert CARD not in text
    assert "RuntimeError" in text


def test_unknown_fields_are_redacted_by_content_and_known_ones_masked_whole() -> None:
    event = pg.logging.redact(
        None, "info", {"event": "x", "comment": f"call {CANARY_PHONE}", "card": "not-a-card"}
    )
    assert event == {"event": "x", "comment": "call 138****5678", "card": "****"}
    assert pg.logging.redact(None, "info", {"phone": None}) == {"phone": None}


def test_deep_structures_are_cut() -> None:
    deep: Any = CANARY_PHONE
    for _ in range(50):
        deep = [deep]
    assert_no_canary(repr(pg.logging.redact_value(deep)))


@pytest.fixture
def stdlib_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(order)s"))
    handler.addFilter(pg.logging.RedactingFilter())
    logger = logging.getLogger("piiguard-test-logging")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)


def test_stdlib_logging_through_the_filter_prints_no_canary(
    stdlib_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = stdlib_logger
    logger.info("customer %s called from %s", CANARY_ID, CANARY_PHONE, extra={"order": "o1"})
    logger.info("card %s", CARD, extra={"order": {"phone": CANARY_PHONE}})
    try:
        _fail(ValueError(f"id {CANARY_ID}"))
    except ValueError:
        logger.exception("failed for %s", CANARY_PHONE, extra={"order": "o2"})
    logger.info("too few %s %s", CANARY_PHONE, extra={"order": "o3"})  # bad args: not a leak
    text = out.getvalue()
    assert_no_canary(text)
    assert CARD not in text
    assert "ValueError" in text
    assert "138****5678" in text


@settings(max_examples=100, deadline=None)
@given(
    value=st.one_of(mobiles, resident_ids(), cards),
    prefix=st.text(max_size=5),
    suffix=st.sampled_from(["", " ", "。", ", thanks"]),
)
def test_any_valid_value_in_a_message_is_masked(value: str, prefix: str, suffix: str) -> None:
    """Whatever surrounds it, a valid value written in a log message never survives whole."""
    rendered = pg.logging.redact(None, "info", {"event": f"{prefix} {value}{suffix}"})["event"]
    assert value not in rendered
