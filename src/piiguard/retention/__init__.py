"""Retention and erasure: policies, tracked records, holds, hooks, sweeps, erasure, export."""

from piiguard.retention.erasure import Erasure, ErasureReceipt, ErasureStep, KeptRecords
from piiguard.retention.policy import Action, RetentionPolicy
from piiguard.retention.schedule import Hook, Retention, SweepReport

__all__ = [
    "Action",
    "Erasure",
    "ErasureReceipt",
    "ErasureStep",
    "Hook",
    "KeptRecords",
    "Retention",
    "RetentionPolicy",
    "SweepReport",
]
