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

from sqlalchemy import Connection, delete, select

from piiguard.crypto import Envelope, Keyring, wire
from piiguard.crypto.envelope import record_reveal
from piiguard.errors import (
    DecryptionError,
    InvalidArgument,
    TokenExpired,
    TokenNotFound,
    boundary,
)
from piiguard.events import AccessEvent, EventSink
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
        events: EventSink,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._envelope = envelope
        self._events = events
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
                with self._store.transaction() as connection:
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
            with self._store.engine.connect() as own:
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
    def detokenize(self, token: str, *, actor: str, purpose: str) -> str:
        """The value behind a token, reported as a reveal by ``actor`` for ``purpose``.

        Raises:
            TokenNotFound: no such token (never issued, or deleted).
            TokenExpired: its time to live has passed.
            KeyDestroyed: its subject was shredded.
            InvalidArgument: no actor or no purpose.
        """
        if type(actor) is not str or type(purpose) is not str or not actor or not purpose:
            raise InvalidArgument("detokenize names its actor and its purpose (non-empty str)")
        if type(token) is not str:
            del token  # a value passed by mistake; no token is anything but text
            raise TokenNotFound
        vault = self._store.tables.vault
        with self._store.engine.connect() as connection:
            row = connection.execute(select(vault).where(vault.c.token == token)).first()
        if row is None:
            del token  # what was passed may be a value given by mistake, not a token
            raise TokenNotFound
        if row.expires_at is not None and aware(row.expires_at) <= self._clock():
            raise TokenExpired
        try:
            value = self._envelope.decrypt(row.ciphertext, context=_context(token, row.kind))
        except DecryptionError as error:
            raise error.with_traceback(None) from None
        failure = record_reveal(
            self._events,
            AccessEvent("detokenize", actor, purpose, self._clock(), {"kind": row.kind}),
        )
        if failure is None:
            return value
        del value
        raise failure

    @boundary
    def entries(self, subject: str, *, actor: str, purpose: str) -> list[dict[str, str]]:
        """A subject's live vault entries with their values (an access request): each value
        is revealed like ``detokenize`` does, with an access event."""
        vault = self._store.tables.vault
        scope = self._scope(subject)
        with self._store.engine.connect() as connection:
            tokens = connection.execute(
                select(vault.c.token, vault.c.kind).where(vault.c.scope == scope)
            ).all()
        out: list[dict[str, str]] = []
        failure: Exception | None = None
        for token, kind in tokens:
            try:
                value = self.detokenize(token, actor=actor, purpose=purpose)
            except TokenNotFound:  # expired between the two reads
                continue
            except Exception as error:  # an unrecorded reveal, a destroyed key: no values kept
                failure = error
                break
            out.append({"token": token, "kind": kind, "value": value})
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
        """Access request: the subject's entries with their values (each reveal audited)."""
        return self.entries(subject, actor="access-request", purpose="access_request")

    @boundary
    def purge_expired(self) -> int:
        """Delete entries whose time to live has passed; return how many."""
        vault = self._store.tables.vault
        with self._store.transaction() as connection:
            result = connection.execute(delete(vault).where(vault.c.expires_at <= self._clock()))
        return int(result.rowcount)
