"""TokenVault: random tokens that a permitted person can turn back into the value.

The vault table holds, per token, the value encrypted under its subject's data key and bound
to the token (a row copied under another token does not decrypt), the kind, a pseudonymous
scope, expiry, and a keyed lookup digest used to give the same live token for the same value
of the same subject and kind. The lookup mixes the subject's scope into the HMAC input, so
two subjects sharing a value (a family phone) are not linked by the table. A dump of the table
without the KEK reveals nothing; shredding a subject makes its entries undecryptable, and
:meth:`TokenVault.delete_subject` removes them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select

from piiguard.crypto import Envelope, Keyring, wire
from piiguard.errors import (
    DecryptionError,
    TokenExpired,
    TokenNotFound,
    boundary,
)
from piiguard.events import AccessEvent, Reveals
from piiguard.kinds import PIIKind, get_kind
from piiguard.store import Store, aware

__all__ = ["TokenVault"]

_PREFIX = "vt_"
_LOOKUP_BATCH = 500


def _context(token: str, kind: str) -> dict[str, str]:
    return {"piiguard": "vault", "token": token, "kind": kind}


class TokenVault:
    """Reversible tokens in the store (``guard.vault``)."""

    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        envelope: Envelope,
        reveals: Reveals,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._envelope = envelope
        self._reveals = reveals
        self._clock = clock

    def _scope(self, subject: str | None) -> str:
        return "default" if subject is None else self._keyring.subject_scope(subject)

    @boundary
    def tokenize(
        self,
        value: str,
        *,
        kind: str | PIIKind,
        subject: str | None = None,
        ttl: timedelta | None = None,
    ) -> str:
        """Store ``value`` and return its token (the existing live one for a repeat).

        ``kind`` is required: the value is checked and normalised as that kind (a card is
        Luhn-checked), and repeats are found per kind. Use ``"personal_info"`` for free text.

        Raises:
            InvalidPII: the value is not valid for ``kind``.
            InvalidArgument: no kind was given, or the subject is not a non-empty str.
        """
        tokens = self._tokenize([value], subject, kind, ttl)
        if isinstance(tokens, list):
            return tokens[0]
        del value
        raise tokens

    @boundary
    def tokenize_many(
        self,
        values: Sequence[str],
        *,
        kind: str | PIIKind,
        subject: str | None = None,
        ttl: timedelta | None = None,
    ) -> list[str]:
        """Tokenize a batch in one transaction; repeats get one token."""
        tokens = self._tokenize(values, subject, kind, ttl)
        if isinstance(tokens, list):
            return tokens
        del values
        raise tokens

    def _tokenize(
        self,
        values: Sequence[str],
        subject: str | None,
        kind: str | PIIKind,
        ttl: timedelta | None,
    ) -> list[str] | Exception:
        normalised: list[str] = []
        try:
            resolved = get_kind(kind)
            for value in values:
                checked = resolved.check(value)
                if not isinstance(checked, str):
                    return checked
                normalised.append(checked)
            scope = self._scope(subject)
            now = self._clock()
            field = "vault/" + resolved.name
            lookups = [
                self._envelope.vault_lookup(scope + "\x1f" + item, field=field)
                for item in normalised
            ]
            live = self._live_tokens(scope, resolved.name, set(lookups), now)
            fresh: dict[str, tuple[str, str]] = {}  # lookup -> (token, value)
            for lookup, item in zip(lookups, normalised, strict=True):
                if lookup not in live and lookup not in fresh:
                    fresh[lookup] = (_PREFIX + wire.to_text(os.urandom(16)), item)
            if fresh:
                pairs = list(fresh.values())
                sealed = self._envelope.encrypt_many(
                    [item for _, item in pairs],
                    contexts=[_context(token, resolved.name) for token, _ in pairs],
                    subject=subject,
                )
                expires = now + ttl if ttl is not None else None
                rows = [
                    {
                        "token": token,
                        "scope": scope,
                        "kind": resolved.name,
                        "lookup": lookup,
                        "ciphertext": wire.from_text(text),
                        "created_at": now,
                        "expires_at": expires,
                    }
                    for (lookup, (token, _)), text in zip(fresh.items(), sealed, strict=True)
                ]
                with self._store.joining() as connection:
                    # another tokenize of the same values may have committed since the look
                    # above: under one lock per (scope, kind), look again and keep its tokens
                    self._store.serialize(connection, f"vault:{scope}:{resolved.name}")
                    raced = self._live_tokens(
                        scope, resolved.name, set(fresh), now, connection=connection
                    )
                    live.update(raced)
                    rows = [row for row in rows if row["lookup"] not in raced]
                    if rows:
                        connection.execute(self._store.tables.vault.insert(), rows)
            return [live.get(lookup) or fresh[lookup][0] for lookup in lookups]
        except Exception as error:  # handed back without the frames below (they hold values)
            values = normalised = []
            fresh = {}
            return error.with_traceback(None)

    def _live_tokens(
        self,
        scope: str,
        kind: str,
        lookups: set[str],
        now: datetime,
        connection: Connection | None = None,
    ) -> dict[str, str]:
        """The live tokens of these lookups (read in ``connection``'s transaction if given)."""
        if connection is None:
            with self._store.reading() as own:
                return self._live_tokens(scope, kind, lookups, now, own)
        vault = self._store.tables.vault
        found: dict[str, str] = {}
        ordered = sorted(lookups)
        for start in range(0, len(ordered), _LOOKUP_BATCH):
            rows = connection.execute(
                select(vault.c.lookup, vault.c.token, vault.c.expires_at).where(
                    vault.c.scope == scope,
                    vault.c.kind == kind,
                    vault.c.lookup.in_(ordered[start : start + _LOOKUP_BATCH]),
                )
            )
            for row in rows:
                if row.expires_at is None or aware(row.expires_at) > now:
                    found[row.lookup] = row.token
        return found

    @boundary
    def detokenize(
        self, token: str, *, actor: str | None = None, purpose: str | None = None
    ) -> str:
        """The value behind a token, revealed to ``actor`` for ``purpose`` (else those of
        ``pg.acting``), which must cover the token's kind; recorded before it is returned.

        Raises:
            AccessDenied: no actor, no purpose, or a purpose not registered or not covering
                the token's kind.
            TokenNotFound: no such token (never issued, or deleted).
            TokenExpired: its time to live has passed.
            KeyDestroyed: its subject was shredded.
            EventNotRecorded: the reveal could not be recorded; nothing is returned.
        """
        who = self._reveals.admit(actor, purpose, action="detokenize", count=0)  # counted per value
        if isinstance(who, Exception):
            del token
            raise who
        if type(token) is not str:
            del token  # a value passed by mistake; no token is anything but text
            raise TokenNotFound
        vault = self._store.tables.vault
        with self._store.reading() as connection:
            row = connection.execute(select(vault).where(vault.c.token == token)).first()
        if row is None:
            del token  # what was passed may be a value given by mistake, not a token
            raise TokenNotFound
        return self._reveal(token, row, who)

    def _reveal(self, token: str, row: Any, who: tuple[str, str]) -> str:
        """Open one vault entry for an admitted actor and purpose, and record it."""
        kind = str(row.kind)
        covered = self._reveals.admit(
            *who, action="detokenize", kinds=(kind,), context={"kind": kind}
        )
        if isinstance(covered, Exception):
            raise covered
        if row.expires_at is not None and aware(row.expires_at) <= self._clock():
            self._reveals.release(who)  # nothing revealed: it does not count
            raise TokenExpired
        try:
            value = self._envelope.decrypt_unrecorded(row.ciphertext, context=_context(token, kind))
        except DecryptionError as error:
            self._reveals.release(who)
            raise error.with_traceback(None) from None
        scope = str(row.scope)
        failure = self._reveals.record(
            AccessEvent(
                "detokenize",
                who[0],
                who[1],
                self._reveals.now(),
                {"kind": kind},
                kind=kind,
                subjects=(scope,) if scope.startswith("subject:") else (),
            )
        )
        if failure is None:
            return value
        del value
        raise failure

    @boundary
    def entries(
        self, subject: str, *, actor: str | None = None, purpose: str | None = None
    ) -> list[dict[str, str]]:
        """A subject's live vault entries with their values (an access request): each value
        is revealed like ``detokenize`` does, with an access event."""
        who = self._reveals.admit(actor, purpose, action="detokenize", count=0)  # counted per value
        if isinstance(who, Exception):
            raise who
        vault = self._store.tables.vault
        scope = self._scope(subject)
        with self._store.reading() as connection:
            rows = connection.execute(select(vault).where(vault.c.scope == scope)).all()
        out: list[dict[str, str]] = []
        failure: Exception | None = None
        for row in rows:
            try:
                value = self._reveal(row.token, row, who)
            except TokenExpired:  # expired meanwhile: not a live entry
                continue
            except Exception as error:  # an unrecorded reveal, a destroyed key: no values kept
                failure = error
                break
            out.append({"token": row.token, "kind": row.kind, "value": value})
        if failure is None:
            return out
        out.clear()
        value = ""
        raise failure

    @boundary
    def delete_subject(self, subject: str) -> int:
        """Delete every vault entry of a subject; return how many (erasure calls this)."""
        vault = self._store.tables.vault
        scope = self._scope(subject)
        with self._store.transaction() as connection:
            result = connection.execute(delete(vault).where(vault.c.scope == scope))
        return int(result.rowcount)

    # -- erasure participant --------------------------------------------------------------

    participant = "vault"

    def erase_subject(self, subject: str, now: datetime) -> str:
        """Erasure: delete the subject's entries."""
        return f"{self.delete_subject(subject)} deleted"

    def export_subject(self, subject: str) -> list[dict[str, str]]:
        """Access request: the subject's entries with their values, each reveal recorded
        under the actor and purpose of the export (``pg.acting``, set by ``guard.export``)."""
        return self.entries(subject)

    @boundary
    def purge_expired(self) -> int:
        """Delete entries whose time to live has passed; return how many."""
        vault = self._store.tables.vault
        with self._store.transaction() as connection:
            result = connection.execute(delete(vault).where(vault.c.expires_at <= self._clock()))
        return int(result.rowcount)
