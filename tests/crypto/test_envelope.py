"""Field encryption through a Guard, on SQLite and PostgreSQL: the promises of DESIGN §2."""

from __future__ import annotations

import base64
import hashlib
import os
import pydoc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import piiguard as pg
from piiguard.crypto import wire
from piiguard.crypto._nonces import random_nonce
from piiguard.crypto.aad import encode_context
from piiguard.events import ListSink, Rows
from piiguard.keys import LocalKEK
from piiguard.testing import allow_test_reveals
from tests.conftest import StoreTarget
from tests.helpers import CANARY_ID, exception_text, piiguard_frames_text

CONTEXT = {"table": "customers", "field": "phone", "id": "u1"}
PHONE = "13812345678"
FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)


def test_round_trip_in_both_forms(guard: pg.Guard) -> None:
    """Text and bytes forms decrypt to the value, with and without a subject."""
    assert (
        guard.decrypt(
            guard.encrypt(PHONE, context=CONTEXT),
            context=CONTEXT,
            actor="tester",
            purpose="testing",
        )
        == PHONE
    )
    as_bytes = guard.encrypt_bytes(PHONE, context=CONTEXT, subject="u1")
    assert guard.decrypt(as_bytes, context=CONTEXT, actor="tester", purpose="testing") == PHONE
    assert (
        guard.decrypt(bytearray(as_bytes), context=CONTEXT, actor="tester", purpose="testing")
        == PHONE
    )


@FIXTURE_OK
@given(st.text())
def test_any_text_round_trips(guard: pg.Guard, value: str) -> None:
    """Every str, empty and non-ASCII included."""
    assert (
        guard.decrypt(
            guard.encrypt(value, context=CONTEXT),
            context=CONTEXT,
            actor="tester",
            purpose="testing",
        )
        == value
    )


def test_wire_overhead_is_at_most_51_characters(guard: pg.Guard) -> None:
    """An 11-character phone becomes 62 URL-safe characters (version 2: 59 plus the two
    bytes of the context keys' fingerprint)."""
    text = guard.encrypt(PHONE, context=CONTEXT)
    assert len(text) - len(PHONE) <= 51
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_ciphertexts_are_self_describing(guard: pg.Guard) -> None:
    """The header carries format version 2, the suite code, a key id and the fingerprint
    of the context's keys."""
    header = wire.unpack_header(wire.from_text(guard.encrypt(PHONE, context=CONTEXT)) or b"")
    assert header is not None
    assert (header.version, header.suite_code) == (2, 1)
    assert header.key_id > 0
    assert header.keys is not None
    assert len(header.keys) == 2


def test_same_value_encrypts_differently_each_time(guard: pg.Guard) -> None:
    """Random nonces: two encryptions of one value differ."""
    assert guard.encrypt(PHONE, context=CONTEXT) != guard.encrypt(PHONE, context=CONTEXT)


@FIXTURE_OK
@given(st.data())
def test_any_single_character_change_fails(guard: pg.Guard, data: st.DataObject) -> None:
    """Header, key id, nonce, body or tag: one changed character gives DecryptionError."""
    text = guard.encrypt(PHONE, context=CONTEXT)
    position = data.draw(st.integers(0, len(text) - 1))
    # one draw whatever the (random) ciphertext holds, so hypothesis can replay it
    choices = [c for c in "AQgw-_09az+/=!" if c != text[position]]
    replacement = choices[data.draw(st.integers(0, 12)) % len(choices)]
    changed = text[:position] + replacement + text[position + 1 :]
    with pytest.raises(pg.DecryptionError):
        guard.decrypt(changed, context=CONTEXT, actor="tester", purpose="testing")


