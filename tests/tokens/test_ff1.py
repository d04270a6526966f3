"""FF1: the NIST samples, the Rev. 1 refusals, and a cross-check against the spec's text."""

from __future__ import annotations

import pickle

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

import piiguard as pg
from piiguard.tokens import FF1
from tests.helpers import assert_no_canary, load_vectors, piiguard_frames_text

STANDARD = "0123456789abcdefghijklmnopqrstuvwxyz"
SAMPLES = load_vectors("ff1_nist.json")["vectors"]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: f"sample{sample['sample']}")
def test_nist_sp_800_38g_samples(sample: dict[str, object]) -> None:
    """All nine samples (AES-128/192/256, radix 10 and 36, with and without tweak)."""
    ff1 = FF1(bytes.fromhex(str(sample["key"])), STANDARD[: int(str(sample["radix"]))])
    tweak = bytes.fromhex(str(sample["tweak"]))
    assert ff1.encrypt(str(sample["plaintext"]), tweak) == sample["ciphertext"]
    assert ff1.decrypt(str(sample["ciphertext"]), tweak) == sample["plaintext"]
    assert ff1.encrypt_many([str(sample["plaintext"])] * 3, tweak) == [sample["ciphertext"]] * 3


def _reference_ff1(key: bytes, alphabet: str, tweak: bytes, text: str) -> str:
    """FF1.Encrypt written step by step from NIST SP 800-38G Rev. 1, section 6.2."""
    radix, n, t = len(alphabet), len(text), len(tweak)
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - FF1 is built on it

    def num(digits: str) -> int:
        value = 0
        for char in digits:
            value = value * radix + alphabet.index(char)
        return value

    def string(value: int, length: int) -> str:
        out = ""
        for _ in range(length):
            out = alphabet[value % radix] + out
            value //= radix
        return out

    def prf(data: bytes) -> bytes:
        y = bytes(16)
        for start in range(0, len(data), 16):
            block = bytes(p ^ q for p, q in zip(y, data[start : start + 16], strict=True))
            y = ecb.update(block)
        return y

    u = n // 2
    v = n - u
    a, b = text[:u], text[u:]
    bits = 0
    while 2**bits < radix**v:  # ceil(v * log2(radix)) with integers: 2^bits >= radix^v
        bits += 1
    b_len = (bits + 7) // 8
    d = 4 * ((b_len + 3) // 4) + 4
    p = (
        bytes([1, 2, 1])
        + radix.to_bytes(3, "big")
        + bytes([10, u % 256])
        + n.to_bytes(4, "big")
        + t.to_bytes(4, "big")
    )
    for i in range(10):
        q = tweak + bytes((-t - b_len - 1) % 16) + bytes([i]) + num(b).to_bytes(b_len, "big")
        r = prf(p + q)
        s = r
        j = 1
        while len(s) < d:
            s += ecb.update(bytes(x ^ y for x, y in zip(r, j.to_bytes(16, "big"), strict=True)))
            j += 1
        y = int.from_bytes(s[:d], "big")
        m = u if i % 2 == 0 else v
        c = (num(a) + y) % radix**m
        a, b = b, string(c, m)
    return a + b


@st.composite
def cases(draw: st.DrawFn) -> tuple[bytes, str, bytes, str]:
    """A key, an alphabet (radix 2 to 300 characters of Unicode), a tweak and a valid text."""
    key = draw(
        st.binary(min_size=16, max_size=16)
        | st.binary(min_size=24, max_size=24)
        | st.binary(min_size=32, max_size=32)
    )
    radix = draw(st.sampled_from([2, 3, 8, 10, 16, 26, 36, 37, 62, 100, 256]))
    alphabet = (
        "".join(chr(0x4E00 + i) for i in range(radix))
        if radix not in (10, 36)
        else STANDARD[:radix]
    )
    ff1 = FF1(key, alphabet)
    length = draw(st.integers(ff1.min_length, ff1.min_length + 30))
    text = "".join(draw(st.lists(st.sampled_from(alphabet), min_size=length, max_size=length)))
    tweak = draw(st.binary(max_size=40))
    return key, alphabet, tweak, text


@settings(max_examples=150)
@given(cases())
def test_agrees_with_a_textbook_implementation(case: tuple[bytes, str, bytes, str]) -> None:
    """For random keys, alphabets, lengths and tweaks, FF1 equals the spec followed literally,
    and decrypts back: right beyond the nine samples, on both the single and batch paths."""
    key, alphabet, tweak, text = case
    ff1 = FF1(key, alphabet)
    expected = _reference_ff1(key, alphabet, tweak, text)
    assert ff1.encrypt(text, tweak) == expected
    assert ff1.encrypt_many([text, text], tweak) == [expected, expected]
    assert ff1.decrypt(expected, tweak) == text
    assert ff1.decrypt_many([expected], tweak) == [text]


def _feistel_bytes(radix: int, length: int) -> int:
    """d of SP 800-38G: how many bytes each round's expansion yields."""
    bits = 0
    while 2**bits < radix ** (length - length // 2):
        bits += 1
    return 4 * ((((bits + 7) // 8) + 3) // 4) + 4


@settings(max_examples=60)
@given(
    st.sampled_from([10, 16, 36]).flatmap(
        lambda radix: st.tuples(
            st.just(radix),
            st.integers(60, 400).flatmap(
                lambda n: st.text(STANDARD[:radix], min_size=n, max_size=n)
            ),
        )
    ),
    st.binary(min_size=16, max_size=16),
    st.binary(max_size=24),
)
def test_long_texts_expand_over_several_blocks_like_the_reference(
    case: tuple[int, str], key: bytes, tweak: bytes
) -> None:
    """Texts long enough that each round needs more than one AES block (d > 16): the
    multi-block expansion (S = R || CIPH(R xor [1]) || ...) agrees with the spec."""
    radix, text = case
    assert _feistel_bytes(radix, len(text)) > 16
    ff1 = FF1(key, STANDARD[:radix])
    expected = _reference_ff1(key, STANDARD[:radix], tweak, text)
    assert ff1.encrypt(text, tweak) == expected
    assert ff1.decrypt_many([expected, expected], tweak) == [text, text]


@given(
    st.integers(6, 40).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n)),
    st.binary(max_size=16),
)
def test_decimal_round_trip_for_every_allowed_length(text: str, tweak: bytes) -> None:
    """Every decimal length from 6 (10^6) up round-trips and keeps length and alphabet."""
    ff1 = FF1(b"k" * 16)
    token = ff1.encrypt(text, tweak)
    assert len(token) == len(text)
    assert token.isdigit()
    assert ff1.decrypt(token, tweak) == text


def test_batches_mix_lengths_and_keep_order() -> None:
    """A batch of several lengths comes back in order, each as if encrypted alone."""
    ff1 = FF1(b"k" * 32)
    texts = ["13812345678", "123456", "6222021234567890128", "13912345678", "654321"]
    assert ff1.encrypt_many(texts) == [ff1.encrypt(text) for text in texts]
    assert ff1.decrypt_many(ff1.encrypt_many(texts)) == texts
    assert ff1.encrypt_many([]) == []


def test_tweak_changes_the_token() -> None:
    """The same value under two tweaks (tenants, fields) gives unrelated tokens."""
    ff1 = FF1(b"k" * 16)
    assert ff1.encrypt("13812345678", b"tenant-1") != ff1.encrypt("13812345678", b"tenant-2")


@pytest.mark.parametrize(
    ("alphabet", "shortest"),
    [("0123456789", 6), ("01", 20), (STANDARD, 4), ("".join(map(chr, range(256))), 3)],
)
def test_domains_below_a_million_are_refused(alphabet: str, shortest: int) -> None:
    """Rev. 1: radix^length >= 1,000,000; one character shorter is refused."""
    ff1 = FF1(b"k" * 16, alphabet)
    assert ff1.min_length == shortest
    ff1.encrypt(alphabet[1] * shortest)
    with pytest.raises(ValueError, match="1,000,000"):
        ff1.encrypt(alphabet[1] * (shortest - 1))


@pytest.mark.parametrize(
    "text", ["1234a67", " 1234567", "+1234567", "1_234567", "١٢٣٤٥٦٧", "１２３４５６７"]
)
def test_characters_outside_the_alphabet_are_refused(text: str) -> None:
    """Nothing that int() would quietly accept gets through: spaces, signs, underscores,
    non-ASCII digits."""
    with pytest.raises(ValueError, match="alphabet") as caught:
        FF1(b"k" * 16).encrypt(text)
    assert text not in str(caught.value)


def test_custom_alphabets_check_their_characters() -> None:
    """With letters as digits, a decimal digit is outside the alphabet."""
    with pytest.raises(ValueError, match="alphabet"):
        FF1(b"k" * 16, "abcdefghij").encrypt("abcde5ghij")


@pytest.mark.parametrize(
    ("key", "alphabet", "error"),
    [
        (b"k" * 15, "0123456789", ValueError),
        (b"k" * 33, "0123456789", ValueError),
        ("k" * 16, "0123456789", ValueError),
        (b"k" * 16, "0", ValueError),
        (b"k" * 16, "0112345678", ValueError),
        (b"k" * 16, "".join(map(chr, range(257))), ValueError),
    ],
)
def test_bad_keys_and_alphabets_are_refused(key: object, alphabet: str, error: type) -> None:
    """AES-128/192/256 keys only; 2 to 256 distinct characters."""
    with pytest.raises(error):
        FF1(key, alphabet)  # type: ignore[arg-type]


def test_bad_tweaks_and_types_are_refused() -> None:
    """Tweaks are bytes of at most 256; texts are str."""
    ff1 = FF1(b"k" * 16)
    with pytest.raises(ValueError, match="tweak"):
        ff1.encrypt("1234567", b"t" * 257)
    with pytest.raises(ValueError, match="tweak"):
        ff1.encrypt("1234567", "tweak")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ff1.encrypt(1234567)  # type: ignore[arg-type]


def test_byte_counts_use_integer_arithmetic() -> None:
    """b = ceil(ceil(v * log2(radix)) / 8) exactly, at the float trap v=29, radix 256."""
    ff1 = FF1(b"k" * 16, "".join(map(chr, range(256))))
    plan = ff1._plan(58, b"")
    assert plan.b == 29
    assert FF1(b"k" * 16)._plan(11, b"").b == 3


def test_an_ff1_instance_is_an_opaque_handle() -> None:
    """No key in its repr; no pickling."""
    ff1 = FF1(bytes(range(16)))
    assert repr(ff1) == "FF1(radix=10, [secure])"
    with pytest.raises(TypeError):
        pickle.dumps(ff1)
    assert ff1.alphabet == "0123456789"


def test_texts_past_the_int_conversion_limit_are_refused_cleanly() -> None:
    """Python converts at most 4,300 decimal digits between text and int: a longer text raised
    a bare ValueError from a frame holding it; FF1 now refuses past 4,096 characters first."""
    ff1 = FF1(bytes(16))
    text = "13812345678" * 500
    for call in (ff1.encrypt, ff1.decrypt):
        with pytest.raises(pg.InvalidArgument, match="4096") as caught:
            call(text)
        assert_no_canary(piiguard_frames_text(caught.value))
    assert ff1.decrypt(ff1.encrypt("1" * 4096)) == "1" * 4096
