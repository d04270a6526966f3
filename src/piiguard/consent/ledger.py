"""ConsentLedger: purposes, notices and an append-only ledger of consent events.

Nothing is ever updated or deleted in the ledger: a grant, a withdrawal or an expiry is a new
event, and the current state of (subject, purpose) is derived from the last event. A grant is
valid only while

- it is the last event for its subject and purpose,
- the purpose has not been redefined since (PIPL Art. 14: a changed purpose needs new consent),
- no *material* notice covering the purpose was published after the notice it was given under.

Every check reads the store, so a withdrawal takes effect at once in every Guard on the same
database (PIPL Art. 15). Subjects are stored as keyed pseudonyms; evidence (channel, IP, user
agent, guardian) is sealed under the subject's key, so shredding a subject erases it too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import Connection, and_, exists, select

from piiguard.consent.purposes import Purpose
from piiguard.errors import (
    InvalidPII,
    PiiGuardError,
    PolicyViolation,
    UnknownNotice,
    UnknownPurpose,
)
from piiguard.store import Store, aware
from piiguard.validate import check_cn_resident_id, cn_resident_id_birth_date

__all__ = ["ConsentEvent", "ConsentLedger", "ConsentProof", "Notice"]

_GRANT, _WITHDRAW, _EXPIRE = "grant", "withdraw", "expire"
_MAX_EVIDENCE = 16
_GUARDIAN_AGE = 14  # PIPL Art. 31


@dataclass(frozen=True, slots=True)
class Notice:
    """A published version of the privacy notice."""

    version: str
    purposes: frozenset[str]
    material: bool
    published_at: datetime


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One ledger entry (evidence is kept sealed; see :meth:`ConsentLedger.proof`)."""

    purpose: str
    action: str
    notice: str | None
    purpose_version: int
    at: datetime


@dataclass(frozen=True, slots=True)
class ConsentProof:
    """What a regulator asks for (GDPR Art. 7(1), PIPL Art. 14): whether consent holds now,
    and the grant it rests on, the notice shown, the purpose as defined, and the evidence."""

    purpose: Purpose
    purpose_version: int
    valid: bool
    grant: ConsentEvent | None
    notice: Notice | None
    evidence: Mapping[str, str] = field(repr=False)  # an IP, a user agent: PI of its own


def _check_evidence(evidence: Mapping[str, str] | None) -> dict[str, str]:
    if evidence is None:
        return {}
    if not isinstance(evidence, Mapping) or len(evidence) > _MAX_EVIDENCE:
        raise ValueError("evidence is a mapping of at most 16 str -> str entries")
    for key, value in evidence.items():
        if not (isinstance(key, str) and key.isidentifier()) or not isinstance(value, str):
            raise ValueError("evidence keys are identifiers and values are str")
        if len(value) > 512:
            raise ValueError("evidence values are at most 512 characters")
    return dict(evidence)


