"""A Guard's configuration from the environment (``Guard.from_env``).

Read by hand rather than through pydantic-settings: a validation error of that library
echoes the value it refused, and these values hold a database password, an HSM PIN, a key
path. Every error here names the variable and never its value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from piiguard.errors import InvalidArgument
from piiguard.keys import KEKProvider
from piiguard.keys.uri import kek_from_uri

__all__ = ["VARIABLES", "Settings", "read_settings"]

_log = structlog.get_logger("piiguard")

#: Every variable piiguard reads, with what it holds.
VARIABLES: Mapping[str, str] = {
    "PIIGUARD_STORE_URL": "the store's SQLAlchemy URL (required)",
    "PIIGUARD_KEK": "file:PATH, pkcs11:token=...;object=... or aws-kms:ARN (required)",
    "PIIGUARD_PREVIOUS_KEKS": "KEKs still accepted during a rotation, space-separated URIs",
    "PIIGUARD_PKCS11_PIN": "the HSM user PIN, for pkcs11: KEKs",
    "PIIGUARD_PKCS11_MODULE": "the PKCS#11 module, when the URI has no module-path",
    "PIIGUARD_SCHEMA": "a PostgreSQL schema for piiguard's tables",
    "PIIGUARD_SUITE": "aes256gcm (default) or sm4gcm",
    "PIIGUARD_ERASURE_LOG": "a file outside the store's backups naming every erasure",
}
#: Variables of piiguard's own test suite, not of a Guard.
_NOT_SETTINGS = frozenset({"PIIGUARD_REQUIRE_BACKENDS"})


@dataclass(frozen=True, slots=True)
class Settings:
    """What ``Guard.open`` is given, read from the environment."""

    url: str | None
    kek: KEKProvider | None
    previous_keks: tuple[KEKProvider, ...]
    schema: str | None
    suite: str
    erasure_log: str | None

    def __repr__(self) -> str:  # the URL may hold a password
        return f"Settings(schema={self.schema!r}, suite={self.suite!r}, kek={self.kek!r})"


def _text(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    if value is None or not value.strip():
        return None
    if "\x00" in value:
        raise InvalidArgument(f"{name} holds a NUL character")
    return value.strip()


def _required(environ: Mapping[str, str], name: str) -> str:
    value = _text(environ, name)
    if value is None:
        raise InvalidArgument(f"{name} is not set: {VARIABLES[name]}")
    return value


def read_settings(
    environ: Mapping[str, str] | None = None, *, given: frozenset[str] = frozenset()
) -> Settings:
    """The settings the ``PIIGUARD_*`` variables of ``environ`` (default ``os.environ``)
    hold; ``given`` names the settings (``"url"``, ``"kek"``) the caller passes itself,
    which are then neither required nor read. A ``file:`` KEK that does not exist yet is
    made (``LocalKEK.load_or_generate``); previous KEKs must exist. A ``PIIGUARD_`` variable
    piiguard does not read (a typo, such as ``PIIGUARD_ERASURE_LGO``) is logged as
    ``unknown_setting``, by name.

    Raises:
        InvalidArgument: a variable is missing or malformed; the message names it, never its
            value.
        KeyProviderError, InsecureKeyFile: a KEK named cannot be used.
    """
    environ = os.environ if environ is None else environ
    for name in sorted(environ):
        if name.startswith("PIIGUARD_") and name not in VARIABLES and name not in _NOT_SETTINGS:
            _log.warning("unknown_setting", variable=name, known=sorted(VARIABLES))
    url = None if "url" in given else _required(environ, "PIIGUARD_STORE_URL")
    pin = _text(environ, "PIIGUARD_PKCS11_PIN")
    module = _text(environ, "PIIGUARD_PKCS11_MODULE")
    kek = (
        None
        if "kek" in given
        else kek_from_uri(
            _required(environ, "PIIGUARD_KEK"),
            where="PIIGUARD_KEK",
            pin=pin,
            module=module,
            create=True,
        )
    )
    previous = tuple(
        kek_from_uri(text, where="PIIGUARD_PREVIOUS_KEKS", pin=pin, module=module)
        for text in (_text(environ, "PIIGUARD_PREVIOUS_KEKS") or "").split()
    )
    return Settings(
        url=url,
        kek=kek,
        previous_keks=previous,
        schema=_text(environ, "PIIGUARD_SCHEMA"),
        suite=_text(environ, "PIIGUARD_SUITE") or "aes256gcm",
        erasure_log=_text(environ, "PIIGUARD_ERASURE_LOG"),
    )
