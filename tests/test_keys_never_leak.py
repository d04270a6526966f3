"""Keys are handles (issue 9): no failure of the public API leaves key bytes where an error
tracker looks.

Each failing call below is captured with ``traceback.TracebackException(capture_locals=True)``
(what Sentry and friends record); the rendering must hold no KEK, epoch, root, derived or data
key bytes (raw, hex or base64) and no canary value.
"""

from __future__ import annotations

import base64
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

import piiguard as pg
from piiguard.keys import LocalKEK
from piiguard.testing import allow_test_reveals
from tests.helpers import CANARY_ID, CANARY_PHONE, assert_no_canary

PACKAGE = str(Path(pg.__file__).parent)


def recorded(error: BaseException) -> str:
    """What an error tracker records of an error raised by piiguard: every message in the
    chain, and the locals of every piiguard frame (the caller's own frames are the caller's)."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [type(current).__name__, str(current), repr(current.args)]
        formatted = traceback.TracebackException.from_exception(
            current, capture_locals=True, limit=None
        )
        parts += [
            f"{frame.filename}:{frame.name} {frame.locals}"
            for frame in formatted.stack
            if frame.filename.startswith(PACKAGE)
        ]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


CONTEXT = {"table": "customers", "field": "phone"}
CARD = "6222021234567890128"


def _forms(key: bytes) -> list[str]:
    raw = bytes(key)
    return [
        repr(raw)[2:-1],
        raw.hex(),
        raw.hex().upper(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]


def _all_keys(guard: pg.Guard, kek_path: Path) -> dict[str, bytes]:
    """Every key the Guard holds or can open, by where it came from."""
    content = kek_path.read_bytes()
    keys = {"kek": base64.b64decode(content.split(b"\n", 1)[1].strip())}
    keyring = guard._keyring
    holder = LocalKEK.from_file(kek_path).epoch_keys
    epochs = guard.store.tables.epochs
    with guard.store.engine.connect() as connection:
        rows = connection.execute(select(epochs).where(epochs.c.status == "active")).all()
    for row in rows:
        context = {"piiguard": "epoch-key", "epoch": str(row.epoch)}
        keys[f"epoch {row.epoch}"] = holder.open_epoch_key(row.ref, row.sealed, context)
    for (scope, purpose), (_, secret) in keyring._roots._roots.items():
        keys[f"root {purpose} {scope[:12]}"] = bytes(secret)
    for (purpose, label, _), (_, secret) in keyring._roots._derived.items():
        keys[f"derived {purpose} {label!r}"] = bytes(secret)
    for key_id, cached in keyring._data._cache.items():
        keys[f"data key {key_id}"] = bytes(cached.secret)
    return keys


@pytest.fixture
def warm(tmp_path: Path, store_target: tuple[str, str | None]) -> tuple[pg.Guard, Path]:
    """A Guard that has used every kind of key once."""
    url, schema = store_target
    kek_path = tmp_path / "kek.key"
    guard = pg.Guard.open(url, kek=LocalKEK.generate(kek_path), schema=schema)
    allow_test_reveals(guard)
    TARGETS[id(guard)] = (url, schema)
    guard.encrypt(CANARY_PHONE, context=CONTEXT, subject="u1")
    guard.encrypt(CANARY_PHONE, context=CONTEXT)
    guard.blind_index(CANARY_PHONE, field="phone")
    guard.blind_index(CANARY_PHONE, field="phone", subject="u1")
    guard.encrypt_deterministically(CANARY_PHONE, context=CONTEXT)
    guard.tokens.token(CANARY_PHONE, kind="phone")
    guard.tokens.fpe(CANARY_PHONE, kind="phone")
    guard.tokens.fpe(CARD, kind="bank_card")
    guard.vault.tokenize(CANARY_PHONE, subject="u1", kind="phone")
    guard.consent.register(pg.Purpose("marketing_sms", kinds={"phone"}))
    guard.consent.publish_notice("n1", purposes=["marketing_sms"])
    guard.consent.grant("u1", "marketing_sms", notice="n1", evidence={"ip": "198.51.100.7"})
    return guard, kek_path


def _shredded(guard: pg.Guard) -> object:
    text = guard.encrypt(CANARY_PHONE, context=CONTEXT, subject="gone")
    guard.shred("gone")
    return guard.decrypt(text, context=CONTEXT, actor="tester", purpose="testing")


def _tampered(guard: pg.Guard) -> object:
    text = guard.encrypt(CANARY_PHONE, context=CONTEXT, subject="u1")
    return guard.decrypt(
        text[:-2] + ("A" if text[-2] != "A" else "B") + text[-1],
        context=CONTEXT,
        actor="tester",
        purpose="testing",
    )


def _moved(guard: pg.Guard) -> object:
    text = guard.encrypt_deterministically(CANARY_PHONE, context=CONTEXT)
    return guard.decrypt(
        text, context={**CONTEXT, "field": "email"}, actor="tester", purpose="testing"
    )


def _damaged_kek(guard: pg.Guard, kek_path: Path) -> object:
    damaged = kek_path.with_name("damaged.key")
    damaged.write_bytes(kek_path.read_bytes()[:-6] + b"!!!!\n")
    damaged.chmod(0o600)
    return LocalKEK.from_file(damaged)


def _wrong_kek(guard: pg.Guard, kek_path: Path) -> object:
    """Open the same store with another KEK: its epoch keys do not open."""
    url, schema = TARGETS[id(guard)]
    other = LocalKEK.generate(kek_path.with_name("other.key"))
    text = guard.encrypt(CANARY_PHONE, context=CONTEXT)
    with pg.Guard.open(url, kek=other, schema=schema) as wrong:
        return wrong.decrypt(text, context=CONTEXT, actor="tester", purpose="testing")


TARGETS: dict[int, tuple[str, str | None]] = {}

FAILING: dict[str, Callable[[pg.Guard, Path], object]] = {
    "decrypt garbage": lambda g, _: g.decrypt(
        "AAAA" + CANARY_PHONE, context=CONTEXT, actor="tester", purpose="testing"
    ),
    "decrypt shredded": lambda g, _: _shredded(g),
    "decrypt tampered": lambda g, _: _tampered(g),
    "decrypt moved deterministic": lambda g, _: _moved(g),
    "decrypt_many, a bad context after a good one": lambda g, _: g.decrypt_many(
        [g.encrypt(CANARY_PHONE, context=CONTEXT)] * 2,
        contexts=[CONTEXT, {"table": 1}],  # type: ignore[dict-item]
        actor="tester",
        purpose="testing",
    ),
    "encrypt non-str": lambda g, _: g.encrypt(13812345678, context=CONTEXT),  # type: ignore[arg-type]
    "encrypt bad context": lambda g, _: g.encrypt(CANARY_PHONE, context={"a": 1}),  # type: ignore[dict-item]
    "deterministic non-str": lambda g, _: g.encrypt_deterministically(
        CANARY_PHONE.encode(),  # type: ignore[arg-type]
        context=CONTEXT,
    ),
    "blind_index bits": lambda g, _: g.blind_index(CANARY_PHONE, field="phone", bits=7),
    "blind_index non-str": lambda g, _: g.blind_index(13812345678, field="phone"),  # type: ignore[arg-type]
    "token_many one invalid": lambda g, _: g.tokens.token_many(
        [CANARY_PHONE, CANARY_ID], kind="phone"
    ),
    "fpe wrong kind": lambda g, _: g.tokens.fpe(CANARY_ID, kind="phone"),
    "fpe long tweak": lambda g, _: g.tokens.fpe(CANARY_PHONE, kind="phone", tweak=bytes(300)),
    "fpe_decrypt card tweak": lambda g, _: g.tokens.fpe_decrypt(
        CARD, kind="bank_card", tweak=bytes(300), actor="tester", purpose="testing"
    ),
    "vault invalid": lambda g, _: g.vault.tokenize(CANARY_ID, subject="u1", kind="phone"),
    "vault unknown token": lambda g, _: g.vault.detokenize(
        "tok_" + CANARY_PHONE, actor="tester", purpose="testing"
    ),
    "consent grant bad id": lambda g, _: g.consent.grant(
        "u2", "marketing_sms", notice="n1", id_number=CANARY_ID[:-1] + "3"
    ),
    "erase empty subject": lambda g, _: g.erase(""),
    "export non-str": lambda g, _: g.export(13812345678, actor="tester", purpose="testing"),  # type: ignore[arg-type]
    "track unknown category": lambda g, _: g.retention.track("nope", "r1", subject="u1"),
    "damaged KEK file": _damaged_kek,
    "consent filter non-str": lambda g, _: list(
        g.consent.filter(["u1", 13812345678], "marketing_sms")  # type: ignore[list-item]
    ),
    "wrong KEK": _wrong_kek,
}


@pytest.mark.parametrize("name", list(FAILING))
def test_no_failure_leaves_key_bytes_or_values_in_its_frames(
    warm: tuple[pg.Guard, Path], name: str
) -> None:
    guard, kek_path = warm
    before = _all_keys(guard, kek_path)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - each call fails its own way
        FAILING[name](guard, kek_path)
    assert isinstance(caught.value, pg.PiiGuardError | ValueError | TypeError)
    text = recorded(caught.value)
    assert "piiguard" in text or name in {"erase empty subject", "export non-str"}
    assert_no_canary(text)
    keys = {**before, **_all_keys(guard, kek_path)}
    assert len(keys) >= 8
    for origin, key in keys.items():
        for form in _forms(key):
            assert form not in text, f"{origin} leaked"
    guard.close()


def test_a_subject_id_with_a_lone_surrogate_is_an_id_like_any_other(
    warm: tuple[pg.Guard, Path],
) -> None:
    """Issue 9 found ``consent.filter`` raising UnicodeEncodeError (subject in its args, the
    root key in a closure) on a lone surrogate: such an id now pseudonymises like any other."""
    guard, _ = warm
    odd = "\ud800u3"
    guard.consent.grant(odd, "marketing_sms", notice="n1")
    assert guard.consent.check(odd, "marketing_sms")
    assert list(guard.consent.filter(["u1", odd, "u9"], "marketing_sms")) == ["u1", odd]
    guard.close()


class FlakySink:
    """An audit sink that records one reveal, then fails (its store went down)."""

    def __init__(self) -> None:
        self.calls = 0

    def record(self, event: object) -> None:
        self.calls += 1
        if self.calls >= 2:
            raise OSError("audit store unavailable")


def test_an_access_request_that_fails_half_way_keeps_no_value(tmp_path: Path) -> None:
    """vault.entries (and so export) reveals entry by entry; when the audit sink fails on the
    second, the first value is not left in the frames (found by an attack review)."""
    guard = pg.Guard.open(
        f"sqlite:///{tmp_path / 'p.db'}",
        kek=LocalKEK.generate(tmp_path / "kek.key"),
        events=FlakySink(),
    )
    allow_test_reveals(guard)
    guard.vault.tokenize(CANARY_PHONE, subject="u1", kind="phone")
    guard.vault.tokenize("13912345678", subject="u1", kind="phone")
    with pytest.raises(pg.EventNotRecorded, match="OSError") as caught:
        guard.vault.entries("u1", actor="tester", purpose="testing")
    text = recorded(caught.value)
    assert_no_canary(text)
    assert "13912345678" not in text
    guard.close()


@pytest.mark.parametrize(
    "call",
    [
        lambda g: g.erase(CANARY_ID),
        lambda g: g.export(CANARY_ID, actor="tester", purpose="testing"),
        lambda g: g.shred(CANARY_ID),
        lambda g: g.encrypt("v", context=CONTEXT, subject=CANARY_ID),
        lambda g: g.encrypt_many(["v"], contexts=[CONTEXT], subject=CANARY_ID),
        lambda g: g.blind_index("v", field="f", subject=CANARY_ID),
        lambda g: g.encrypt_deterministically("v", context=CONTEXT, subject=CANARY_ID),
    ],
    ids=["erase", "export", "shred", "encrypt", "encrypt_many", "blind_index", "deterministic"],
)
def test_a_store_outage_leaves_no_subject_id_in_the_frames(
    tmp_path: Path, call: Callable[[pg.Guard], object]
) -> None:
    """Subject ids are often phones or ID numbers: when the store fails under a call that
    names one, the id is not in the locals of piiguard's frames (found by an attack review)."""
    home = tmp_path / "db"
    home.mkdir()
    guard = pg.Guard.open(
        f"sqlite:///{home / 'p.db'}", kek=LocalKEK.generate(tmp_path / "kek.key"), key_epoch=None
    )
    allow_test_reveals(guard)
    guard.encrypt("x", context=CONTEXT)
    guard.store.engine.dispose()  # the next call connects again...
    (home / "p.db").rename(tmp_path / "moved.db")  # ...to a store that is gone
    with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever the outage raises
        call(guard)
    assert_no_canary(recorded(caught.value))