@FIXTURE_OK
@given(st.data())
def test_any_flipped_bit_of_the_bytes_form_fails(guard: pg.Guard, data: st.DataObject) -> None:
    """Every bit of the bytes form is authenticated."""
    blob = bytearray(guard.encrypt_bytes(PHONE, context=CONTEXT))
    position = data.draw(st.integers(0, len(blob) * 8 - 1))
    blob[position // 8] ^= 1 << (position % 8)
    with pytest.raises(pg.DecryptionError):
        guard.decrypt(bytes(blob), context=CONTEXT, actor="tester", purpose="testing")


@pytest.mark.parametrize(
    "other",
    [
        {**CONTEXT, "id": "u2"},  # another row
        {**CONTEXT, "field": "email"},  # another column
        {**CONTEXT, "table": "orders"},  # another table
        {**CONTEXT, "tenant": "shop-2"},  # another tenant
        {"table": "customers", "field": "phone"},  # a missing entry
    ],
)
def test_a_ciphertext_moved_elsewhere_does_not_decrypt(
    guard: pg.Guard, other: dict[str, str]
) -> None:
    """The context is bound: row, column, table and tenant swaps all fail."""
    text = guard.encrypt(PHONE, context=CONTEXT)
    with pytest.raises(pg.DecryptionError):
        guard.decrypt(text, context=other, actor="tester", purpose="testing")


def test_context_order_does_not_matter_but_boundaries_do(guard: pg.Guard) -> None:
    """The encoding is canonical: insertion order is irrelevant; ("ab","c") != ("a","bc")."""
    reordered = dict(reversed(list(CONTEXT.items())))
    assert (
        guard.decrypt(
            guard.encrypt(PHONE, context=CONTEXT),
            context=reordered,
            actor="tester",
            purpose="testing",
        )
        == PHONE
    )
    assert encode_context({"a": "bc"}) != encode_context({"ab": "c"})
    assert encode_context({"a": "b", "c": "d"}) != encode_context({"a": "bc", "c": ""})
    text = guard.encrypt(PHONE, context={"a": "bc"})
    with pytest.raises(pg.DecryptionError):
        guard.decrypt(text, context={"ab": "c"}, actor="tester", purpose="testing")


@given(
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), min_size=1, max_size=4),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), min_size=1, max_size=4),
)
def test_context_encoding_is_injective(first: dict[str, str], second: dict[str, str]) -> None:
    """Different mappings never encode alike; equal mappings always do."""
    assert (encode_context(first) == encode_context(second)) is (first == second)


@pytest.mark.parametrize(
    ("context", "error"),
    [
        ({}, ValueError),
        ({"id": 1}, TypeError),
        ({1: "x"}, TypeError),
        ([("a", "b")], TypeError),
        ({"id": "x" * 70000}, ValueError),
    ],
)
def test_bad_contexts_are_refused(guard: pg.Guard, context: object, error: type) -> None:
    """A context is a non-empty mapping of str to str: anything else fails before encrypting."""
    with pytest.raises(error):
        guard.encrypt(PHONE, context=context)  # type: ignore[arg-type]


@FIXTURE_OK
@given(st.one_of(st.binary(max_size=120), st.text(max_size=120)))
def test_random_input_raises_only_decryption_error(guard: pg.Guard, junk: bytes | str) -> None:
    """Fuzz: random bytes or text never raise IndexError, KeyError, UnicodeDecodeError, ..."""
    with pytest.raises(pg.DecryptionError):
        guard.decrypt(junk, context=CONTEXT, actor="tester", purpose="testing")


def test_random_input_with_a_real_header_raises_only_decryption_error(guard: pg.Guard) -> None:
    """Junk behind a valid header and key id (the key is looked up) still fails cleanly."""
    header = wire.from_text(guard.encrypt(PHONE, context=CONTEXT))[: wire.HEADER_SIZE]  # type: ignore[index]
    for size in (0, 1, 11, 12, 27, 28, 29, 64):
        with pytest.raises(pg.DecryptionError):
            guard.decrypt(header + bytes(size), context=CONTEXT, actor="tester", purpose="testing")
    unknown = wire.pack_header(1, 999_999)
    with pytest.raises(pg.DecryptionError):
        guard.decrypt(unknown + bytes(40), context=CONTEXT, actor="tester", purpose="testing")


def test_key_is_chosen_by_id_never_by_trial(guard: pg.Guard) -> None:
    """A ciphertext relabelled with another key's id fails, though that key exists: no
    trial decryption, so a ciphertext crafted to open under two keys cannot."""
    default = wire.from_text(guard.encrypt(PHONE, context=CONTEXT))
    subject = wire.from_text(guard.encrypt(PHONE, context=CONTEXT, subject="u1"))
    assert default is not None
    assert subject is not None
    assert default[1:5] != subject[1:5]
    relabelled = subject[:1] + default[1:5] + subject[5:]
    with pytest.raises(pg.DecryptionError):
        guard.decrypt(relabelled, context=CONTEXT, actor="tester", purpose="testing")


