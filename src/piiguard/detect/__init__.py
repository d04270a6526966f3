"""Detection: find PII in free text (scan) and mask it in place (redact).

Pure functions: nothing here touches keys, storage or the network.
"""

from piiguard.detect.redact import redact, redact_many
from piiguard.detect.scan import DETECTED_KINDS, PATTERN_KINDS, Finding, scan, scan_many

__all__ = [
    "DETECTED_KINDS",
    "PATTERN_KINDS",
    "Finding",
    "redact",
    "redact_many",
    "scan",
    "scan_many",
]
