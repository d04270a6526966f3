"""Tokens: deterministic keyed tokens and format-preserving tokens per kind (``guard.tokens``).

- :meth:`Tokens.token` is an HMAC of the *normalised* value under a key derived per kind:
  stable across processes sharing a store, linkable (equal values give equal tokens, which is
  what joins need), irreversible, and never an unkeyed digest. It names its format version and
  key id: ``tok_`` + URL-safe base64 of ``version | key id | 20-byte HMAC``.
- :meth:`Tokens.fpe` is FF1 under a key derived per kind, shaped so the token passes the
  validators the original passed (see docs/tokenization.md for each kind); ``fpe_decrypt``
  reverses it. Tweaks bind tokens to a tenant or a field. The token is computed from the
  normalised value and written back over the input's layout only when that layout's digits are
  exactly the normalised digits; any other accepted spelling (Arabic-Indic digits, an extension)
  gets the token in the canonical form, so no input comes back unchanged.

The keyring hands out bound primitives (a :class:`~piiguard.crypto.handles.Mac`, an FF1), never
key bytes, so no frame here holds a key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta

from piiguard.crypto import Keyring, wire
from piiguard.crypto.ff1 import FF1
from piiguard.crypto.handles import Mac
from piiguard.errors import InvalidArgument, InvalidPII, boundary, contract_error
from piiguard.events import AccessEvent, Reveals
from piiguard.kinds import PIIKind, get_kind
from piiguard.validate import cn_resident_id_check_char, is_cn_mobile, luhn_valid
from piiguard.validate.text import SEPARATORS, to_halfwidth

__all__ = ["Tokens"]

_TOKEN_PREFIX = "tok_"  # noqa: S105 - a token prefix, not a secret
_TOKEN_VERSION = b"\x01"
_TOKEN_DIGEST = 20
_ALNUM = "0123456789abcdefghijklmnopqrstuvwxyz"
#: Birth dates a format-preserving ID token can carry: a fixed window, so tokens never move.
_ID_FIRST_DAY = date(1900, 1, 1)
_ID_DAYS = (date(2019, 12, 31) - _ID_FIRST_DAY).days + 1
_ID_DOMAIN = _ID_DAYS * 1000  # day index * 1000 + 3-digit sequence number
#: What a layout may hold besides ASCII digits for the token to be written back over it.
_PHONE_PUNCTUATION = SEPARATORS + "+"
_CARD_PUNCTUATION = SEPARATORS
#: Digits a phone layout may carry before the 11-digit national number: none, the country
#: code, or the international prefix with it (the forms check_phone reads as a CN mobile).
_PHONE_PREFIXES = ("", "86", "0086")


def _unsupported(kind: str) -> InvalidPII:
    return InvalidPII(kind, "fpe_unsupported", "no format-preserving token for this value")


class Tokens:
    """Deterministic and format-preserving tokens under one keyring's root keys."""

    def __init__(self, keyring: Keyring, reveals: Reveals) -> None:
        self._keyring = keyring
        self._reveals = reveals
        self._token_keys: dict[str, tuple[bytes, Mac]] = {}
        self._fpe: dict[str, Callable[[FF1, str, bytes, bool], str | InvalidPII]] = {
            "phone": _fpe_phone,
            "bank_card": _fpe_bank_card,
            "cn_resident_id": _fpe_cn_resident_id,
            "email": _fpe_email,
        }
        #: Kinds whose layout (separators) a token keeps; the others are always canonical.
        self._layouts: dict[str, Callable[[str, str, str], str | None]] = {
            "phone": _phone_layout,
            "bank_card": _card_layout,
        }

    # -- deterministic tokens -------------------------------------------------------------

    def _token_key(self, kind: PIIKind) -> tuple[bytes, Mac]:
        """(token prefix, the kind's bound MAC): a handle, never the key's bytes."""
        found = self._token_keys.get(kind.name)
        if found is None:
            mac = self._keyring.mac("token", b"token/" + kind.name.encode())
            prefix = _TOKEN_VERSION + mac.key_id.to_bytes(4, "big")
            found = self._token_keys[kind.name] = (prefix, mac)
        return found

    def token(self, value: str, *, kind: str | PIIKind) -> str:
        """A deterministic, keyed, irreversible token of the normalised value.

        Raises:
            InvalidPII: the value is not valid for ``kind`` (the error never holds it).
            UnknownKind: no such kind.
        """
        # the boundary written out: this is a hot call, and a wrapper's frame costs 10%
        normalised: object = None
        try:
            resolved = get_kind(kind)
            normalised = resolved.check(value)
            if type(normalised) is str:
                prefix, key = self._token_key(resolved)
                digest = key.digest(normalised.encode("utf-8", "surrogatepass"))
                return _TOKEN_PREFIX + wire.to_text(prefix + digest[:_TOKEN_DIGEST])
            failure = contract_error(normalised)  # type: ignore[arg-type]
        except Exception as error:
            failure = contract_error(error)
        del value, kind, normalised
        raise failure

    @boundary
    def token_many(self, values: Sequence[str], *, kind: str | PIIKind) -> list[str]:
        """Tokens of many values of one kind; the key is resolved once.

        Raises:
            InvalidPII: any value is invalid (no tokens are returned).
        """
        resolved = get_kind(kind)
        prefix, mac = self._token_key(resolved)
        out: list[str] = []
        for value in values:
            normalised = resolved.check(value)
            if not isinstance(normalised, str):
                out.clear()
                del value, values
                raise normalised
            digest = mac.digest(normalised.encode("utf-8", "surrogatepass"))
            out.append(_TOKEN_PREFIX + wire.to_text(prefix + digest[:_TOKEN_DIGEST]))
        return out

    # -- format-preserving tokens ----------------------------------------------------------

    def _cipher(self, kind: str) -> FF1:
        """The kind's FF1, bound to its key by the keyring."""
        return self._keyring.ff1(
            "fpe", b"fpe/" + kind.encode(), "0123456789" if kind != "email" else _ALNUM
        )

    def _run(
        self, value: object, kind: str | PIIKind, tweak: bytes, decrypt: bool
    ) -> str | Exception:
        """The token (or plaintext) of the normalised value, laid out like ``value`` when its
        layout allows; or the error, returned so the caller raises it from a clean frame."""
        normalised: str | InvalidPII | None = None
        token: str | InvalidPII | None = None
        try:
            resolved = get_kind(kind)
            shaper = self._fpe.get(resolved.name)
            if shaper is None or not isinstance(tweak, bytes):
                return (
                    _unsupported(resolved.name)
                    if shaper is None
                    else InvalidArgument("tweak is bytes")
                )
            normalised = resolved.check(value)
            if not isinstance(normalised, str):
                return normalised
            token = shaper(self._cipher(resolved.name), normalised, tweak, decrypt)
            return self._lay_out(resolved, value, normalised, token)
        except Exception as error:  # handed back to the caller
            value = normalised = token = None
            # Without its traceback: the frames below (the shaper's, FF1's) hold the value,
            # parts of it in the bound tweak, and the cipher.
            return error.with_traceback(None)

    def _lay_out(
        self, kind: PIIKind, value: object, normalised: str, token: str | InvalidPII
    ) -> str | InvalidPII:
        """``token`` written over ``value``'s layout when the kind keeps layouts and the
        layout's digits are exactly the normalised digits; the canonical token otherwise."""
        relayout = self._layouts.get(kind.name)
        if not isinstance(token, str) or relayout is None or not isinstance(value, str):
            return token
        laid_out = relayout(to_halfwidth(value).strip(), normalised, token)
        # Kept only if it reads back as the canonical token: a layout is cosmetic.
        return laid_out if laid_out is not None and kind.check(laid_out) == token else token

    @boundary
    def fpe(self, value: str, *, kind: str | PIIKind, tweak: bytes = b"") -> str:
        """A format-preserving token: a value of the same kind, length and layout, reversible.

        Raises:
            InvalidPII: the value is invalid, its kind has no format-preserving token, or its
                domain is below the 10^6 that FF1 requires (refused, not weakened).
        """
        result = self._run(value, kind, tweak, decrypt=False)
        if isinstance(result, str):
            return result
        del value
        raise result

    @boundary
    def fpe_decrypt(
        self,
        token: str,
        *,
        kind: str | PIIKind,
        tweak: bytes = b"",
        actor: str | None = None,
        purpose: str | None = None,
    ) -> str:
        """The value a format-preserving token stands for (same kind and tweak), revealed to
        ``actor`` for ``purpose`` (else those of ``pg.acting``) and recorded first.

        Raises:
            AccessDenied: no actor, no purpose, or a purpose not covering the kind.
        """
        return self._reveal_many([token], kind, tweak, actor, purpose, single=True)[0]

    @boundary
    def fpe_many(
        self, values: Sequence[str], *, kind: str | PIIKind, tweak: bytes = b""
    ) -> list[str]:
        """:meth:`fpe` of each value; all or nothing (the first invalid value raises)."""
        return self._run_many(values, kind, tweak, decrypt=False)

    @boundary
    def fpe_decrypt_many(
        self,
        tokens: Sequence[str],
        *,
        kind: str | PIIKind,
        tweak: bytes = b"",
        actor: str | None = None,
        purpose: str | None = None,
    ) -> list[str]:
        """:meth:`fpe_decrypt` of each token, all or nothing, recorded as one event."""
        return self._reveal_many(tokens, kind, tweak, actor, purpose, single=False)

    def _reveal_many(
        self,
        tokens: Sequence[str],
        kind: str | PIIKind,
        tweak: bytes,
        actor: str | None,
        purpose: str | None,
        *,
        single: bool,
    ) -> list[str]:
        resolved = get_kind(kind)
        count = len(tokens)
        who = self._reveals.admit(
            actor, purpose, action="fpe_decrypt", kinds=(resolved.name,), count=count
        )
        if isinstance(who, Exception):
            del tokens
            raise who
        if single:
            result = self._run(tokens[0], resolved, tweak, decrypt=True)
            if not isinstance(result, str):
                del tokens  # an invalid "token" may be a plaintext value passed by mistake
                self._reveals.release(who, count)  # none revealed: none counts
                raise result
            out = [result]
        else:
            try:
                out = self._run_many(tokens, resolved, tweak, decrypt=True)
            except BaseException:
                self._reveals.release(who, count)
                raise
        event = AccessEvent(
            "fpe_decrypt",
            who[0],
            who[1],
            self._reveals.now(),
            {"kind": resolved.name},
            count=len(out),
            kind=resolved.name,
        )
        failure = self._reveals.record(event) if out else None
        if failure is None:
            return out
        out.clear()
        raise failure

    def _run_many(
        self, values: Sequence[str], kind: str | PIIKind, tweak: bytes, decrypt: bool
    ) -> list[str]:
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise InvalidArgument("values is a sequence of str")
        out: list[str] = []
        for value in values:
            result = self._run(value, kind, tweak, decrypt=decrypt)
            if not isinstance(result, str):
                del value, values, out
                raise result
            out.append(result)
        return out


