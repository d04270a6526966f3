"""The audit part: a keyed, hash-chained log of every reveal and operation on personal
information (``guard.audit``), kept in the store and verified with the KEK's keys; the
access policy that decides what a role sees (``guard.access``, ``guard.reveal``); and the
access watch over each actor's reveals (``guard.watch``).

See docs/audit.md and docs/access.md. The revealing parts never import this package: they
report to an :class:`~piiguard.events.EventSink`, and the Guard makes the audit log that sink.
"""

from piiguard.audit.access import Access, AccessGrant, AccessPolicy, Role
from piiguard.audit.log import AuditEvent, AuditHead, AuditLog, AuditReport, IncidentScope
from piiguard.audit.watch import AccessAlert, AccessWatch, Watcher

__all__ = [
    "Access",
    "AccessAlert",
    "AccessGrant",
    "AccessPolicy",
    "AccessWatch",
    "AuditEvent",
    "AuditHead",
    "AuditLog",
    "AuditReport",
    "IncidentScope",
    "Role",
    "Watcher",
]
