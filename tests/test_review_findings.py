"""What an attack review of issue 10's changes found, each pinned by a test."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import piiguard as pg
from piiguard.keys import LocalKEK
from piiguard.testing import throwaway_guard
from piiguard.tokens import FF1
from tests.helpers import CANARY_ID, CANARY_PHONE, assert_no_canary, piiguard_frames_text

CONTEXT = {"table": "customers", "column": "phone"}


class CancellingSink:
    """A sink whose record() is cancelled (asyncio), a BaseException, not an Exception."""

    def record(self, event: object) -> None:
        raise asyncio.CancelledError


def test_a_cancelled_sink_is_re_raised_without_the_value() -> None:
    with throwaway_guard(events=CancellingSink()) as guard:
        text = guard.encrypt(CANARY_PHONE, context=CONTEXT)
        token = guard.vault.tokenize(CANARY_PHONE, subject="u1", kind="phone")
        calls: list[Callable[[], object]] = [
            lambda: guard.decrypt(text, context=CONTEXT, actor="tester", purpose="testing"),
            lambda: guard.decrypt_many(
                [text], contexts=[CONTEXT], actor="tester", purpose="testing"
            ),
            lambda: guard.vault.detokenize(token, actor="tester", purpose="testing"),
        ]
        for call in calls:
            with pytest.raises(asyncio.CancelledError) as caught:
                call()
            assert_no_canary(piiguard_frames_text(caught.value))


def test_defaults_of_pii_fields_are_validated() -> None:
    class WithDefault(pg.PIIModel):
        phone: pg.Phone = "13812345678"  # type: ignore[assignment]

    record = WithDefault()
    assert type(record.phone) is pg.Phone
    assert CANARY_PHONE not in repr(record)
    assert type(WithDefault.model_construct().phone) is pg.Phone


def test_a_failed_model_copy_keeps_no_input_in_its_frames() -> None:
    class Customer(pg.PIIModel):
        phone: pg.Phone
        note: str = ""

    record = Customer(phone="13912345678")
    with pytest.raises(ValidationError) as caught:
        record.model_copy(update={"note": "call " + CANARY_PHONE, "phone": int(CANARY_PHONE)})
    assert_no_canary(piiguard_frames_text(caught.value))


def test_batch_detection_keeps_no_text_in_its_frames() -> None:
    batch = ["call " + CANARY_PHONE, CANARY_ID, None]
    for call in (pg.redact_many, pg.scan_many):
        with pytest.raises(pg.InvalidArgument) as caught:
            call(batch)  # type: ignore[arg-type]
        assert_no_canary(piiguard_frames_text(caught.value))


@pytest.mark.parametrize("name", ["李·", "欧阳·", "王\u0301"])
def test_names_whose_rest_is_not_letters_are_masked_whole(name: str) -> None:
    assert pg.is_valid(name, "person_name")
    assert pg.mask(name, "person_name") == "*" * len(name)


@pytest.mark.parametrize("url", ["nosuchdialect://x", "mysql://u:s3cret@h/db", "::not a url::"])
def test_an_unusable_url_is_a_store_error(url: str, kek: LocalKEK) -> None:
    with pytest.raises(pg.StoreError) as caught:
        pg.Guard.open(url, kek=kek)
    assert caught.value.reason == "unusable_url"
    assert "s3cret" not in piiguard_frames_text(caught.value)


def test_key_file_paths_are_checked_and_never_echoed(tmp_path: Path) -> None:
    base = str(tmp_path)
    for path in (
        b"k.key",
        13812345678,
        f"{base}/{CANARY_PHONE}\x00",
        f"{base}/{CANARY_PHONE}\ud800",
    ):
        for call in (LocalKEK.generate, LocalKEK.from_file):
            with pytest.raises(pg.InvalidArgument) as caught:
                call(path)  # type: ignore[arg-type]
            assert_no_canary(piiguard_frames_text(caught.value))
    with pytest.raises(pg.KeyProviderError) as missing:
        LocalKEK.from_file(tmp_path / CANARY_PHONE)
    assert CANARY_PHONE not in str(missing.value)


def test_ff1_batches_must_be_sequences() -> None:
    with pytest.raises(pg.InvalidArgument) as caught:
        FF1(bytes(16)).encrypt_many(int(CANARY_PHONE))  # type: ignore[arg-type]
    assert_no_canary(piiguard_frames_text(caught.value))


def test_a_wrapping_decorator_cannot_redirect_the_subject() -> None:
    """inspect.signature follows __wrapped__: a wrapper that calls the function for someone
    else would have the subject checked from the wrapped signature. The wrapper's own
    signature is what the call binds, so decorating it fails at once."""

    def inject(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return function("bob", *args[1:], **kwargs)

        return wrapper

    with throwaway_guard() as guard, pytest.raises(TypeError, match="user_id"):

        @guard.requires_consent("anything")
        @inject
        def send(user_id: str) -> None: ...


def test_a_value_of_a_wrong_type_is_unknown_not_a_store_failure(guard: pg.Guard) -> None:
    """PostgreSQL refused the parameter's type and it came out as StoreError('unavailable')."""
    for bad in (b"marketing", 7, 1.5):
        with pytest.raises(pg.UnknownPurpose):
            guard.consent.check("u1", bad)  # type: ignore[arg-type]
        with pytest.raises(pg.TokenNotFound):
            guard.vault.detokenize(bad, actor="tester", purpose="testing")  # type: ignore[arg-type]
    with pytest.raises(pg.InvalidArgument):
        guard.vault.detokenize("tok", actor=b"a", purpose="p")  # type: ignore[arg-type]


