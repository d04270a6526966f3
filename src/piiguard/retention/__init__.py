"""Retention: policies, tracked records, holds, crash-safe sweeps; the records participant."""

from piiguard.retention.participant import RecordsParticipant
from piiguard.retention.policy import Action, RetentionPolicy
from piiguard.retention.schedule import Hook, Retention, RetentionFailure, SweepReport

__all__ = [
    "Action",
    "Hook",
    "RecordsParticipant",
    "Retention",
    "RetentionFailure",
    "RetentionPolicy",
    "SweepReport",
]
