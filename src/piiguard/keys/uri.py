"""KEKs named by text, as configuration holds them (``PIIGUARD_KEK``):

- ``file:PATH``: a :class:`~piiguard.keys.LocalKEK` key file;
- ``pkcs11:token=LABEL;object=LABEL`` (RFC 7512, ``?module-path=`` optional): a
  :class:`~piiguard.keys.Pkcs11KEK`, its PIN given apart (never in the URI);
- ``aws-kms:ARN``: an :class:`~piiguard.keys.AwsKmsKEK`.

Errors name the setting (``where``), never its text: a URI may hold a path or a key id an
operator would rather not see in a log, and a misplaced PIN must never be echoed.
"""

from __future__ import annotations

from urllib.parse import unquote

from piiguard.errors import InvalidArgument
from piiguard.keys.aws import AwsKmsKEK
from piiguard.keys.local import LocalKEK
from piiguard.keys.pkcs11 import Pkcs11KEK
from piiguard.keys.protocol import KEKProvider

__all__ = ["kek_from_uri"]

_SCHEMES = "file:PATH, pkcs11:token=...;object=... or aws-kms:ARN"


def _attributes(text: str, separator: str, where: str) -> dict[str, str]:
    """``name=value`` pairs of an RFC 7512 path or query, percent-decoded; a name twice or a
    pair without ``=`` is refused."""
    found: dict[str, str] = {}
    for pair in text.split(separator) if text else ():
        name, equals, value = pair.partition("=")
        if not equals or not name or name in found:
            raise InvalidArgument(f"{where} is not a valid pkcs11: URI (RFC 7512)")
        found[name] = unquote(value)
    return found


def _pkcs11(rest: str, where: str, *, pin: str | None, module: str | None) -> Pkcs11KEK:
    path, _, query = rest.partition("?")
    attributes = _attributes(path, ";", where)
    options = _attributes(query, "&", where)
    if "pin-value" in options or "pin-source" in options:
        raise InvalidArgument(f"{where} holds a PIN: give it apart (PIIGUARD_PKCS11_PIN)")
    unknown = set(attributes) - {"token", "object", "type"} or set(options) - {"module-path"}
    if unknown or attributes.get("type", "secret-key") != "secret-key":
        raise InvalidArgument(f"{where}: piiguard reads token, object and module-path only")
    token, label = attributes.get("token"), attributes.get("object")
    if not token or not label:
        raise InvalidArgument(f"{where} names no token= or no object=")
    library = options.get("module-path") or module
    if not library:
        raise InvalidArgument(f"{where} names no module-path (or set PIIGUARD_PKCS11_MODULE)")
    if not pin:
        raise InvalidArgument(f"{where} is an HSM key: its PIN is not set (PIIGUARD_PKCS11_PIN)")
    return Pkcs11KEK(lib=library, token_label=token, pin=pin, key_label=label)


def kek_from_uri(
    text: str,
    *,
    where: str = "the KEK URI",
    pin: str | None = None,
    module: str | None = None,
    create: bool = False,
) -> KEKProvider:
    """The KEK ``text`` names.

    Args:
        text: ``file:PATH``, ``pkcs11:token=...;object=...`` or ``aws-kms:ARN``.
        where: what errors call the setting (``"PIIGUARD_KEK"``).
        pin: an HSM's user PIN (a ``pkcs11:`` URI must not hold it).
        module: the PKCS#11 module path when the URI has no ``module-path``.
        create: make a ``file:`` key that does not exist yet
            (:meth:`LocalKEK.load_or_generate`); else it must exist.

    Raises:
        InvalidArgument: the text names no KEK (the message names ``where``, not the text).
        KeyProviderError, InsecureKeyFile: the KEK it names cannot be used.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument(f"{where} is empty: it is one of {_SCHEMES}")
    scheme, colon, rest = text.strip().partition(":")
    if not colon or not rest:
        raise InvalidArgument(f"{where} is not one of {_SCHEMES}")
    if scheme == "file":
        return LocalKEK.load_or_generate(rest) if create else LocalKEK.from_file(rest)
    if scheme == "pkcs11":
        return _pkcs11(rest, where, pin=pin, module=module)
    if scheme == "aws-kms":
        return AwsKmsKEK(key_id=rest)
    raise InvalidArgument(f"{where} is not one of {_SCHEMES}")