def _replace_digits(layout: str, digits: str) -> str:
    """``layout`` with its ASCII digits replaced, in order, by ``digits``."""
    replacement = iter(digits)
    return "".join(next(replacement) if "0" <= char <= "9" else char for char in layout)


def _layout_digits(layout: str, punctuation: str) -> str | None:
    """The ASCII digits of a layout made only of them and ``punctuation``; else None.

    Anything else (a digit of another script, a letter, an extension's text) means the
    token cannot be written over the layout digit for digit.
    """
    if layout.translate(_deleter(punctuation + "0123456789")):
        return None
    return layout.translate(_deleter(punctuation))


def _deleter(chars: str) -> dict[int, None]:
    return dict.fromkeys(map(ord, chars))


def _phone_layout(layout: str, normalised: str, token: str) -> str | None:
    """The E.164 token written over a layout whose digits are the national number, with
    nothing, ``86`` or ``0086`` before it (``138 1234 5678``, ``+86 138-...``); else None."""
    digits = _layout_digits(layout, _PHONE_PUNCTUATION)
    national = normalised[3:]
    if digits is None or digits[-11:] != national or digits[:-11] not in _PHONE_PREFIXES:
        return None
    return _replace_digits(layout, digits[:-11] + token[3:])


def _card_layout(layout: str, normalised: str, token: str) -> str | None:
    """The token written over a layout whose digits are exactly the card number; else None."""
    if _layout_digits(layout, _CARD_PUNCTUATION) != normalised:
        return None
    return _replace_digits(layout, token)