class ConsentLedger:
    """Consent of data subjects to registered purposes (``guard.consent``).

    Args:
        store: where purposes, notices and events live.
        pseudonym: maps a subject id to the keyed pseudonym the ledger stores.
        bulk_pseudonym: returns the same mapping tuned for millions of distinct subjects.
        seal: encrypts evidence JSON for a subject, bound to the event it belongs to (a
            context naming the pseudonym, purpose, action and time); ``unseal`` reverses it
            given the same context, so evidence moved to another row does not open.
        clock: the current time (timezone-aware).
    """

    def __init__(
        self,
        store: Store,
        *,
        pseudonym: Callable[[str], str],
        bulk_pseudonym: Callable[[], Callable[[str], str]] | None = None,
        seal: Callable[[str, str, Mapping[str, str]], str],
        unseal: Callable[[str, Mapping[str, str]], str],
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._pseudonym = pseudonym
        self._bulk_pseudonym = bulk_pseudonym or (lambda: pseudonym)
        self._seal = seal
        self._unseal = unseal
        self._clock = clock
        self._tables = store.tables
        # Derived states, valid while the store's change counter stays the same (SQLite);
        # without a counter (PostgreSQL) every check reads the store.
        self._changes = store.change_counter()
        self._seen_change: int | None = None
        self._states: dict[tuple[str, str], bool] = {}

    # -- purposes and notices ----------------------------------------------------------

    def register(self, purpose: Purpose) -> int:
        """Register a purpose, or redefine it; return its version.

        Redefining (any change of basis, kinds, separateness, essentialness or description)
        bumps the version, which makes earlier grants stale until granted again.
        """
        if not isinstance(purpose, Purpose):
            raise TypeError("register() takes a piiguard.Purpose")
        table = self._tables.purposes
        definition = purpose.definition()
        with self._store.transaction() as connection:
            self._store.serialize(connection, "purpose:" + purpose.name)
            row = connection.execute(
                select(table.c.version, table.c.definition)
                .where(table.c.name == purpose.name)
                .with_for_update()
            ).first()
            if row is None:
                connection.execute(
                    table.insert().values(
                        name=purpose.name,
                        version=1,
                        definition=definition,
                        registered_at=self._clock(),
                    )
                )
                return 1
            if row.definition == definition:
                return int(row.version)
            version = int(row.version) + 1
            connection.execute(
                table.update()
                .where(table.c.name == purpose.name)
                .values(version=version, definition=definition, registered_at=self._clock())
            )
            return version

    def purpose(self, name: str) -> Purpose:
        """The registered purpose of that name.

        Raises:
            UnknownPurpose: none is registered.
        """
        return self._purpose_row(name)[0]

    def _purpose_row(self, name: str, connection: Connection | None = None) -> tuple[Purpose, int]:
        table = self._tables.purposes
        query = select(table.c.version, table.c.definition).where(table.c.name == name)
        if connection is None:
            with self._store.engine.connect() as own:
                row = own.execute(query).first()
        else:
            row = connection.execute(query).first()
        if row is None:
            raise UnknownPurpose(name)
        return Purpose.from_definition(name, row.definition), int(row.version)

    def publish_notice(
        self, version: str, *, purposes: Iterable[str], material: bool = True
    ) -> Notice:
        """Publish a privacy-notice version covering ``purposes``.

        A *material* notice (one that changes what subjects agreed to) makes earlier grants
        for its purposes stale until re-granted under it.

        Raises:
            UnknownPurpose: a purpose is not registered.
            ValueError: the version exists already, or is not a short text.
        """
        if not isinstance(version, str) or not 0 < len(version) <= 64:
            raise ValueError("a notice version is a text of 1 to 64 characters")
        names = frozenset(purposes)
        for name in names:
            self._purpose_row(name)
        notice = Notice(version, names, bool(material), self._clock())
        table = self._tables.notices
        with self._store.transaction() as connection:
            self._store.serialize(connection, "notice:" + version)
            if connection.execute(
                select(table.c.version).where(table.c.version == version)
            ).first():
                raise ValueError("that notice version is already published")
            connection.execute(
                table.insert().values(
                    version=version,
                    purposes=json.dumps(sorted(names)),
                    material=notice.material,
                    published_at=notice.published_at,
                )
            )
        return notice

    def notice(self, version: str) -> Notice | None:
        """The published notice of that version, or None."""
        table = self._tables.notices
        with self._store.engine.connect() as connection:
            row = connection.execute(select(table).where(table.c.version == version)).first()
        if row is None:
            return None
        return Notice(
            row.version,
            frozenset(json.loads(row.purposes)),
            bool(row.material),
            aware(row.published_at),
        )

    # -- grants and withdrawals ----------------------------------------------------------

    def grant(
        self,
        subject: str,
        purpose: str,
        *,
        notice: str,
        evidence: Mapping[str, str] | None = None,
        born: date | None = None,
        id_number: str | None = None,
    ) -> None:
        """Record the subject's consent to one purpose, under the notice they were shown.

        Args:
            subject: the application's subject id.
            purpose: a registered purpose.
            notice: the notice version shown; it must be published and cover the purpose.
            evidence: how consent was given (``channel``, ``ip``, ``user_agent``, ...); for a
                subject under 14, ``guardian`` names who consented (PIPL Art. 31).
            born: the subject's birth date, if known.
            id_number: the subject's CN resident ID, to read the birth date from.

        Raises:
            UnknownPurpose, PolicyViolation, ValueError, InvalidPII: nothing is written.
        """
        failure = self._attempt(
            lambda: self._grant(
                subject,
                [purpose],
                notice=notice,
                evidence=evidence,
                born=born,
                id_number=id_number,
                bundle=False,
            )
        )
        if failure is not None:
            del evidence, born, id_number  # an IP, an ID number: out of the error's frames
            raise failure

    def grant_many(
        self,
        subject: str,
        purposes: Iterable[str],
        *,
        notice: str,
        evidence: Mapping[str, str] | None = None,
        born: date | None = None,
        id_number: str | None = None,
    ) -> None:
        """Record consent to several purposes at once, all or nothing.

        Raises:
            PolicyViolation: any purpose needs separate consent (it is never bundled).
        """
        failure = self._attempt(
            lambda: self._grant(
                subject,
                list(purposes),
                notice=notice,
                evidence=evidence,
                born=born,
                id_number=id_number,
                bundle=True,
            )
        )
        if failure is not None:
            del evidence, born, id_number
            raise failure

    @staticmethod
    def _attempt(action: Callable[[], None]) -> Exception | None:
        """Run ``action``; return (not raise) its error.

        piiguard's own refusals come back without their frames, which hold the evidence and ID
        numbers being refused; other errors (the store's) keep theirs for debugging, and the
        frames they pass through have dropped those values before touching the store.
        """
        try:
            action()
        except (PiiGuardError, ValueError, TypeError) as error:
            return error.with_traceback(None)
        except Exception as error:  # handed back to the caller, unchanged
            return error
        return None

    def _grant(
        self,
        subject: str,
        purposes: list[str],
        *,
        notice: str,
        evidence: Mapping[str, str] | None,
        born: date | None,
        id_number: str | None,
        bundle: bool,
    ) -> None:
        pseudonym = self._subject(subject)
        facts = _check_evidence(evidence)
        resolved = [self._purpose_row(name) for name in purposes]  # UnknownPurpose first
        shown = self.notice(notice) if isinstance(notice, str) else None
        if shown is None:
            raise UnknownNotice(notice)
        if bundle:
            separate = sorted(p.name for p, _ in resolved if p.separate)
            if separate:
                raise PolicyViolation(
                    f"separate consent is never bundled: grant {', '.join(separate)} on its own"
                )
        uncovered = sorted(p.name for p, _ in resolved if p.name not in shown.purposes)
        if uncovered:
            raise PolicyViolation(f"notice {notice!r} does not describe {', '.join(uncovered)}")
        if self._is_minor(born, id_number) and not facts.get("guardian"):
            raise PolicyViolation(
                "the subject is under 14: consent needs a guardian (PIPL Art. 31)"
            )
        now = self._clock().astimezone(UTC)
        text = json.dumps(facts, sort_keys=True) if facts else None
        del evidence, facts, born, id_number  # checked: no longer needed in clear
        rows = [
            {
                "subject": pseudonym,
                "purpose": purpose.name,
                "action": _GRANT,
                "notice": notice,
                "purpose_version": version,
                "evidence": self._seal_for(
                    text, subject, event=(pseudonym, purpose.name, _GRANT, now)
                ),
                "at": now,
            }
            for purpose, version in resolved
        ]
        text = None
        if rows:
            with self._store.transaction() as connection:
                connection.execute(self._tables.consent_events.insert(), rows)

    def _is_minor(self, born: date | None, id_number: str | None) -> bool:
        if id_number is not None:
            checked = check_cn_resident_id(id_number)
            if isinstance(checked, InvalidPII):
                del id_number
                raise checked
            born = cn_resident_id_birth_date(checked)
        if born is None:
            return False
        today = self._clock().date()
        age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        return age < _GUARDIAN_AGE

    def withdraw(
        self, subject: str, purpose: str, *, evidence: Mapping[str, str] | None = None
    ) -> None:
        """Record a withdrawal: effective at once, for every Guard on this store (Art. 15)."""
        failure = self._attempt(lambda: self._append(subject, purpose, _WITHDRAW, evidence))
        if failure is not None:
            del evidence
            raise failure

    def withdraw_all(self, subject: str) -> list[str]:
        """Withdraw every consent the subject holds now (erasure); return the purposes."""
        pseudonym = self._subject(subject)
        purposes = self._tables.purposes
        with self._store.engine.connect() as connection:
            rows = connection.execute(select(purposes.c.name, purposes.c.definition)).all()
        granted = [
            row.name
            for row in rows
            if Purpose.from_definition(row.name, row.definition).needs_grant
            and self._state(pseudonym, row.name)
        ]
        for name in granted:
            self._append(subject, name, _WITHDRAW, None)
        return granted

    # -- erasure participant --------------------------------------------------------------

    participant = "consent"

    def erase_subject(self, subject: str, now: datetime) -> str:
        """Erasure: withdraw every consent; the events stay, pseudonymous, as proof."""
        return f"{len(self.withdraw_all(subject))} withdrawn"

    def export_subject(self, subject: str) -> list[dict[str, str | None]]:
        """Access request: the subject's consent history."""
        return [
            {"purpose": e.purpose, "action": e.action, "notice": e.notice, "at": e.at.isoformat()}
            for e in self.history(subject)
        ]

    def expire(self, subject: str, purpose: str) -> None:
        """Record that a consent lapsed (a period ended, a retention rule ran): the subject did
        not withdraw it, but it no longer holds."""
        self._append(subject, purpose, _EXPIRE, None)

    def _append(
        self, subject: str, purpose: str, action: str, evidence: Mapping[str, str] | None
    ) -> None:
        pseudonym = self._subject(subject)
        facts = _check_evidence(evidence)
        _, version = self._purpose_row(purpose)
        now = self._clock().astimezone(UTC)
        text = json.dumps(facts, sort_keys=True) if facts else None
        del evidence, facts
        sealed = self._seal_for(text, subject, event=(pseudonym, purpose, action, now))
        text = None
        with self._store.transaction() as connection:
            connection.execute(
                self._tables.consent_events.insert().values(
                    subject=pseudonym,
                    purpose=purpose,
                    action=action,
                    notice=None,
                    purpose_version=version,
                    evidence=sealed,
                    at=now,
                )
            )

    def _seal_for(
        self,
        text: str | None,
        subject: str,
        *,
        event: tuple[str, str, str, datetime],
    ) -> str | None:
        """Evidence sealed under the subject's key and bound to its event."""
        if text is None:
            return None
        return self._seal(text, subject, _event_context(*event))

    # -- checks -----------------------------------------------------------------------------

    def check(self, subject: str, purpose: str) -> bool:
        """Whether the subject's consent to ``purpose`` holds now.

        Purposes with a basis other than consent always hold (they need no grant).

        Raises:
            UnknownPurpose: the purpose is not registered.
        """
        return self._state(self._subject(subject), purpose)

    def missing(self, subject: str, purposes: Iterable[str]) -> set[str]:
        """The purposes among ``purposes`` the subject's consent does not cover now."""
        pseudonym = self._subject(subject)
        return {name for name in purposes if not self._state(pseudonym, name)}

    def _state(self, pseudonym: str, purpose: str) -> bool:
        if self._changes is not None:
            change = self._changes()
            if change != self._seen_change:  # someone committed: nothing cached holds
                self._states = {}
                self._seen_change = change
            found = self._states.get((pseudonym, purpose))
            if found is not None:
                return found
        with self._store.engine.connect() as connection:
            valid = self._valid(connection, pseudonym, purpose)
        if self._changes is not None and len(self._states) < 100_000:
            self._states[(pseudonym, purpose)] = valid
        return valid

    def filter(self, subjects: Iterable[str], purpose: str) -> Iterator[str]:
        """Yield, in order, the subjects whose consent to ``purpose`` holds.

        For campaigns: the purpose's current state per subject is read once, in one streamed
        pass over its events (never one query per subject), then the subjects stream through it.
        """
        target, version = self._purpose_row(purpose)
        if not target.needs_grant:
            yield from subjects
            return
        granted = self._granted_pseudonyms(purpose, version)
        pseudonym = self._bulk_pseudonym()
        for subject in subjects:
            if type(subject) is not str or not subject:
                break
            if pseudonym(subject) in granted:
                yield subject
        else:
            return
        del subjects, subject  # the caller's subjects stay out of the error's frames
        raise ValueError("subject is a non-empty str")

    def _granted_pseudonyms(self, purpose: str, version: int) -> set[str]:
        events = self._tables.consent_events
        latest: dict[str, tuple[str, str | None, int]] = {}
        with self._store.engine.connect() as connection:
            stale = self._stale_notices(connection, purpose)
            rows = connection.execution_options(stream_results=True, yield_per=10_000).execute(
                select(events.c.subject, events.c.action, events.c.notice, events.c.purpose_version)
                .where(events.c.purpose == purpose)
                .order_by(events.c.event_id)
            )
            for subject, action, notice, purpose_version in rows:
                latest[subject] = (action, notice, purpose_version)
        return {
            subject
            for subject, (action, notice, purpose_version) in latest.items()
            if action == _GRANT and purpose_version == version and notice not in stale
        }

    def _stale_notices(self, connection: Connection, purpose: str) -> set[str]:
        """Notice versions that a later material notice for ``purpose`` supersedes."""
        table = self._tables.notices
        rows = connection.execute(select(table).order_by(table.c.published_at)).all()
        stale: set[str] = set()
        seen: list[str] = []
        for row in rows:
            if row.material and purpose in json.loads(row.purposes):
                stale.update(seen)
            seen.append(row.version)
        return stale

    def _valid(self, connection: Connection, pseudonym: str, purpose: str) -> bool:
        target, version = self._purpose_row(purpose, connection)
        if not target.needs_grant:
            return True
        events, notices = self._tables.consent_events, self._tables.notices
        last = connection.execute(
            select(events, notices.c.published_at)
            .join(notices, notices.c.version == events.c.notice, isouter=True)
            .where(events.c.subject == pseudonym, events.c.purpose == purpose)
            .order_by(events.c.event_id.desc())
            .limit(1)
        ).first()
        if last is None or last.action != _GRANT or last.purpose_version != version:
            return False
        superseded = connection.execute(
            select(
                exists().where(
                    and_(
                        notices.c.material.is_(True),
                        notices.c.published_at > last.published_at,
                        notices.c.purposes.like(f'%"{purpose}"%'),
                    )
                )
            )
        ).scalar()
        return not superseded

    # -- what subjects and regulators ask for ------------------------------------------------

    def history(self, subject: str) -> list[ConsentEvent]:
        """Every consent event of the subject, oldest first (PIPL Art. 45 access)."""
        pseudonym = self._subject(subject)
        events = self._tables.consent_events
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                select(events).where(events.c.subject == pseudonym).order_by(events.c.event_id)
            ).all()
        return [
            ConsentEvent(
                row.purpose, row.action, row.notice, int(row.purpose_version), aware(row.at)
            )
            for row in rows
        ]

    def proof(self, subject: str, purpose: str) -> ConsentProof:
        """The grant the subject's consent rests on, with its notice and evidence."""
        pseudonym = self._subject(subject)
        events = self._tables.consent_events
        with self._store.engine.connect() as connection:
            valid = self._valid(connection, pseudonym, purpose)
            target, version = self._purpose_row(purpose, connection)
            grant = connection.execute(
                select(events)
                .where(
                    events.c.subject == pseudonym,
                    events.c.purpose == purpose,
                    events.c.action == _GRANT,
                )
                .order_by(events.c.event_id.desc())
                .limit(1)
            ).first()
        if grant is None:
            return ConsentProof(target, version, valid, None, None, {})
        context = _event_context(pseudonym, grant.purpose, grant.action, aware(grant.at))
        evidence = json.loads(self._unseal(grant.evidence, context)) if grant.evidence else {}
        event = ConsentEvent(
            grant.purpose, grant.action, grant.notice, int(grant.purpose_version), aware(grant.at)
        )
        return ConsentProof(target, version, valid, event, self.notice(grant.notice), evidence)

    def _subject(self, subject: str) -> str:
        return self._pseudonym(self._checked_subject(subject))

    @staticmethod
    def _checked_subject(subject: object) -> str:
        if not isinstance(subject, str) or not subject:
            raise ValueError("subject is a non-empty str")
        return subject


def _event_context(pseudonym: str, purpose: str, action: str, at: datetime) -> dict[str, str]:
    """What evidence is bound to: its subject (by pseudonym), purpose, action and time."""
    return {
        "subject": pseudonym,
        "purpose": purpose,
        "action": action,
        "at": at.astimezone(UTC).isoformat(),
    }
