"""Subject requests: the participant protocol, erasure with true receipts, and export."""

from piiguard.subjects.protocol import (
    Erased,
    ErasureStep,
    KeptRecords,
    Participant,
    ShredRule,
    SubjectKeys,
)
from piiguard.subjects.requests import ErasureReceipt, Subjects

__all__ = [
    "Erased",
    "ErasureReceipt",
    "ErasureStep",
    "KeptRecords",
    "Participant",
    "ShredRule",
    "SubjectKeys",
    "Subjects",
]