def _fpe_phone(ff1: FF1, value: str, tweak: bytes, decrypt: bool) -> str | InvalidPII:
    """CN mobiles (E.164 in, E.164 out): keep the country code and the carrier prefix that
    keeps every completion a mobile; encrypt the rest."""
    national = value[3:]
    if not value.startswith("+86") or not is_cn_mobile(national):
        return _unsupported("phone")
    keep = next(
        size
        for size in (3, 4, 5, 6)
        if all(
            is_cn_mobile(national[:size] + fill[: 11 - size])
            for fill in ("00000000", "99999999", "12345678", "87654321", "50505050")
        )
    )
    run = ff1.decrypt if decrypt else ff1.encrypt
    return (
        "+86"
        + national[:keep]
        + run(national[keep:], b"phone|" + national[:keep].encode() + b"|" + tweak)
    )


def _fpe_bank_card(ff1: FF1, value: str, tweak: bytes, decrypt: bool) -> str | InvalidPII:
    """Keep the first 6 (BIN) and last 4; encrypt the middle, cycle-walking to a Luhn-valid
    number so the token passes card validators (decryption walks back the same cycle)."""
    if len(value) < 16:
        return InvalidPII(
            "bank_card", "fpe_domain", "the middle digits are below FF1's 10^6 domain"
        )
    first, middle, last = value[:6], value[6:-4], value[-4:]
    bound = b"bank_card|" + first.encode() + last.encode() + b"|" + tweak
    run = ff1.decrypt if decrypt else ff1.encrypt
    middle = run(middle, bound)
    while not luhn_valid(first + middle + last):
        middle = run(middle, bound)
    return first + middle + last


