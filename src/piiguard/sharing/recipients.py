"""Who may receive personal information, under what terms: recipients, contracts and
cross-border transfers, checked when registered and again at every share.

A recipient is assessed (GB/T 35273-2020 §9.2, PIPL Art. 55), may be bound by a contract,
receives only the fields it names and each in the form it names (clear, masked by the
kind's rule, or a token the shop resolves), and only for the purposes it names. Its public
key is a JWK: shares are encrypted to it as compact JWE (RFC 7516).
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, Literal

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

from piiguard.errors import InvalidArgument

__all__ = [
    "MECHANISMS",
    "RULES",
    "Contract",
    "CrossBorder",
    "Recipient",
    "key_algorithm",
]

#: How a recipient receives a field: in clear, masked by its kind's rule, or as a vault
#: token that only the shop can resolve (a privacy waybill's phone).
RULES = frozenset({"clear", "masked", "token"})
Rule = Literal["clear", "masked", "token"]
#: The legal mechanisms of a transfer abroad (PIPL Art. 38; 2024 Provisions on Promoting and
#: Regulating Cross-Border Data Flows, Art. 5-8): a CAC security assessment, the standard
#: contract filed with the CAC, a certification, or an exemption of Art. 5 (a contract with
#: the subject, such as cross-border shopping or delivery; fewer than 100,000 people a year).
MECHANISMS = frozenset({"security_assessment", "standard_contract", "certification", "exempt"})
Mechanism = Literal["security_assessment", "standard_contract", "certification", "exempt"]
#: Names of recipients, purposes and fields: what can be recorded in clear.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_CURVES = frozenset({"P-256", "P-384", "P-521", "X25519", "X448"})
_MIN_RSA_BITS = 2048


def _name(what: str, value: object) -> str:
    if type(value) is not str or _NAME.fullmatch(value) is None:
        raise InvalidArgument(
            f"{what} is a name: a letter, then up to 63 letters, digits or _ . : -"
        )
    return value


def _reference(what: str, value: object) -> str:
    if type(value) is not str or not value.strip() or len(value) > 128 or not value.isprintable():
        raise InvalidArgument(f"{what} is 1 to 128 printable characters")
    return value


def _day(what: str, value: object) -> date:
    """A calendar day as a plain ``datetime.date``: a datetime (a subclass of date, as are
    pandas' and pendulum's) is refused, a date subclass is made plain, so the stored terms
    read back the same."""
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidArgument(f"{what} is a datetime.date, not a datetime")
    return date(value.year, value.month, value.day)


@dataclass(frozen=True, slots=True)
class Contract:
    """The contract that binds a recipient (PIPL Art. 21, 23): its reference and the last
    day it is in force."""

    ref: str
    until: date

    def __post_init__(self) -> None:
        _reference("a contract's ref", self.ref)
        object.__setattr__(self, "until", _day("a contract's until", self.until))


@dataclass(frozen=True, slots=True)
class CrossBorder:
    """A recipient abroad (PIPL Ch. III).

    Args:
        country: ISO 3166-1 alpha-2 code of the recipient's country or region (``"SG"``).
        mechanism: the legal mechanism the transfer relies on (:data:`MECHANISMS`).
        filing_ref: the assessment's, filing's or certificate's reference; required unless
            the transfer is ``exempt``.
        consent: the registered purpose (basis ``consent``, ``separate=True``) whose grant is
            the subject's separate consent to the transfer (PIPL Art. 39); every share to
            this recipient checks it.
    """

    country: str
    mechanism: Mechanism
    filing_ref: str | None = None
    consent: str | None = None

    def __post_init__(self) -> None:
        if type(self.country) is not str or _COUNTRY.fullmatch(self.country) is None:
            raise InvalidArgument("a country is an ISO 3166-1 alpha-2 code in capitals")
        if self.mechanism not in MECHANISMS:
            raise InvalidArgument(f"a cross-border mechanism is one of {sorted(MECHANISMS)}")
        if self.filing_ref is None:
            if self.mechanism != "exempt":
                raise InvalidArgument(
                    "a transfer under an assessment, a standard contract or a certification "
                    "names its filing_ref"
                )
        else:
            _reference("a filing_ref", self.filing_ref)
        if self.consent is None:
            raise InvalidArgument(
                "a transfer abroad needs the subject's separate consent (PIPL Art. 39): name "
                "the purpose whose grant records it (consent=)"
            )
        _name("a cross-border consent purpose", self.consent)

    def as_dict(self) -> dict[str, str | None]:
        return {
            "country": self.country,
            "mechanism": self.mechanism,
            "filing_ref": self.filing_ref,
            "consent": self.consent,
        }


#: The members a public encryption JWK has (RFC 7517 §4, RFC 7518 §6.2.1 and §6.3.1, RFC 8037):
#: anything else (``d``, ``p``, ``q``, ``dp``, ``dq``, ``qi``, ``oth``, ``k``, a private
#: member under another name, a URL to fetch) is refused, so only public material is stored.
_PUBLIC_MEMBERS = frozenset({"kty", "n", "e", "crv", "x", "y", "kid", "alg", "use", "key_ops"})
#: What a key id may look like: it travels in the JWE's clear header.
_KEY_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def _member_refusal(jwk: Mapping[str, Any]) -> InvalidArgument | None:
    """Why a JWK is not a plain public key, or None."""
    if not _PUBLIC_MEMBERS.issuperset(jwk):
        return InvalidArgument(
            "public_key holds members a public JWK does not (private or secret key "
            "material?): give the recipient's public JWK only (kty, n, e, crv, x, y, kid, "
            "alg, use, key_ops); the private key stays with the recipient"
        )
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not _KEY_ID.fullmatch(kid)):
        return InvalidArgument("public_key's kid is not a key id (letters, digits, ._:/+=-)")
    return None


def _public_jwk(value: object) -> dict[str, Any]:
    """The recipient's public JWK as a dict, checked: a public key (never a private one),
    for encryption, of a kind and size JWE encrypts to safely."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidArgument("public_key is a JWK: a mapping or its JSON") from None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidArgument("public_key is a JWK: a mapping or its JSON")
    jwk = dict(value)
    refusal = _member_refusal(jwk)
    if refusal is not None:
        del value, jwk  # a private key given by mistake stays out of this frame
        raise refusal
    if jwk.get("use", "enc") != "enc":
        raise InvalidArgument("public_key is marked for another use than encryption")
    operations = jwk.get("key_ops")
    if operations is not None and (
        not isinstance(operations, list) or not set(operations) & {"wrapKey", "deriveKey"}
    ):
        raise InvalidArgument("public_key's key_ops allow neither wrapKey nor deriveKey")
    if "alg" in jwk and jwk["alg"] not in {"RSA-OAEP-256", "ECDH-ES+A256KW"}:
        raise InvalidArgument("public_key's alg is not RSA-OAEP-256 or ECDH-ES+A256KW")
    try:
        with warnings.catch_warnings():  # a small key is refused below, not warned about
            warnings.simplefilter("ignore")
            key = import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidArgument("public_key is not a valid public JWK") from None
    key_algorithm(key)  # refuses what JWE should not encrypt to
    _trial(json.dumps(jwk, sort_keys=True))  # and what it cannot
    return jwk