def test_non_text_values_and_ciphertexts_are_refused(guard: pg.Guard) -> None:
    """encrypt takes str; decrypt of a non-ciphertext type is a DecryptionError."""
    with pytest.raises(TypeError):
        guard.encrypt(13812345678, context=CONTEXT)  # type: ignore[arg-type]
    with pytest.raises(pg.DecryptionError):
        guard.decrypt(13812345678, context=CONTEXT, actor="tester", purpose="testing")  # type: ignore[arg-type]


def test_batches_equal_single_calls(guard: pg.Guard) -> None:
    """encrypt_many/decrypt_many round-trip, one context per value."""
    values = [PHONE, "13912345678", ""]
    contexts = [{**CONTEXT, "id": f"u{i}"} for i in range(3)]
    texts = guard.encrypt_many(values, contexts=contexts, subject="u1")
    assert guard.decrypt_many(texts, contexts=contexts, actor="tester", purpose="testing") == values
    assert guard.encrypt_many([], contexts=[]) == []
    with pytest.raises(ValueError, match="one context"):
        guard.encrypt_many(values, contexts=contexts[:2])
    with pytest.raises(ValueError, match="one context"):
        guard.decrypt_many(texts, contexts=contexts[:2], actor="tester", purpose="testing")
    with pytest.raises(pg.DecryptionError):
        guard.decrypt_many(
            texts, contexts=list(reversed(contexts)), actor="tester", purpose="testing"
        )


def test_nonces_are_twelve_fresh_bytes() -> None:
    """The nonce pool hands out 96-bit values, refilling across its batch boundary."""
    seen = [random_nonce() for _ in range(2000)]
    assert {len(nonce) for nonce in seen} == {12}
    assert len(set(seen)) == 2000


def test_reveals_are_reported_with_actor_and_purpose_only(
    store_target: StoreTarget, kek: LocalKEK
) -> None:
    """A decrypt names an actor and a registered purpose, and emits one access event to the
    application's sink (besides the audit log); a decrypt without them is refused and emits
    nothing to the sink; the event holds no value."""
    sink = ListSink()
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, events=sink) as guard:
        for name in ("after_sales", "refund"):
            guard.consent.register(pg.Purpose(name, basis="contract", kinds={"phone"}))
        text = guard.encrypt(PHONE, context=CONTEXT)
        with pytest.raises(pg.AccessDenied) as no_actor:
            guard.decrypt(text, context=CONTEXT)
        assert no_actor.value.reason == "no_actor"
        assert sink.events == []
        guard.decrypt(text, context=CONTEXT, actor="cs-7", purpose="after_sales")
        guard.decrypt_many([text], contexts=[CONTEXT], actor="cs-7", purpose="refund")
        with pytest.raises(pg.AccessDenied) as no_purpose:
            guard.decrypt(text, context=CONTEXT, actor="cs-7")
        assert no_purpose.value.reason == "no_purpose"
    reveals = [event for event in sink.events if event.action == "decrypt"]
    assert [(e.action, e.actor, e.purpose, e.count, e.result) for e in reveals] == [
        ("decrypt", "cs-7", "after_sales", 1, "ok"),
        ("decrypt", "cs-7", "refund", 1, "ok"),
    ]
    assert reveals[0].context == CONTEXT
    assert (reveals[1].context, reveals[1].rows) == ({}, (CONTEXT,))
    assert PHONE not in repr(sink.events)


def test_blind_index_is_keyed_per_field(guard: pg.Guard) -> None:
    """Equal in one field, different across fields, never an unkeyed hash, truncatable."""
    first = guard.blind_index(PHONE, field="customers.phone")
    assert first == guard.blind_index(PHONE, field="customers.phone")
    assert first != guard.blind_index(PHONE, field="orders.phone")
    assert first != guard.blind_index("13912345678", field="customers.phone")
    unkeyed = base64.urlsafe_b64encode(hashlib.sha256(PHONE.encode()).digest()).rstrip(b"=")
    assert first != unkeyed.decode()
    short = guard.blind_index(PHONE, field="customers.phone", bits=32)
    assert len(wire.from_text(short) or b"") == 4
    assert first.startswith(short[:4])
    for bits in (0, 12, 8, 264):
        with pytest.raises(ValueError, match="bits"):
            guard.blind_index(PHONE, field="customers.phone", bits=bits)
    with pytest.raises(TypeError):
        guard.blind_index(PHONE, field="")