def test_another_process_opening_and_closing_the_store_never_crashes_a_check(
    tmp_path: Path, kek: LocalKEK
) -> None:
    """A Guard's change watch must never touch SQLite's -shm file itself (closing a
    descriptor on it drops the process's locks): other connections come and go freely."""
    path = tmp_path / "s.db"
    with pg.Guard.open(f"sqlite:///{path}", kek=kek) as guard:
        guard.consent.register(pg.Purpose("sms", basis="consent", kinds={"phone"}))
        guard.consent.publish_notice("n1", purposes=["sms"])
        guard.consent.grant("u1", "sms", notice="n1")
        for _ in range(200):
            other = sqlite3.connect(path)
            other.execute("SELECT 1 FROM sqlite_master").fetchall()
            other.close()
            assert guard.consent.check("u1", "sms")


def test_a_keyword_the_call_does_not_take_is_not_echoed() -> None:
    """Python's binding message quotes an unexpected keyword, which a caller may have built
    from data (**{value: ...}); piiguard keeps the message only when it quotes parameters."""
    with throwaway_guard() as guard:
        text = guard.encrypt("x", context=CONTEXT)
        with pytest.raises(pg.InvalidArgument) as caught:
            guard.decrypt(
                text, context=CONTEXT, **{CANARY_PHONE: "1"}, actor="tester", purpose="testing"
            )
        assert_no_canary(piiguard_frames_text(caught.value))
        assert "does not take" in str(caught.value)

        @guard.requires_consent("anything")
        def send(user_id: str) -> None: ...

        with pytest.raises(pg.InvalidArgument) as caught:
            send(**{CANARY_PHONE: "1"})
        assert_no_canary(piiguard_frames_text(caught.value))
        with pytest.raises(pg.InvalidArgument, match="user_id"):
            send()  # type: ignore[call-arg]  # a missing parameter is still named


def test_binding_messages_keep_only_the_functions_own_parameter_names() -> None:
    from piiguard.errors import binding_error

    def send(user_id: str) -> None: ...

    made_up = TypeError(f"send() got an unexpected keyword argument '{CANARY_PHONE}'")
    assert CANARY_PHONE not in str(binding_error(send, made_up))
    missing = TypeError("missing a required argument: 'user_id'")
    assert str(binding_error(send, missing)).endswith("missing a required argument: 'user_id'")