@functools.lru_cache(maxsize=256)
def _trial(jwk: str) -> None:
    """Encrypt a JWE to the key once: a key the JOSE library would refuse at the first share
    (its ``key_ops``, its ``alg``) is refused at registration instead, with a typed error."""
    key = import_key(json.loads(jwk))
    algorithm = key_algorithm(key)
    try:
        jwe.encrypt_compact(
            {"alg": algorithm, "enc": "A256GCM"}, b"{}", key, algorithms=[algorithm, "A256GCM"]
        )
    except (JoseError, ValueError, TypeError):
        raise InvalidArgument("public_key cannot be encrypted to as a JWE") from None


def key_algorithm(key: object) -> str:
    """The JWE key management algorithm for a recipient's key: RSA-OAEP-256 for RSA keys of
    2048 bits or more, ECDH-ES+A256KW for the NIST curves and X25519/X448."""
    if isinstance(key, RSAKey):
        if key.raw_value.key_size < _MIN_RSA_BITS:
            raise InvalidArgument(f"an RSA public_key has at least {_MIN_RSA_BITS} bits")
        return "RSA-OAEP-256"
    if isinstance(key, ECKey | OKPKey):
        if key.curve_name not in _CURVES:
            raise InvalidArgument(f"an EC or OKP public_key is on one of {sorted(_CURVES)}")
        return "ECDH-ES+A256KW"
    raise InvalidArgument("public_key is an RSA, EC or OKP public JWK")


