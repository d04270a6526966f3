"""Published vectors for every primitive piiguard uses (Wycheproof, RFC 5297, GB/T 32907)."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from piiguard.crypto import SUITES
from piiguard.crypto.handles import KeyedHash, Mac, Sealer
from piiguard.crypto.hazmat.aead import AesSiv, Sm4Gcm
from piiguard.crypto.hazmat.mac import hmac_verify
from piiguard.keys.secret import SecretBytes
from tests.helpers import VECTORS

WYCHEPROOF = VECTORS / "wycheproof"


def _cases(name: str, keep: Any = lambda group: True) -> list[Any]:
    data = json.loads((WYCHEPROOF / name).read_text())
    return [
        pytest.param(group, case, id=f"tc{case['tcId']}")
        for group in data["testGroups"]
        if keep(group)
        for case in group["tests"]
    ]


def _hex(value: str) -> bytes:
    return bytes.fromhex(value)


@pytest.mark.parametrize(
    ("group", "case"), _cases("aes_gcm_test.json", lambda g: g["ivSize"] == 96)
)
def test_wycheproof_aes_gcm_with_96_bit_nonces(group: dict[str, Any], case: dict[str, Any]) -> None:
    """Valid vectors give the exact ciphertext and tag; invalid ones fail to open."""
    aead = SUITES["aes256gcm"].aead(_hex(case["key"]))  # the factory the suite really uses
    nonce, aad, message = _hex(case["iv"]), _hex(case["aad"]), _hex(case["msg"])
    sealed = _hex(case["ct"]) + _hex(case["tag"])
    if case["result"] == "valid":
        assert aead.encrypt(nonce, message, aad) == sealed
        assert aead.decrypt(nonce, sealed, aad) == message
    else:
        with pytest.raises(InvalidTag):
            aead.decrypt(nonce, sealed, aad)


@pytest.mark.parametrize(("group", "case"), _cases("aes_siv_cmac_test.json"))
def test_wycheproof_aes_siv(group: dict[str, Any], case: dict[str, Any]) -> None:
    """64-byte keys: exact output and tamper detection; shorter keys are refused outright."""
    key = _hex(case["key"])
    if len(key) != 64:
        with pytest.raises(ValueError, match="64 bytes"):
            AesSiv(key)
        return
    siv = AesSiv(key)
    aad, message, sealed = [_hex(case["aad"])], _hex(case["msg"]), _hex(case["ct"])
    if case["result"] == "valid":
        assert siv.encrypt(message, aad) == sealed
        assert siv.decrypt(sealed, aad) == message
    else:
        with pytest.raises((InvalidTag, ValueError)):
            siv.decrypt(sealed, aad)


@pytest.mark.parametrize(
    ("group", "case"), _cases("aead_aes_siv_cmac_test.json", lambda g: g["keySize"] == 512)
)
def test_wycheproof_aead_aes_siv(group: dict[str, Any], case: dict[str, Any]) -> None:
    """The AEAD form of AES-SIV (associated data, then nonce, as components)."""
    siv = AesSiv(_hex(case["key"]))
    components = [_hex(case["aad"]), _hex(case["iv"])]
    sealed = _hex(case["tag"]) + _hex(case["ct"])
    if case["result"] == "valid":
        assert siv.encrypt(_hex(case["msg"]), components) == sealed
    else:
        with pytest.raises((InvalidTag, ValueError)):
            siv.decrypt(sealed, components)


def test_rfc5297_vectors() -> None:
    """RFC 5297 A.1 and A.2 through the deterministic primitive (A.1 with its 32-byte key
    is AES-128-SIV, which piiguard refuses; checked here with the library directly)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV

    data = json.loads((VECTORS / "rfc5297_aes_siv.json").read_text())
    for vector in data["vectors"]:
        key = _hex(vector["key"])
        components = [
            _hex(part)
            for part in (*vector["ad"], *([vector["nonce"]] if "nonce" in vector else []))
        ]
        expected, plaintext = _hex(vector["output"]), _hex(vector["plaintext"])
        cipher = AesSiv(key) if len(key) == 64 else AESSIV(key)
        assert cipher.encrypt(plaintext, components) == expected


