"""Logs without PII: a structlog processor and a stdlib ``logging.Filter`` (``pg.logging``).

Both mask by field name (a value under ``phone``, ``id_number``, ``card``, ... is masked by its
kind's rule, or whole when it is not a valid value of that kind) and by content (every other
string goes through :func:`piiguard.redact`), recursing into dicts, lists, tuples, sets and
exceptions' messages; a :class:`~piiguard.PIIStr` is always written masked::

    structlog.configure(processors=[..., pg.logging.redact, structlog.processors.JSONRenderer()])
    handler.addFilter(pg.logging.RedactingFilter())

Put the processor last before the renderer (after ``format_exc_info``), so it sees what will
be written. Redaction finds what :func:`piiguard.scan` finds; a field name it does not know
holding a value it cannot recognise (a free-text name) is written as it is.
"""

from __future__ import annotations

import logging as _stdlib_logging
from collections.abc import Mapping, MutableMapping
from typing import Any

from piiguard.detect import redact as redact_text
from piiguard.fields import PIIStr
from piiguard.kinds import get_kind
from piiguard.masking import masker_for

__all__ = ["FIELD_KINDS", "RedactingFilter", "redact", "redact_value"]

#: Field names whose values are masked by kind, whatever they look like (lower-cased;
#: ``-`` counts as ``_``). Extend it with your own: ``FIELD_KINDS["receiver_mobile"] = "phone"``.
FIELD_KINDS: dict[str, str] = {
    "phone": "phone",
    "mobile": "phone",
    "telephone": "phone",
    "tel": "phone",
    "phone_number": "phone",
    "email": "email",
    "e_mail": "email",
    "id_number": "cn_resident_id",
    "id_card": "cn_resident_id",
    "idcard": "cn_resident_id",
    "resident_id": "cn_resident_id",
    "passport": "cn_passport",
    "card": "bank_card",
    "card_number": "bank_card",
    "bank_card": "bank_card",
    "address": "address",
    "shipping_address": "address",
    "real_name": "person_name",
    "full_name": "person_name",
    "receiver_name": "person_name",
    "birthday": "date_of_birth",
    "date_of_birth": "date_of_birth",
    "dob": "date_of_birth",
    "ip": "ipv4",
    "ip_address": "ipv4",
    "client_ip": "ipv4",
    "plate": "cn_license_plate",
    "license_plate": "cn_license_plate",
}
_WHOLE = "****"
_DEPTH = 20  # deeper structures are cut: a log line is not the place for them


def _by_field(kind: str, value: object) -> str:
    """A value found under a known field name: masked by its kind when valid, else whole."""
    if isinstance(value, PIIStr):
        return value.masked()
    resolved = get_kind(kind)
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value)
        normalised = resolved.check(text)
        if isinstance(normalised, str):
            return masker_for(resolved)(normalised)
    if kind == "ipv4" and isinstance(value, str):  # an IPv6 address under an "ip" field
        normalised = get_kind("ipv6").check(value)
        if isinstance(normalised, str):
            return masker_for("ipv6")(normalised)
    return _WHOLE


def _field_kind(key: object) -> str | None:
    if not isinstance(key, str):
        return None
    return FIELD_KINDS.get(key.lower().replace("-", "_"))


def redact_value(value: Any, _depth: int = 0) -> Any:
    """``value`` with PII masked: strings redacted, PII fields of mappings masked by kind,
    containers and exceptions recursed into. What it cannot read (an object) is left as is,
    except that its ``str()`` is what renderers print: pass such objects through ``str``
    first if they may hold PII."""
    if _depth > _DEPTH:
        return _WHOLE
    if isinstance(value, PIIStr):
        return value.masked()
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {key: _redact_item(key, item, _depth) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [redact_value(item, _depth + 1) for item in value]
        return items if isinstance(value, list) else type(value)(items)
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {redact_text(str(value))}"
    return value


def _redact_item(key: object, value: Any, depth: int) -> Any:
    kind = _field_kind(key)
    if kind is not None and not isinstance(value, Mapping | list | tuple | set | frozenset):
        return None if value is None else _by_field(kind, value)
    return redact_value(value, depth + 1)


def redact(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """A structlog processor: every value of the event dict with its PII masked."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_item(key, value, 0)
    return event_dict


class RedactingFilter(_stdlib_logging.Filter):
    """A ``logging.Filter`` that masks PII in each record before any handler formats it: the
    message with its arguments, extra fields under known names, and the exception's text."""

    _STANDARD = frozenset(vars(_stdlib_logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def filter(self, record: _stdlib_logging.LogRecord) -> bool:
        """Rewrite ``record`` in place; never drops it."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit: logging reports it later
            message = str(record.msg)
        record.msg = redact_text(message)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in self._STANDARD:
                setattr(record, key, _redact_item(key, value, 0))
        if record.exc_info and not record.exc_text:
            record.exc_text = _stdlib_logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True
