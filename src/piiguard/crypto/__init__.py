"""Envelope encryption: suites, the wire format, context binding, the keyring, blind indexes.

``piiguard.crypto.hazmat`` holds the raw primitives and is never re-exported.
"""

from piiguard.crypto.envelope import Envelope
from piiguard.crypto.epochs import EpochReport
from piiguard.crypto.erasure_log import ErasureLog
from piiguard.crypto.keyring import DEFAULT_MAX_USES, LIVENESS_INTERVAL, Keyring, RotationReport
from piiguard.crypto.suites import SUITES, Suite, get_suite

__all__ = [
    "DEFAULT_MAX_USES",
    "LIVENESS_INTERVAL",
    "SUITES",
    "Envelope",
    "EpochReport",
    "ErasureLog",
    "Keyring",
    "RotationReport",
    "Suite",
    "get_suite",
]