@pytest.mark.parametrize(
    ("kind", "spellings"),
    [
        ("phone", ["138 1234 5678", "13812345678", "+8613812345678", "+86-138-1234-5678"]),
        ("cn_resident_id", ["11010519491231002X", "11010519491231002x"]),
        ("email", ["Li.Lei@Example.COM", "Li.Lei@example.com"]),
    ],
)
def test_blind_index_with_a_kind_finds_every_spelling_of_one_value(
    guard: pg.Guard, kind: str, spellings: list[str]
) -> None:
    """Normalised by kind, the ways a form writes one value give one index; without a kind
    they do not (which is why the kind is there)."""
    field = f"customers.{kind}"
    indexes = {guard.blind_index(value, field=field, kind=kind) for value in spellings}
    assert len(indexes) == 1
    assert guard.blind_index_many(spellings, field=field, kind=kind) == [*indexes] * len(spellings)
    assert len({guard.blind_index(value, field=field) for value in spellings}) > 1
    stored = guard.blind_index(pg.normalise(spellings[0], kind), field=field)
    assert indexes == {stored}  # the same index a normalised field value gets without a kind


def test_blind_index_with_a_kind_refuses_values_not_of_it_without_naming_them(
    guard: pg.Guard,
) -> None:
    for call in (
        lambda: guard.blind_index(CANARY_ID, field="customers.phone", kind="phone"),
        lambda: guard.blind_index_many([CANARY_ID], field="customers.phone", kind="phone"),
    ):
        with pytest.raises(pg.InvalidPII) as caught:
            call()
        assert CANARY_ID not in exception_text(caught.value)
    with pytest.raises(pg.UnknownKind):
        guard.blind_index(PHONE, field="customers.phone", kind="shoe_size")
    with pytest.raises(pg.InvalidArgument):
        guard.blind_index_many(iter([PHONE]), field="customers.phone", kind="phone")  # type: ignore[arg-type]


def test_deterministic_encryption_is_equal_per_column_only(guard: pg.Guard) -> None:
    """Same value and column: same ciphertext (joins work); another column: unrelated."""
    column = {"table": "customers", "field": "phone"}
    first = guard.encrypt_deterministically(PHONE, context=column)
    assert first == guard.encrypt_deterministically(PHONE, context=column)
    assert first != guard.encrypt_deterministically(PHONE, context={**column, "field": "backup"})
    assert guard.decrypt(first, context=column, actor="tester", purpose="testing") == PHONE
    with pytest.raises(pg.DecryptionError):
        guard.decrypt(
            first, context={**column, "field": "backup"}, actor="tester", purpose="testing"
        )
    tampered = first[:-2] + ("A" if first[-2] != "A" else "B") + first[-1]
    with pytest.raises(pg.DecryptionError):
        guard.decrypt(tampered, context=column, actor="tester", purpose="testing")


def test_sm4_suite_round_trips_and_is_labelled(store_target: StoreTarget, kek: LocalKEK) -> None:
    """The 国密 suite: SM4-GCM data, HMAC-SM3 indexes, its own suite code."""
    url, schema = store_target
    with pg.Guard.open(url, kek=kek, schema=schema, suite="sm4gcm") as guard:
        allow_test_reveals(guard)
        text = guard.encrypt(PHONE, context=CONTEXT, subject="u1")
        assert guard.decrypt(text, context=CONTEXT, actor="tester", purpose="testing") == PHONE
        header = wire.unpack_header(wire.from_text(text) or b"")
        assert header is not None
        assert header.suite_code == 2
        column = {"table": "customers", "field": "phone"}
        deterministic = guard.encrypt_deterministically(PHONE, context=column)
        assert deterministic == guard.encrypt_deterministically(PHONE, context=column)
        assert (
            guard.decrypt(deterministic, context=column, actor="tester", purpose="testing") == PHONE
        )
        flipped = deterministic[:-1] + ("A" if deterministic[-1] != "A" else "B")
        with pytest.raises(pg.DecryptionError):
            guard.decrypt(flipped, context=column, actor="tester", purpose="testing")
        assert len(guard.blind_index(PHONE, field="f")) == 43