@pytest.mark.parametrize(
    ("group", "case"), _cases("hmac_sha256_test.json", lambda g: g["keySize"] >= 128)
)
def test_wycheproof_hmac_sha256_including_truncated_tags(
    group: dict[str, Any], case: dict[str, Any]
) -> None:
    """Full and truncated tags verify exactly when valid (compared in constant time)."""
    verdict = hmac_verify("sha256", _hex(case["key"]), _hex(case["msg"]), _hex(case["tag"]))
    assert verdict is (case["result"] == "valid")


@pytest.mark.parametrize(("group", "case"), _cases("hmac_sha256_test.json"))
def test_wycheproof_hmac_sha256_through_the_key_handle(
    group: dict[str, Any], case: dict[str, Any]
) -> None:
    """The key handle's HMAC (hash states set up once per key, keys of every size, longer
    than a block too) gives the published tag, one message at a time and in a batch."""
    mac = Mac(1, "sha256", SecretBytes(_hex(case["key"])))
    tag, message = _hex(case["tag"]), _hex(case["msg"])
    for full in (mac.digest(message), mac.digest_many([b"other", message])[1]):
        assert (full[: len(tag)] == tag) is (case["result"] == "valid")


_BLAKE2S = json.loads((VECTORS / "blake2s_keyed_kat.json").read_text())


def test_keyed_blake2s_known_answers_through_the_handle() -> None:
    """The keyed hash that names a batch's rows is keyed BLAKE2s-256 (RFC 7693, keyed with
    the key block, not HMAC): the published keyed answers, each item from one copied
    state, and truncated as asked."""
    handle = KeyedHash(_hex(_BLAKE2S["key"]))
    items = [bytes(range(vector["len"])) for vector in _BLAKE2S["vectors"]]
    expected = [vector["hash"] for vector in _BLAKE2S["vectors"]]
    assert handle.names(b"", items, chars=64) == expected
    assert handle.names(b"", items[::-1], chars=20) == [h[:20] for h in expected[::-1]]
    assert "000102" not in repr(handle)


def test_a_mac_derives_its_keyed_hash_and_sm3_has_none() -> None:
    """The keyed hash of a MAC is under a key derived from the MAC's (so two MACs give two
    unrelated hashes); an HMAC-SM3 key gives none (the SM suite keeps to SM algorithms)."""
    one, two = (Mac(1, "sha256", SecretBytes(bytes([n]) * 32)) for n in (1, 2))
    first, second = one.keyed_hash(), two.keyed_hash()
    assert first is not None
    assert second is not None
    assert first is one.keyed_hash()
    assert first.names(b"id\x00", ["7"], chars=64) != second.names(b"id\x00", ["7"], chars=64)
    assert KeyedHash(bytes([1]) * 32).names(b"", [b"x"], chars=64) != first.names(
        b"", [b"x"], chars=64
    )
    assert Mac(1, "sm3", SecretBytes(bytes(32))).keyed_hash() is None


@pytest.mark.parametrize("suite", ["aes256gcm", "sm4gcm"])
def test_a_sealer_is_the_suites_aead_with_a_fresh_nonce(suite: str) -> None:
    """The audit's sealed rows: the suite's AEAD (Wycheproof and RFC 8998 above), a fresh
    nonce each time, bound to its associated data; anything else opens to None."""
    key = bytes(range(32))[: SUITES[suite].dek_size]
    sealer = Sealer(7, SUITES[suite].aead(key))
    sealed = sealer.seal(b'{"id":["1","2"]}', b"rows")
    assert sealer.seal(b'{"id":["1","2"]}', b"rows") != sealed
    assert SUITES[suite].aead(key).decrypt(sealed[:12], sealed[12:], b"rows") == b'{"id":["1","2"]}'
    assert sealer.open(sealed, b"rows") == b'{"id":["1","2"]}'
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    for wrong, aad in ((sealed, b"other"), (flipped, b"rows"), (b"short", b"rows")):
        assert sealer.open(wrong, aad) is None
    assert "0001" not in repr(sealer)
    with pytest.raises(TypeError):
        pickle.dumps(sealer)


