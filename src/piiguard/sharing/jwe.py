"""A share's envelope: compact JWE (RFC 7516) to the recipient's public key, made by joserfc
(RSA-OAEP-256 or ECDH-ES+A256KW, A256GCM), which any standard JOSE library opens with the
recipient's private key."""

from __future__ import annotations

import functools
import json
from typing import Any

from joserfc import jwe
from joserfc.jwk import import_key

from piiguard.sharing.recipients import Recipient, key_algorithm

__all__ = ["CONTENT_ENCRYPTION", "seal"]

CONTENT_ENCRYPTION = "A256GCM"


@functools.lru_cache(maxsize=256)
def _key(jwk: str) -> tuple[Any, dict[str, Any]]:
    """The imported public key and the protected header for it (parsed once per key)."""
    found = json.loads(jwk)
    key = import_key(found)
    header = {"alg": key_algorithm(key), "enc": CONTENT_ENCRYPTION, "cty": "application/json"}
    if isinstance(found.get("kid"), str):
        header["kid"] = found["kid"]
    return key, header


def seal(recipient: Recipient, plaintext: bytes) -> str:
    """``plaintext`` encrypted to ``recipient``'s public key, as a compact JWE."""
    key, header = _key(json.dumps(dict(recipient.jwk), sort_keys=True))
    algorithms = [header["alg"], CONTENT_ENCRYPTION]
    return jwe.encrypt_compact(dict(header), plaintext, key, algorithms=algorithms)