def test_unknown_suite_is_refused(tmp_path: object, kek: LocalKEK) -> None:
    """Suites are chosen by name from a closed list."""
    with pytest.raises(ValueError, match="suite"):
        pg.Guard.open("sqlite:///:memory:", kek=kek, suite="aes128cbc")


def test_a_million_encryptions_repeat_no_nonce(tmp_path: Path, kek: LocalKEK) -> None:
    """One million real encryptions under one key: a million distinct nonces."""
    with pg.Guard.open(f"sqlite:///{tmp_path / 'n.db'}", kek=kek) as guard:
        start, end = wire.HEADER_SIZE, wire.HEADER_SIZE + wire.NONCE_SIZE
        nonces = {guard.encrypt_bytes("x", context=CONTEXT)[start:end] for _ in range(1_000_000)}
    assert len(nonces) == 1_000_000


def test_threads_share_a_guard_safely(guard: pg.Guard) -> None:
    """Eight threads encrypting at once: distinct nonces, every value decrypts."""

    def work(worker: int) -> list[tuple[str, bytes]]:
        return [
            (
                f"{worker}-{i}",
                guard.encrypt_bytes(f"{worker}-{i}", context=CONTEXT, subject=f"s{i % 3}"),
            )
            for i in range(300)
        ]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [pair for batch in pool.map(work, range(8)) for pair in batch]
    nonces = {blob[wire.HEADER_SIZE : wire.HEADER_SIZE + wire.NONCE_SIZE] for _, blob in results}
    assert len(nonces) == len(results)
    assert all(
        guard.decrypt(blob, context=CONTEXT, actor="tester", purpose="testing") == value
        for value, blob in results
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_never_reuses_the_parents_nonces() -> None:
    """The pool is dropped in the child: parent and child draw different nonces."""
    random_nonce()  # the parent's pool now holds unused nonces
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        os.write(write_end, b"".join(random_nonce() for _ in range(5)))
        os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 60)
    os.waitpid(pid, 0)
    parent = b"".join(random_nonce() for _ in range(5))
    assert {child[i : i + 12] for i in range(0, 60, 12)}.isdisjoint(
        {parent[i : i + 12] for i in range(0, 60, 12)}
    )


def test_the_guard_declares_its_public_methods_on_the_class() -> None:
    """help(pg.Guard) and the API docs show them (they were instance attributes)."""
    for name in (
        "encrypt",
        "encrypt_bytes",
        "encrypt_many",
        "decrypt",
        "decrypt_many",
        "encrypt_deterministically",
        "blind_index",
        "blind_index_many",
        "erase",
        "export",
        "shred",
    ):
        method = vars(pg.Guard)[name]
        assert callable(method), name
        assert method.__doc__, name
        text = pydoc.render_doc(pg.Guard, renderer=pydoc.plaintext)  # type: ignore[attr-defined]
        assert f"{name}(self" in text, name


# -- a context with other keys is told apart from tampering (issue 13) -------------------------


def test_a_wrong_field_name_is_reported_as_a_context_mismatch(guard: pg.Guard) -> None:
    sealed = guard.encrypt(PHONE, context=CONTEXT)
    wrong_name = {"table": "customers", "column": "phone", "id": "u1"}
    with pytest.raises(pg.ContextMismatch, match="other keys") as raised:
        guard.decrypt(sealed, context=wrong_name, actor="tester", purpose="testing")
    assert isinstance(raised.value, pg.DecryptionError)  # code catching the old error still does
    assert PHONE not in exception_text(raised.value)
    with pytest.raises(pg.ContextMismatch):  # a key missing
        guard.decrypt(sealed, context={"table": "customers", "field": "phone"}, **TESTING_REVEAL)
    with pytest.raises(pg.ContextMismatch):
        guard.decrypt_many([sealed], contexts=[wrong_name], **TESTING_REVEAL)