def _fpe_cn_resident_id(ff1: FF1, value: str, tweak: bytes, decrypt: bool) -> str | InvalidPII:
    """Keep the region; encrypt (birth day, sequence number) within 1900-2019 by cycle-walking
    over 8 digits, so the token has a real past birth date and a right check character."""
    born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    day = (born - _ID_FIRST_DAY).days
    if not 0 <= day < _ID_DAYS:
        return InvalidPII("cn_resident_id", "fpe_domain", "birth dates 1900-2019 only")
    number = f"{day * 1000 + int(value[14:17]):08d}"
    bound = b"cn_resident_id|" + value[:6].encode() + b"|" + tweak
    run = ff1.decrypt if decrypt else ff1.encrypt
    number = run(number, bound)
    while int(number) >= _ID_DOMAIN:
        number = run(number, bound)
    day_index, sequence = divmod(int(number), 1000)
    first17 = (
        value[:6]
        + (_ID_FIRST_DAY + timedelta(days=day_index)).strftime("%Y%m%d")
        + f"{sequence:03d}"
    )
    return first17 + cn_resident_id_check_char(first17)


def _fpe_email(ff1: FF1, value: str, tweak: bytes, decrypt: bool) -> str | InvalidPII:
    """Keep the domain and the local part's punctuation; encrypt its letters and digits
    (lower-cased) as one FF1 text over [0-9a-z]."""
    local, _, domain = value.rpartition("@")
    local = local.lower()
    positions = [index for index, char in enumerate(local) if char in _ALNUM]
    if len(positions) < ff1.min_length:
        return InvalidPII("email", "fpe_domain", "too few letters and digits for FF1's domain")
    run = ff1.decrypt if decrypt else ff1.encrypt
    encrypted = run(
        "".join(local[index] for index in positions), b"email|" + domain.encode() + b"|" + tweak
    )
    chars = list(local)
    for index, char in zip(positions, encrypted, strict=True):
        chars[index] = char
    return "".join(chars) + "@" + domain