@dataclass(frozen=True, slots=True)
class Recipient:
    """A third party that may receive personal information from the shop.

    Args:
        name: how shares and records name it (``"sf-express"``).
        public_key: its public JWK (a mapping or its JSON): RSA of 2048 bits or more
            (RSA-OAEP-256), or EC P-256/384/521 or X25519/X448 (ECDH-ES+A256KW); A256GCM.
        purposes: the registered purposes it may receive data for.
        fields: field (dotted path for nested ones) -> ``"clear"``, ``"masked"`` or
            ``"token"``; every other field is left out.
        assessed_until: the last day its security assessment holds (GB/T 35273-2020 §9.2).
        contract: the contract binding it, if any; shares stop the day after ``until``.
        cross_border: set when it is abroad (:class:`CrossBorder`).
    """

    name: str
    public_key: Mapping[str, Any] | str
    purposes: frozenset[str] | set[str] | tuple[str, ...]
    fields: Mapping[str, Rule]
    assessed_until: date
    contract: Contract | None = None
    cross_border: CrossBorder | None = None
    jwk: Mapping[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _name("a recipient's name", self.name)
        try:
            jwk = _public_jwk(self.public_key)
        except InvalidArgument as refused:
            object.__setattr__(self, "public_key", None)  # a private key given by mistake
            raise refused.with_traceback(None) from None
        object.__setattr__(self, "jwk", MappingProxyType(jwk))
        given: object = self.purposes
        if not isinstance(given, frozenset | set | tuple | list) or not given:
            raise InvalidArgument("a recipient's purposes are a non-empty set of names")
        purposes = frozenset(_name("a purpose", p) for p in given)
        object.__setattr__(self, "purposes", purposes)
        if not isinstance(self.fields, Mapping) or not self.fields:
            raise InvalidArgument("a recipient's fields map field names to a rule")
        for path, rule in self.fields.items():
            _name("a field", path)
            if rule not in RULES:
                raise InvalidArgument(f"a field's rule is one of {sorted(RULES)}")
            if any(other.startswith(path + ".") for other in self.fields):
                raise InvalidArgument(
                    "a recipient names single values: a field and a field inside it "
                    "(order and order.phone) cannot both be named"
                )
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))
        object.__setattr__(self, "assessed_until", _day("assessed_until", self.assessed_until))
        if self.contract is not None and not isinstance(self.contract, Contract):
            raise InvalidArgument("contract is a pg.Contract")
        if self.cross_border is not None and not isinstance(self.cross_border, CrossBorder):
            raise InvalidArgument("cross_border is a pg.CrossBorder")

    def terms(self) -> dict[str, Any]:
        """Its terms as JSON-ready data, without its key: what the record of processing
        shows, and (with the key) what the store keeps."""
        return {
            "name": self.name,
            "purposes": sorted(self.purposes),
            "fields": dict(sorted(self.fields.items())),
            "assessed_until": self.assessed_until.isoformat(),
            "contract": None
            if self.contract is None
            else {"ref": self.contract.ref, "until": self.contract.until.isoformat()},
            "cross_border": None if self.cross_border is None else self.cross_border.as_dict(),
        }

    def definition(self) -> str:
        """The recipient as stored: canonical JSON (the public key, never anything private)."""
        return json.dumps(
            {**self.terms(), "public_key": dict(self.jwk)}, sort_keys=True, separators=(",", ":")
        )

    @classmethod
    def from_definition(cls, text: str) -> Recipient:
        """The recipient :meth:`definition` stored."""
        found = json.loads(text)
        contract = found["contract"]
        crossing = found["cross_border"]
        return cls(
            name=found["name"],
            public_key=found["public_key"],
            purposes=frozenset(found["purposes"]),
            fields=found["fields"],
            assessed_until=date.fromisoformat(found["assessed_until"]),
            contract=None
            if contract is None
            else Contract(contract["ref"], date.fromisoformat(contract["until"])),
            cross_border=None if crossing is None else CrossBorder(**crossing),
        )