def test_the_same_keys_with_other_values_or_altered_bytes_stay_a_plain_decryption_error(
    guard: pg.Guard,
) -> None:
    sealed = guard.encrypt(PHONE, context=CONTEXT)
    other_row = {**CONTEXT, "id": "u2"}
    with pytest.raises(pg.DecryptionError) as raised:
        guard.decrypt(sealed, context=other_row, **TESTING_REVEAL)
    assert type(raised.value) is pg.DecryptionError
    blob = bytearray(wire.from_text(sealed) or b"")
    blob[-1] ^= 1
    with pytest.raises(pg.DecryptionError) as raised:
        guard.decrypt(bytes(blob), context=CONTEXT, **TESTING_REVEAL)
    assert type(raised.value) is pg.DecryptionError


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(
    keys=st.sets(st.text(min_size=1, max_size=6), min_size=1, max_size=4),
    other=st.sets(st.text(min_size=1, max_size=6), min_size=1, max_size=4),
)
def test_mismatch_is_reported_exactly_when_the_key_sets_differ(
    guard: pg.Guard, keys: set[str], other: set[str]
) -> None:
    sealed = guard.encrypt(PHONE, context=dict.fromkeys(keys, "v"))
    given_context = dict.fromkeys(other, "w")  # values differ always: it never opens
    with pytest.raises(pg.DecryptionError) as raised:
        guard.decrypt(sealed, context=given_context, **TESTING_REVEAL)
    assert isinstance(raised.value, pg.ContextMismatch) == (keys != other)


def test_version_1_ciphertexts_written_before_still_open(guard: pg.Guard) -> None:
    """A ciphertext in the version-1 layout (no fingerprint), sealed under a real data key
    as piiguard wrote them before: it opens, and a wrong context is a plain error."""
    current = wire.from_text(guard.encrypt(PHONE, context=CONTEXT)) or b""
    key_id = wire.unpack_header(current).key_id  # type: ignore[union-attr]
    aead = guard._keyring.decryption_key(key_id)  # the same data key, as an old value had it
    header = wire.pack_header(1, key_id)
    nonce = random_nonce()
    old = header + nonce + aead.encrypt(nonce, PHONE.encode(), header + encode_context(CONTEXT))
    assert guard.decrypt(old, context=CONTEXT, **TESTING_REVEAL) == PHONE
    with pytest.raises(pg.DecryptionError) as raised:
        guard.decrypt(old, context={"column": "x"}, **TESTING_REVEAL)
    assert type(raised.value) is pg.DecryptionError


TESTING_REVEAL = {"actor": "tester", "purpose": "testing"}


def test_the_context_keys_fingerprint_is_keyed_per_store(tmp_path: Path) -> None:
    """A context key may itself be a value (a phone as a key): its fingerprint cannot be
    recomputed without the store's keys, so two stores fingerprint the same keys apart."""
    headers = []
    for name in ("one", "two"):
        kek = LocalKEK.generate(tmp_path / f"{name}.key")
        with pg.Guard.open(f"sqlite:///{tmp_path / name}.db", kek=kek) as guard:
            sealed = guard.encrypt(PHONE, context={"13812345678": "o1"})
            header = wire.unpack_header(wire.from_text(sealed) or b"")
            assert header is not None
            headers.append(header.keys)
    assert headers[0] != headers[1]


def test_the_key_part_of_a_context_is_read_exactly_whatever_its_values() -> None:
    """A first value 32768-49151 characters long: its length's high byte looks like a UTF-8
    continuation byte, and must not be read as part of the last key."""
    from piiguard.crypto.aad import encode_context_keyed, key_prefix

    for context in (
        {"a": "x" * 40000},
        {"表": "y" * 33000, "é": "z"},
        {"k😀": "v" * 49151},
    ):
        encoded, prefix = encode_context_keyed(context)
        assert key_prefix(encoded) == prefix


# -- batches of rows: one shape, factored contexts, keys fetched once --------------------------


@given(
    base=st.dictionaries(
        st.text(max_size=4).filter(lambda key: key != "id"), st.text(max_size=5), max_size=4
    ),
    values=st.lists(st.text(max_size=6), max_size=6),
)
def test_a_batch_of_contexts_encodes_as_each_context_alone(
    base: dict[str, str], values: list[str]
) -> None:
    """Factored rows, and a list of mappings whose keys change from one to the next, give
    the bytes each context gives alone."""
    from piiguard.crypto.aad import encode_contexts

    rows = Rows(base, "id", values)
    alone = [encode_context({**base, "id": value}) for value in values]
    assert encode_contexts(rows) == alone
    mixed = [{**base, "id": value} if n % 2 else {"id": value} for n, value in enumerate(values)]
    assert encode_contexts(mixed) == [encode_context(context) for context in mixed]
    assert list(rows) == [{**base, "id": value} for value in values]
    assert rows == [{**base, "id": value} for value in values]


