"""The audit part: a keyed, hash-chained log of every reveal and operation on personal
information (``guard.audit``), kept in the store and verified with the KEK's keys.

See docs/audit.md. The revealing parts never import this package: they report to an
:class:`~piiguard.events.EventSink`, and the Guard makes the audit log that sink.
"""

from piiguard.audit.log import AuditEvent, AuditHead, AuditLog, AuditReport, IncidentScope

__all__ = ["AuditEvent", "AuditHead", "AuditLog", "AuditReport", "IncidentScope"]
