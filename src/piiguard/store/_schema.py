"""piiguard's tables, and the schema version this code writes.

Every table piiguard keeps lives here, created and migrated on open. Later parts (consent
ledger, vault, retention schedule, audit log) add tables and a migration step each.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = ["SCHEMA_VERSION", "Tables"]

#: The version of the schema this code creates and understands.
#: 1: meta, keys; 2: vault; 3: consent; 4: retention; 5: key epochs; 6: purpose versions,
#: notice purposes as rows, notice order and text hash; 7: audit log; 8: access grants, audit
#: events indexed by actor and time (not actor and seq), and the access watch's events;
#: 9: recipients, shares, subject requests and impact assessments; 10: registrations indexed;
#: 11: the audit outbox (events written in an application's transaction, chained after it);
#: 12: the outbox rows chained so far, by their one-time name (a copy put back is refused)
SCHEMA_VERSION = 12


class Tables:
    """The tables in one MetaData, optionally in a PostgreSQL schema."""

    def __init__(self, schema: str | None) -> None:
        self.metadata = MetaData(schema=schema)
        self.meta = Table(
            "piiguard_meta",
            self.metadata,
            Column("name", String(64), primary_key=True),
            Column("value", String(256), nullable=False),
        )
        self.keys = Table(
            "piiguard_keys",
            self.metadata,
            # BigInteger on PostgreSQL, INTEGER (rowid) on SQLite: ids reach 2^32 - 1
            Column("key_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
            Column("scope", String(80), nullable=False),
            Column("purpose", String(32), nullable=False),
            Column("suite", String(16), nullable=False),
            Column("status", String(16), nullable=False),
            Column("wrapped", LargeBinary, nullable=True),
            Column("kek_id", String(128), nullable=True),
            Column("uses_reserved", BigInteger, nullable=False),
            Column("max_uses", BigInteger, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False),
            Column("destroyed_at", DateTime(timezone=True), nullable=True),
            # the epoch whose key wraps this row; NULL: wrapped by the KEK itself (schema < 5)
            Column("epoch", Integer, nullable=True),
            Index("piiguard_keys_scope", "scope", "purpose", "status"),
        )
        self.epochs = Table(
            "piiguard_epochs",
            self.metadata,
            Column("epoch", Integer, primary_key=True),
            Column("holder_id", String(160), nullable=False),
            Column("ref", String(256), nullable=True),  # the holder's name of its epoch object
            Column("sealed", LargeBinary, nullable=True),  # the epoch key, sealed by the holder
            Column("status", String(16), nullable=False),  # active, retiring, destroyed
            Column("created_at", DateTime(timezone=True), nullable=False),
            Column("destroyed_at", DateTime(timezone=True), nullable=True),
        )
        self.key_events = Table(
            "piiguard_key_events",
            self.metadata,
            # one row per shredded scope or destroyed epoch, in commit order: other Guards poll it
            Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
            Column("scope", String(80), nullable=False),
            Column("at", DateTime(timezone=True), nullable=False),
        )
        self.vault = Table(
            "piiguard_vault",
            self.metadata,
            Column("token", String(64), primary_key=True),
            Column("scope", String(80), nullable=False),
            Column("kind", String(40), nullable=False),
            Column("lookup", String(64), nullable=False),
            Column("ciphertext", LargeBinary, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False),
            Column("expires_at", DateTime(timezone=True), nullable=True),
            Index("piiguard_vault_lookup", "scope", "kind", "lookup"),
        )
        self.purposes = Table(
            "piiguard_purposes",
            self.metadata,
            Column("name", String(64), primary_key=True),
            Column("version", Integer, nullable=False),
            Column("definition", String(2048), nullable=False),  # canonical JSON
            Column("registered_at", DateTime(timezone=True), nullable=False),
        )
        self.purpose_versions = Table(
            # every definition a purpose ever had: a proof names the one agreed to
            "piiguard_purpose_versions",
            self.metadata,
            Column("name", String(64), primary_key=True),
            Column("version", Integer, primary_key=True),
            Column("definition", String(2048), nullable=False),
            Column("registered_at", DateTime(timezone=True), nullable=False),
        )
        self.notices = Table(
            "piiguard_notices",
            self.metadata,
            Column("version", String(64), primary_key=True),
            # schema < 6 kept the purposes here as JSON; nothing reads it now
            Column("purposes", String(4096), nullable=False),
            Column("material", Boolean, nullable=False),
            Column("published_at", DateTime(timezone=True), nullable=False),
            # publication order (6): what "a later notice" means, never a timestamp
            Column("seq", Integer, nullable=True),
            Column("text_sha256", String(64), nullable=True),  # what the subject was shown
            Column("text", Text, nullable=True),  # kept only when asked
        )
        self.notice_purposes = Table(
            "piiguard_notice_purposes",
            self.metadata,
            Column("notice", String(64), primary_key=True),
            Column("purpose", String(64), primary_key=True),
            Index("piiguard_notice_purposes_purpose", "purpose", "notice"),
        )
        self.consent_events = Table(
            "piiguard_consent_events",
            self.metadata,
            Column("event_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
            Column("subject", String(80), nullable=False),  # a keyed pseudonym, never the id
            Column("purpose", String(64), nullable=False),
            Column("action", String(16), nullable=False),
            Column("notice", String(64), nullable=True),
            Column("purpose_version", Integer, nullable=False),
            Column("evidence", String(4096), nullable=True),  # sealed under the subject's key
            Column("at", DateTime(timezone=True), nullable=False),
            Index("piiguard_consent_subject", "subject", "purpose", "event_id"),
            Index("piiguard_consent_purpose", "purpose", "event_id"),
        )
        self.retention = Table(
            "piiguard_retention",
            self.metadata,
            Column("category", String(64), primary_key=True),
            Column("record_id", String(128), primary_key=True),
            Column("subject", String(80), nullable=True),  # a keyed pseudonym
            Column("event_at", DateTime(timezone=True), nullable=False),
            Column("due_at", DateTime(timezone=True), nullable=False),
            # pending, running, done, failed, frozen
            Column("status", String(16), nullable=False),
            Column("attempts", Integer, nullable=False),
            Column("next_attempt_at", DateTime(timezone=True), nullable=True),
            Column("claimed_at", DateTime(timezone=True), nullable=True),
            Column("last_error", String(200), nullable=True),
            Column("done_at", DateTime(timezone=True), nullable=True),
            Index("piiguard_retention_due", "status", "due_at"),
            Index("piiguard_retention_subject", "subject"),
        )
        self.holds = Table(
            "piiguard_retention_holds",
            self.metadata,
            Column("hold_id", String(40), primary_key=True),
            Column("subject", String(80), nullable=True),
            Column("category", String(64), nullable=True),
            Column("record_id", String(128), nullable=True),
            Column("reason", String(200), nullable=False),
            Column("until", DateTime(timezone=True), nullable=True),
            Column("released_at", DateTime(timezone=True), nullable=True),
        )
        self.scheduled_shreds = Table(
            "piiguard_scheduled_shreds",
            self.metadata,
            Column("scope", String(80), primary_key=True),
            Column("due_at", DateTime(timezone=True), nullable=False),
        )
        self.receipts = Table(
            "piiguard_erasure_receipts",
            self.metadata,
            Column("receipt_id", String(40), primary_key=True),
            Column("subject", String(80), nullable=False),
            Column("reason", String(64), nullable=False),
            Column("requested_at", DateTime(timezone=True), nullable=False),
            Column("completed", Boolean, nullable=False),
            Column("steps", String(16000), nullable=False),  # JSON, no PII
        )
        # the audit log: append-only, each row chained to the one before by a keyed MAC
        self.audit_events = Table(
            "piiguard_audit_events",
            self.metadata,
            Column("seq", BigInteger, primary_key=True, autoincrement=False),
            Column("at_us", BigInteger, nullable=False),  # microseconds since the epoch, UTC
            Column("actor", String(128), nullable=False),
            Column("action", String(32), nullable=False),
            Column("purpose", String(128), nullable=True),
            Column("kind", String(64), nullable=True),
            Column("result", String(16), nullable=False),
            Column("count", Integer, nullable=False),
            Column("subjects", Text, nullable=False),  # JSON list of keyed pseudonyms
            Column("detail", Text, nullable=False),  # JSON: contexts (ids digested), key id
            Column("chain", LargeBinary(32), nullable=False),
            Index("piiguard_audit_at", "at_us"),
            Index("piiguard_audit_actor_at", "actor", "at_us"),
        )
        # the access watch's blocks and resets, found without reading an actor's reveals
        watched = self.audit_events.c.action.in_(["access_alert", "watch_reset"])
        Index(
            "piiguard_audit_watch",
            self.audit_events.c.actor,
            self.audit_events.c.seq,
            postgresql_where=watched,
            sqlite_where=watched,
        )
        # the newest registration of a recipient, which its stored row is checked against
        registered = self.audit_events.c.action == "recipient_register"
        Index(
            "piiguard_audit_registered",
            self.audit_events.c.seq,
            postgresql_where=registered,
            sqlite_where=registered,
        )
        self.audit_checkpoints = Table(
            "piiguard_audit_checkpoints",
            self.metadata,
            Column("seq", BigInteger, primary_key=True, autoincrement=False),
            Column("at_us", BigInteger, nullable=False),
            Column("chain", LargeBinary(32), nullable=False),
            Column("signature", LargeBinary(32), nullable=False),
        )
        self.audit_head = Table(
            "piiguard_audit_head",
            self.metadata,
            Column("log", String(16), primary_key=True),
            Column("seq", BigInteger, nullable=False),
            Column("chain", LargeBinary(32), nullable=False),
        )
        # audit events written inside an application's transaction (guard.bind): they commit
        # or roll back with it, and are chained into the log after its commit, each with a MAC
        # so that a row put here by hand is never chained
        self.audit_outbox = Table(
            "piiguard_audit_outbox",
            self.metadata,
            Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
            Column("row", Text, nullable=False),  # JSON: the event's stored form
            Column("mac", LargeBinary(32), nullable=False),
        )
        # the one-time name of every outbox row chained: a sealed copy of a row put back
        # after it was chained is refused, not chained twice
        self.audit_outbox_chained = Table(
            "piiguard_audit_outbox_chained",
            self.metadata,
            Column("once", String(32), primary_key=True),
        )
        # just-in-time grants of a role (guard.access.grant): who, which role, until when
        self.access_grants = Table(
            "piiguard_access_grants",
            self.metadata,
            Column("id", String(32), primary_key=True),
            Column("actor", String(128), nullable=False),
            Column("role", String(128), nullable=False),
            Column("ticket", String(128), nullable=False),
            Column("approved_by", String(128), nullable=False),
            Column("granted_us", BigInteger, nullable=False),
            Column("expires_us", BigInteger, nullable=False),
            Column("revoked_us", BigInteger, nullable=True),
            Column("seal", LargeBinary(32), nullable=False),  # a MAC under a KEK-wrapped key
            Index("piiguard_access_grants_actor", "actor", "role"),
        )
        # third parties that may receive data (guard.sharing.register): the current terms
        self.recipients = Table(
            "piiguard_recipients",
            self.metadata,
            Column("name", String(64), primary_key=True),
            Column("definition", Text, nullable=False),  # JSON: public JWK, fields, terms
            Column("seal", LargeBinary(32), nullable=False),  # a MAC under a KEK-wrapped key
            Column("registered_at", DateTime(timezone=True), nullable=False),
        )
        # every share: who received what of whom, why, and under which transfer mechanism
        self.shares = Table(
            "piiguard_shares",
            self.metadata,
            Column("id", String(32), primary_key=True),
            Column("at", DateTime(timezone=True), nullable=False),
            Column("recipient", String(64), nullable=False),
            Column("subject", String(80), nullable=False),  # keyed pseudonym
            Column("purpose", String(64), nullable=False),
            Column("basis", String(32), nullable=False),
            Column("fields", Text, nullable=False),  # JSON: field -> clear | masked | token
            Column("sensitive", Boolean, nullable=False),  # sensitive PI in clear or token
            Column("country", String(2), nullable=True),  # set for a transfer abroad
            Column("mechanism", String(32), nullable=True),
            Index("piiguard_shares_subject", "subject"),
            Index("piiguard_shares_country_at", "country", "at"),
        )
        # subject requests (guard.requests): what was asked, by when, and how it ended
        self.requests = Table(
            "piiguard_requests",
            self.metadata,
            Column("id", String(40), primary_key=True),
            Column("subject", String(80), nullable=False),  # keyed pseudonym
            Column("sealed", Text, nullable=False),  # the subject id, under its own key
            Column("kind", String(16), nullable=False),
            Column("opened_at", DateTime(timezone=True), nullable=False),
            Column("due_at", DateTime(timezone=True), nullable=False),
            Column("verified_by", String(64), nullable=False),
            Column("status", String(16), nullable=False),
            Column("claimed_at", DateTime(timezone=True), nullable=True),
            Column("claim", String(32), nullable=True),  # who holds the claim (a token)
            Column("closed_at", DateTime(timezone=True), nullable=True),
            Column("actor", String(128), nullable=True),
            Column("reason", String(32), nullable=True),
            Column("receipt", Text, nullable=False),  # JSON, PII-free
            Index("piiguard_requests_subject", "subject"),
            Index("piiguard_requests_open_due", "status", "due_at"),
        )
        # personal information protection impact assessments (PIPL Art. 55-56)
        self.assessments = Table(
            "piiguard_assessments",
            self.metadata,
            Column("id", String(40), primary_key=True),
            Column("purpose", String(64), nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False),
            Column("keep_until", DateTime(timezone=True), nullable=False),
            Column("author", String(128), nullable=False),
            Column("body", Text, nullable=False),  # JSON: risks, measures, why required
            Column("seal", LargeBinary(32), nullable=False),  # a MAC under a KEK-wrapped key
            Index("piiguard_assessments_purpose", "purpose", "created_at"),
        )