SURROGATE = CANARY_PHONE + "\ud800"  # what json.loads('"13812345678\\ud800"') yields


@pytest.mark.parametrize(
    "call",
    [
        lambda g: g.encrypt(SURROGATE, context=CONTEXT),
        lambda g: g.encrypt_bytes(SURROGATE, context=CONTEXT),
        lambda g: g.encrypt_many([SURROGATE], contexts=[CONTEXT]),
        lambda g: g.encrypt_deterministically(SURROGATE, context=CONTEXT),
        lambda g: g.blind_index(SURROGATE, field="phone"),
        lambda g: g.vault.tokenize(SURROGATE, subject="u1", kind="personal_info"),
    ],
    ids=["encrypt", "encrypt_bytes", "encrypt_many", "deterministic", "blind_index", "vault"],
)
def test_a_lone_surrogate_is_refused_without_the_value(
    warm: tuple[pg.Guard, Path], call: Callable[[pg.Guard], object]
) -> None:
    """UnicodeEncodeError carries the whole text in its args; piiguard refuses such a value
    with a ValueError that holds none of it (issue 10)."""
    guard, _ = warm
    with pytest.raises(ValueError, match="surrogate") as caught:
        call(guard)
    assert not isinstance(caught.value, UnicodeError)
    text = recorded(caught.value)
    assert_no_canary(text)
    guard.close()


def test_keyed_tokens_take_any_text(warm: tuple[pg.Guard, Path]) -> None:
    """A keyed token of a text holding a lone surrogate is a token like any other (its
    bytes are encoded losslessly), not an error carrying the text."""
    guard, _ = warm
    first = guard.tokens.token("name\ud800", kind="personal_info")
    assert first == guard.tokens.token("name\ud800", kind="personal_info")
    assert first != guard.tokens.token("name", kind="personal_info")
    guard.close()
