"""FF1 format-preserving encryption (NIST SP 800-38G Rev. 1), with a batch mode.

FF1 is a 10-round Feistel network whose round function is an AES CBC-MAC. Written here, not
imported, because no maintained library runs it at batch speed: :meth:`FF1.encrypt_many` runs
each round for every value of a batch with *one* AES call (one ECB pass over all the values'
blocks) and does the CBC-MAC XORs as one big-integer operation, so the Python work per value
per round is a handful of C-level operations.

Rev. 1 rules are enforced: radix^length must be at least 1,000,000, every character must be in
the alphabet, and all sizes are computed with integers (the spec's ``ceil(v * log2(radix))``
as the bit length of ``radix**v - 1``: a float log2 miscounts at v=29, radix 256).
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from piiguard.errors import InvalidArgument

__all__ = ["FF1"]

_LOW64 = 2**64 - 1
_PAIR = struct.Struct(">QQ")

_MIN_DOMAIN = 1_000_000
#: SP 800-38G allows up to 2**32 characters; a PII value is short, and Python converts at most
#: 4,300 decimal digits between text and int (sys.int_info): refuse past 4,096 up front.
_MAX_LENGTH = 4096
_MAX_TWEAK = 256
_STANDARD_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_FORMATS = {2: "b", 8: "o", 10: "d", 16: "x"}
_ROUNDS = 10


def _ys_from_blocks(blocks: bytes, d: int) -> list[int]:
    """The first ``d`` bytes of each 16-byte block, as integers (struct does it in C)."""
    if d == 8:
        return [hi for (hi,) in struct.iter_unpack(">Q8x", blocks)]
    if d == 12:
        return [(hi << 32) | lo for hi, lo in struct.iter_unpack(">QI4x", blocks)]
    if d == 16:
        return [(hi << 64) | lo for hi, lo in struct.iter_unpack(">QQ", blocks)]
    return [int.from_bytes(blocks[start : start + d], "big") for start in range(0, len(blocks), 16)]


class FF1:
    """FF1 under one AES key and one alphabet.

    Args:
        key: 16, 24 or 32 bytes (AES-128/192/256).
        alphabet: the characters of the domain, in digit order: 2 to 256 distinct characters.

    Examples:
        >>> ff1 = FF1(bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c"))
        >>> ff1.encrypt("0123456789")
        '2433477484'
        >>> ff1.decrypt("2433477484")
        '0123456789'
    """

    __slots__ = (
        "_alphabet",
        "_decimal",
        "_delete_alphabet",
        "_encryptor",
        "_from_standard",
        "_index",
        "_lock",
        "_plans",
        "_radix",
        "_to_standard",
        "min_length",
    )

    def __init__(self, key: bytes, alphabet: str = "0123456789") -> None:
        if not isinstance(key, bytes | bytearray) or len(key) not in (16, 24, 32):
            raise ValueError("an FF1 key is 16, 24 or 32 bytes")
        if not isinstance(alphabet, str) or not 2 <= len(alphabet) <= 256:
            raise ValueError("an FF1 alphabet has 2 to 256 characters")
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("an FF1 alphabet's characters must be distinct")
        self._alphabet = alphabet
        self._radix = radix = len(alphabet)
        self._index = {char: digit for digit, char in enumerate(alphabet)}
        self._delete_alphabet = str.maketrans("", "", alphabet)
        standard = _STANDARD_DIGITS[:radix] if radix <= 36 else ""
        self._to_standard = str.maketrans(alphabet, standard) if standard else None
        self._from_standard = str.maketrans(standard, alphabet) if standard else None
        self._encryptor = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()  # noqa: S305 - FF1's PRF is built from single-block AES
        self._lock = threading.Lock()
        self._plans: dict[tuple[int, bytes], _Plan] = {}
        self._decimal = alphabet == "0123456789"  # int() and format() do the digits in C
        length = 2
        while radix**length < _MIN_DOMAIN:
            length += 1
        #: The shortest text this alphabet allows (radix^length >= 1,000,000).
        self.min_length = length

    @property
    def alphabet(self) -> str:
        """The alphabet, in digit order."""
        return self._alphabet

    def __repr__(self) -> str:
        return f"FF1(radix={getattr(self, '_radix', '?')}, [secure])"  # safe half-built too

    def __reduce__(self) -> tuple[()]:
        raise TypeError("an FF1 instance holds a key and cannot be pickled")

    # -- public --------------------------------------------------------------------------

    def encrypt(self, text: str, tweak: bytes = b"") -> str:
        """Encrypt one text: same length, same alphabet.

        Raises:
            InvalidArgument: a character outside the alphabet, a length outside the domain,
                or a tweak over 256 bytes. Neither the message nor any frame's locals hold the text.
        """
        result = self._many([text], tweak, decrypt=False)
        if isinstance(result, list):
            return result[0]
        del text
        raise result

    def decrypt(self, text: str, tweak: bytes = b"") -> str:
        """Decrypt one text produced by :meth:`encrypt` with the same tweak."""
        result = self._many([text], tweak, decrypt=True)
        if isinstance(result, list):
            return result[0]
        del text
        raise result

    def encrypt_many(self, texts: Sequence[str], tweak: bytes = b"") -> list[str]:
        """Encrypt a batch; texts of one length share every AES call of each round."""
        result = self._many(texts, tweak, decrypt=False)
        if isinstance(result, list):
            return result
        del texts
        raise result

    def decrypt_many(self, texts: Sequence[str], tweak: bytes = b"") -> list[str]:
        """Decrypt a batch produced by :meth:`encrypt_many` with the same tweak."""
        result = self._many(texts, tweak, decrypt=True)
        if isinstance(result, list):
            return result
        del texts
        raise result

    # -- plumbing ------------------------------------------------------------------------

    def _many(self, texts: Sequence[str], tweak: bytes, *, decrypt: bool) -> list[str] | Exception:
        """The results, or the error (returned, not raised, so no frame keeps the texts)."""
        if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
            return InvalidArgument("FF1 batches are a sequence of str")
        if not isinstance(tweak, bytes | bytearray) or len(tweak) > _MAX_TWEAK:
            return InvalidArgument("an FF1 tweak is bytes, at most 256 of them")
        by_length: dict[int, list[int]] = {}
        for position, text in enumerate(texts):
            problem = self._problem(text)
            if problem is not None:
                return problem
            by_length.setdefault(len(text), []).append(position)
        out: list[str] = [""] * len(texts)
        for length, positions in by_length.items():
            results = self._crypt([texts[p] for p in positions], length, bytes(tweak), decrypt)
            for position, result in zip(positions, results, strict=True):
                out[position] = result
        return out

    def _problem(self, text: object) -> Exception | None:
        """Why a text cannot be enciphered, or None."""
        if not isinstance(text, str):
            return InvalidArgument("FF1 takes str")
        if not self.min_length <= len(text) <= _MAX_LENGTH:
            return InvalidArgument(
                f"FF1 with this alphabet takes {self.min_length} to {_MAX_LENGTH} characters "
                "(radix^length must be at least 1,000,000)"
            )
        if self._radix == 10 and self._alphabet == "0123456789":
            if not (text.isascii() and text.isdigit()):
                return InvalidArgument("a character is outside the FF1 alphabet")
        elif text.translate(self._delete_alphabet):
            return InvalidArgument("a character is outside the FF1 alphabet")
        return None

    def _ecb(self, data: bytes) -> bytes:
        with self._lock:  # one encryptor object, used by one thread at a time
            return self._encryptor.update(data)

    def _number(self, text: str) -> int:
        if self._to_standard is not None:
            return int(text.translate(self._to_standard), self._radix)
        value = 0
        for char in text:
            value = value * self._radix + self._index[char]
        return value

    def _text(self, value: int, length: int) -> str:
        code = _FORMATS.get(self._radix)
        if code is not None:
            text = format(value, f"0{length}{code}")
        else:
            digits = []
            for _ in range(length):
                value, digit = divmod(value, self._radix)
                digits.append(
                    _STANDARD_DIGITS[digit] if self._radix <= 36 else self._alphabet[digit]
                )
            text = "".join(reversed(digits))
            if self._radix > 36:
                return text
        return text.translate(self._from_standard) if self._from_standard is not None else text

    def _plan(self, n: int, tweak: bytes) -> _Plan:
        """Everything that depends only on the length and the tweak, computed once."""
        plan = self._plans.get((n, tweak))
        if plan is None:
            if len(self._plans) >= 256:
                self._plans.clear()
            plan = self._plans[(n, tweak)] = _Plan(self, n, tweak)
        return plan

    def _crypt(self, texts: list[str], n: int, tweak: bytes, decrypt: bool) -> list[str]:
        plan = self._plan(n, tweak)
        if len(texts) == 1 and plan.round_keys is not None:
            return [self._crypt_one(texts[0], plan, decrypt)]
        u, v = plan.u, plan.v
        if self._decimal:
            a = [int(text[:u]) for text in texts]
            b = [int(text[u:]) for text in texts]
        else:
            a = [self._number(text[:u]) for text in texts]
            b = [self._number(text[u:]) for text in texts]
        rounds = range(_ROUNDS - 1, -1, -1) if decrypt else range(_ROUNDS)
        one_block = plan.round_keys is not None
        count = len(texts)
        for round_number in rounds:
            source = a if decrypt else b
            if one_block:
                ys = self._round_one_block(plan, round_number, source, count)
            else:
                q_blocks = [plan.prefixes[round_number] + x.to_bytes(plan.b, "big") for x in source]
                ys = self._expand(self._cbc_mac(plan.first_state, q_blocks, count), plan.d, count)
            mod = plan.moduli[round_number % 2]
            if decrypt:
                c = [(x - y) % mod for x, y in zip(b, ys, strict=True)]
                a, b = c, a
            else:
                c = [(x + y) % mod for x, y in zip(a, ys, strict=True)]
                a, b = b, c
        if self._decimal:
            left, right = plan.decimal_formats
            return [format(x, left) + format(y, right) for x, y in zip(a, b, strict=True)]
        return [self._text(x, u) + self._text(y, v) for x, y in zip(a, b, strict=True)]

    def _crypt_one(self, text: str, plan: _Plan, decrypt: bool) -> str:
        """One value through the one-block rounds: the same arithmetic, without lists."""
        u = plan.u
        if self._decimal:
            a, b = int(text[:u]), int(text[u:])
        else:
            a, b = self._number(text[:u]), self._number(text[u:])
        assert plan.round_keys is not None  # noqa: S101 - _crypt checked it
        keys, moduli, d = plan.round_keys, plan.moduli, plan.d
        update = self._encryptor.update
        with self._lock:
            for round_number in range(_ROUNDS - 1, -1, -1) if decrypt else range(_ROUNDS):
                high, low = keys[round_number]
                r = update(_PAIR.pack(high, low ^ (a if decrypt else b)))
                y = int.from_bytes(r[:d], "big")
                if decrypt:
                    a, b = (b - y) % moduli[round_number % 2], a
                else:
                    a, b = b, (a + y) % moduli[round_number % 2]
        if self._decimal:
            left, right = plan.decimal_formats
            return format(a, left) + format(b, right)
        return self._text(a, u) + self._text(b, plan.v)

    def _round_one_block(
        self, plan: _Plan, round_number: int, source: list[int], count: int
    ) -> list[int]:
        """R for every value when P || Q is two blocks: R = AES(AES(P) ^ Q).

        Only the last ``b`` bytes of Q depend on the value, and ``b <= 8``, so each input
        block is a per-round constant high half and a low half XORed with the value.
        """
        assert plan.round_keys is not None  # noqa: S101 - _crypt checked it
        high, low = plan.round_keys[round_number]
        words = [high] * (2 * count)
        words[1::2] = [low ^ x for x in source]
        return _ys_from_blocks(self._ecb(struct.pack(f">{2 * count}Q", *words)), plan.d)

    def _cbc_mac(self, first_state: bytes, q_blocks: list[bytes], count: int) -> bytes:
        """The CBC-MAC of P || Q_j for every j: one AES call per 16-byte block of Q."""
        size = 16 * count
        state = first_state * count
        q_length = len(q_blocks[0])
        for start in range(0, q_length, 16):
            block = (
                b"".join(q_blocks)
                if q_length == 16
                else b"".join(q[start : start + 16] for q in q_blocks)
            )
            mixed = int.from_bytes(state, "big") ^ int.from_bytes(block, "big")
            state = self._ecb(mixed.to_bytes(size, "big"))
        return state

    def _expand(self, r: bytes, d: int, count: int) -> list[int]:
        """y = NUM(S), S the first d bytes of R || AES(R ^ [1]) || AES(R ^ [2]) || ..."""
        if d <= 16:
            return _ys_from_blocks(r, d)
        size = 16 * count
        pieces = [r]
        r_number = int.from_bytes(r, "big")
        for j in range(1, (d + 15) // 16):
            mask = int.from_bytes(j.to_bytes(16, "big") * count, "big")
            pieces.append(self._ecb((r_number ^ mask).to_bytes(size, "big")))
        return [
            int.from_bytes(b"".join(piece[start : start + 16] for piece in pieces)[:d], "big")
            for start in range(0, size, 16)
        ]


class _Plan:
    """FF1's per-(length, tweak) constants (steps 1-5 of the spec, and per-round prefixes)."""

    __slots__ = (
        "b",
        "d",
        "decimal_formats",
        "first_state",
        "moduli",
        "prefixes",
        "round_keys",
        "u",
        "v",
    )

    def __init__(self, ff1: FF1, n: int, tweak: bytes) -> None:
        radix = ff1._radix  # a helper of FF1's own
        self.u = u = n // 2
        self.v = v = n - u
        self.b = b = ((radix**v - 1).bit_length() + 7) // 8  # ceil(ceil(v*log2(radix)) / 8)
        self.d = 4 * ((b + 3) // 4) + 4
        t = len(tweak)
        p = (
            bytes([1, 2, 1])
            + radix.to_bytes(3, "big")
            + bytes([10, u % 256])
            + n.to_bytes(4, "big")
            + t.to_bytes(4, "big")
        )
        self.first_state = ff1._ecb(p)  # CBC-MAC of P alone, shared by all
        padding = bytes((-t - b - 1) % 16)
        self.prefixes = [tweak + padding + bytes([i]) for i in range(_ROUNDS)]
        self.moduli = (radix**u, radix**v)
        self.decimal_formats = (f"0{u}d", f"0{v}d")
        self.round_keys: list[tuple[int, int]] | None = None
        if t + b + 1 <= 16 and b <= 8:  # Q is one block and its variable part fits 64 bits
            state = int.from_bytes(self.first_state, "big")
            keys = [state ^ (int.from_bytes(prefix, "big") << (8 * b)) for prefix in self.prefixes]
            self.round_keys = [(key >> 64, key & _LOW64) for key in keys]