def test_sm4_known_answer_gb_t_32907() -> None:
    """GB/T 32907-2016 Appendix A, example 1: one block under one key."""
    key = _hex("0123456789abcdeffedcba9876543210")
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()  # noqa: S305 - a one-block KAT
    assert encryptor.update(key) + encryptor.finalize() == _hex("681edf34d206965e86b3e94f536e4246")


def test_sm4_gcm_known_answer_rfc_8998() -> None:
    """RFC 8998 Appendix A.1: SM4-GCM with a 12-byte nonce."""
    key = _hex("0123456789ABCDEFFEDCBA9876543210")
    nonce = _hex("00001234567800000000ABCD")
    aad = _hex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    plaintext = _hex(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
    )
    expected = _hex(
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
        "83DE3541E4C2B58177E065A9BF7B62EC"
    )
    aead = Sm4Gcm(key)
    assert aead.encrypt(nonce, plaintext, aad) == expected
    assert aead.decrypt(nonce, expected, aad) == plaintext
    with pytest.raises(InvalidTag):
        aead.decrypt(nonce, expected[:-1] + bytes([expected[-1] ^ 1]), aad)
    with pytest.raises(InvalidTag):
        aead.decrypt(nonce, expected[:10], aad)


def _kw_cases(name: str) -> list[Any]:
    padded = name == "aes_kwp_test.json"
    return [
        pytest.param(padded, case, id=f"{name[:-10]}-tc{case['tcId']}")
        for group in json.loads((WYCHEPROOF / name).read_text())["testGroups"]
        for case in group["tests"]
    ]


@pytest.mark.parametrize(
    ("padded", "case"), _kw_cases("aes_wrap_test.json") + _kw_cases("aes_kwp_test.json")
)
def test_wycheproof_key_wrap_of_the_library_piiguard_relies_on(
    padded: bool, case: dict[str, Any]
) -> None:
    """AES-KW and AES-KWP (RFC 3394/5649) as cryptography implements them.

    piiguard wraps data keys with AES-GCM instead (in files and inside HSMs), because key
    wrap cannot bind the wrap context; these vectors pin the library for interoperating with
    HSMs that export keys under KW/KWP.
    """
    from cryptography.hazmat.primitives import keywrap

    key, message, wrapped = _hex(case["key"]), _hex(case["msg"]), _hex(case["ct"])
    unwrap = keywrap.aes_key_unwrap_with_padding if padded else keywrap.aes_key_unwrap
    if case["result"] == "valid":
        assert unwrap(key, wrapped) == message
    elif case["result"] == "invalid":
        with pytest.raises((keywrap.InvalidUnwrap, ValueError)):
            unwrap(key, wrapped)


def test_rfc3394_vectors_and_a_flipped_bit() -> None:
    """RFC 3394 section 4: exact wraps; one changed bit fails the integrity check."""
    from cryptography.hazmat.primitives import keywrap

    data = json.loads((VECTORS / "rfc3394_aes_kw.json").read_text())
    for vector in data["vectors"]:
        wrapped = keywrap.aes_key_wrap(_hex(vector["kek"]), _hex(vector["key_data"]))
        assert wrapped == _hex(vector["ciphertext"])
    for negative in data["negative"]:
        with pytest.raises(keywrap.InvalidUnwrap):
            keywrap.aes_key_unwrap(_hex(negative["kek"]), _hex(negative["ciphertext"]))
