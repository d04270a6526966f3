"""Subject requests: the participant protocol, erasure with true receipts, and export."""

from piiguard.subjects.inbox import RequestDeadline, Requests, SubjectRequest
from piiguard.subjects.protocol import (
    Erased,
    ErasureStep,
    KeptRecords,
    Participant,
    ShredRule,
    SubjectKeys,
)
from piiguard.subjects.requests import EXPORT_FORMAT, EXPORT_VERSION, ErasureReceipt, Subjects

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "Erased",
    "ErasureReceipt",
    "ErasureStep",
    "KeptRecords",
    "Participant",
    "RequestDeadline",
    "Requests",
    "ShredRule",
    "SubjectKeys",
    "SubjectRequest",
    "Subjects",
]