def test_bad_factored_rows_are_refused_as_single_contexts_are() -> None:
    from piiguard.crypto.aad import encode_contexts

    with pytest.raises(pg.InvalidArgument):
        Rows({"id": "1"}, "id", ["2"])  # the varying key twice
    with pytest.raises(pg.InvalidArgument):
        Rows({"table": "t"}, "id", ["1", 2])  # type: ignore[list-item]
    with pytest.raises(pg.InvalidArgument):
        encode_contexts(Rows({"table": "t"}, "id", ["1", "x" * 70000]))
    with pytest.raises(pg.InvalidArgument):
        encode_contexts([{"id": "1"}, {"id": 2}])  # type: ignore[dict-item]
    with pytest.raises(pg.InvalidArgument):
        encode_contexts(Rows({"t": "x" * 70000}, "id", ["1"]))
    fixed = Rows({PHONE: "t"}, CANARY_ID, ["1"])  # keys may be values too
    with pytest.raises(AttributeError):
        fixed.key = "table"  # type: ignore[misc]  # checked once: it cannot change after
    with pytest.raises(TypeError):
        fixed.base["id"] = "2"  # type: ignore[index]
    assert PHONE not in repr(fixed)
    assert CANARY_ID not in repr(fixed)
    assert encode_contexts(Rows({"t": "x"}, "id", [])) == []
    assert encode_contexts(Rows({}, "id", ["1"])) == [encode_context({"id": "1"})]


def test_a_batch_mixing_keys_opens_each_value_and_fails_whole_on_one_bad_row(
    guard: pg.Guard,
) -> None:
    """Values under several subjects' keys, one of them twice: every value opens with its
    own key; a row tampered with, or given another row's context, after its key was
    fetched for an earlier row, fails the whole batch with the error it gets alone."""
    contexts = [{**CONTEXT, "id": f"u{n}"} for n in range(6)]
    texts = [
        guard.encrypt(f"1381234567{n}", context=context, subject=f"s{n % 3}")
        for n, context in enumerate(contexts)
    ]
    base = {key: value for key, value in CONTEXT.items() if key != "id"}
    rows = Rows(base, "id", [context["id"] for context in contexts])
    expected = [f"1381234567{n}" for n in range(6)]
    assert guard.decrypt_many(texts, contexts=rows, **TESTING_REVEAL) == expected
    assert guard.decrypt_many(texts, contexts=contexts, **TESTING_REVEAL) == expected
    del expected  # the failures below must not find the values in this frame either
    tampered = bytearray(wire.from_text(texts[4]) or b"")
    tampered[-1] ^= 1
    cases: list[tuple[list[str | bytes], list[dict[str, str]], type[Exception]]] = [
        ([*texts[:4], bytes(tampered), texts[5]], contexts, pg.DecryptionError),
        ([*texts], [*contexts[:4], contexts[0], contexts[5]], pg.DecryptionError),
        (
            [*texts],
            [*contexts[:4], {"column": "phone", "id": "u4"}, contexts[5]],
            pg.ContextMismatch,
        ),
    ]
    for bad_texts, bad_contexts, error in cases:
        with pytest.raises(pg.DecryptionError) as raised:
            guard.decrypt_many(bad_texts, contexts=bad_contexts, **TESTING_REVEAL)
        assert type(raised.value) is error
        assert "1381234567" not in piiguard_frames_text(raised.value)


def test_characters_moved_between_rows_texts_fail_the_batch(guard: pg.Guard) -> None:
    """An insider moves characters from one row's ciphertext to the next (the column keeps
    its total length): each changed row fails alone, and so does the batch."""
    contexts = [{**CONTEXT, "id": f"r{n}"} for n in range(3)]
    texts = [guard.encrypt(f"1381234567{n}", context=c) for n, c in enumerate(contexts)]
    moved = [
        [texts[0], texts[1] + texts[2][:4], texts[2][4:]],
        [texts[0], texts[1] + texts[2], ""],
        [texts[0], texts[1][:-1], texts[1][-1] + texts[2]],
    ]
    for batch in moved:
        with pytest.raises(pg.DecryptionError):
            guard.decrypt_many(batch, contexts=contexts, **TESTING_REVEAL)
        with pytest.raises(pg.DecryptionError):
            guard.decrypt(batch[1], context=contexts[1], **TESTING_REVEAL)
