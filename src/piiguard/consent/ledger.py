"""ConsentLedger: the consent of data subjects, composed of its parts.

- ``catalog``: the register of purposes (versioned) and the notices published (ordered);
- ``rules``: the one validity rule (:func:`~piiguard.consent.rules.holds`) and the grant
  rules of PIPL, as pure functions;
- ``events``: the append-only ledger, ordered by sequence, never updated;
- ``state``: derived states cached for one generation of the store's change counter.

A grant holds while it is the subject's latest event for the purpose, the purpose has not
been redefined since (PIPL Art. 14), and no *material* notice covering the purpose was
published after the notice it was given under. ``check``, ``missing``, ``filter`` and
``proof`` all ask :func:`holds`. A withdrawal takes effect at once in this process and
within milliseconds in every other one on the same database (PIPL Art. 15). Subjects are
stored as keyed pseudonyms; evidence is sealed under the subject's key and bound to its
event, so shredding a subject erases it and moving it to another row does not open it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection

from piiguard.consent.catalog import Notice, PurposeCatalog
from piiguard.consent.events import ConsentEvent, EventLedger
from piiguard.consent.purposes import Purpose
from piiguard.consent.rules import (
    EXPIRE,
    GRANT,
    WITHDRAW,
    LastEvent,
    check_evidence,
    guardian_needed,
    holds,
    refuse_bundle,
    refuse_uncovered,
)
from piiguard.consent.state import StateCache
from piiguard.errors import (
    InvalidArgument,
    KeyDestroyed,
    PiiGuardError,
    PolicyViolation,
    UnknownNotice,
    UnknownPurpose,
    boundary,
    contract_error,
    require_subject,
)
from piiguard.store import Store

__all__ = ["ConsentEvent", "ConsentLedger", "ConsentProof", "Notice"]


@dataclass(frozen=True, slots=True)
class ConsentProof:
    """What a regulator asks for (GDPR Art. 7(1), PIPL Art. 14, 17).

    Attributes:
        purpose: the purpose as defined now, and ``purpose_version`` its version.
        valid: whether consent holds now.
        grant: the latest grant, if any.
        agreed: the purpose as defined when that grant was given (None if unrecorded).
        notice: the notice the grant was given under, with the hash of its text.
        evidence: how consent was given (an IP, a user agent: PI of its own).
        evidence_erased: the subject was erased: the evidence can no longer be opened.
    """

    purpose: Purpose
    purpose_version: int
    valid: bool
    grant: ConsentEvent | None
    notice: Notice | None
    evidence: Mapping[str, str] = field(repr=False)
    agreed: Purpose | None = None
    evidence_erased: bool = False


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
        changed: told (action, purpose, pseudonym) of each grant, withdrawal and expiry.
        opened: told (actor, purpose, pseudonym) before a proof opens a subject's record; it
            raises to refuse (no actor) or when the access cannot be recorded.
    """

    participant = "consent"

    def __init__(
        self,
        store: Store,
        *,
        pseudonym: Callable[[str], str],
        bulk_pseudonym: Callable[[], Callable[[str], str]] | None = None,
        seal: Callable[[str, str, Mapping[str, str]], str],
        unseal: Callable[[str, Mapping[str, str]], str],
        clock: Callable[[], datetime],
        changed: Callable[[str, str, str], None] | None = None,
        opened: Callable[[str | None, str, str], None] | None = None,
        assessed: Callable[[str, tuple[str, ...]], bool] | None = None,
    ) -> None:
        self._store = store
        self._assessed = assessed
        self._changed = changed
        self._opened = opened
        self._pseudonym = pseudonym
        self._bulk_pseudonym = bulk_pseudonym or (lambda: pseudonym)
        self._seal = seal
        self._unseal = unseal
        self._clock = clock
        #: The register of processing purposes and notices (also for reveals and sharing).
        self.catalog = PurposeCatalog(store, clock)
        self._events = EventLedger(store)
        counter = store.change_counter()
        self._cache: StateCache[bool] = StateCache(counter)
        self._definitions: StateCache[tuple[Purpose | None]] = StateCache(counter)

    # -- purposes and notices ----------------------------------------------------------

    @boundary
    def register(self, purpose: Purpose) -> int:
        """Register a purpose, or redefine it; return its version.

        Redefining (any change of basis, kinds, separateness, essentialness or description)
        records a new version, which makes earlier grants stale until granted again; earlier
        definitions are kept, so a proof names the one agreed to.
        """
        return self.catalog.register(purpose)

    @boundary
    def purpose(self, name: str) -> Purpose:
        """The registered purpose of that name.

        Raises:
            UnknownPurpose: none is registered.
        """
        return self.catalog.current(name)[0]

    def purpose_kinds(self, name: str) -> frozenset[str] | None:
        """The kinds a registered purpose covers, or None when no purpose has that name:
        what reveals are checked against (cached like consent states)."""
        found = self.defined(name)
        return None if found is None else frozenset(found.kinds)

    def defined(self, name: str) -> Purpose | None:
        """The registered purpose of that name, or None (cached like consent states: a
        purpose registered or changed on any instance is seen at once)."""
        cached, generation = self._definitions.look(name)
        if cached is not None:
            return cached[0]
        try:
            found: Purpose | None = self.catalog.current(name)[0]
        except UnknownPurpose:
            found = None
        self._definitions.keep(name, (found,), generation)
        return found

    @boundary
    def publish_notice(
        self,
        version: str,
        *,
        purposes: Iterable[str],
        material: bool = True,
        text: str | None = None,
        keep_text: bool = False,
    ) -> Notice:
        """Publish a privacy-notice version covering ``purposes``.

        A *material* notice (one that changes what subjects agreed to) makes earlier grants
        for its purposes stale until re-granted under it. ``text`` is what subjects are
        shown: its SHA-256 is stored (and the text too with ``keep_text=True``), so a proof
        shows what the subject read (PIPL Art. 17). Publishing the same content again is a
        no-op returning the published notice (instances starting together).

        Raises:
            UnknownPurpose: a purpose is not registered.
            PolicyViolation: the version is published with other content.
            ValueError: the version is not a text of 1 to 64 characters.
        """
        return self.catalog.publish_notice(
            version, purposes=purposes, material=material, text=text, keep_text=keep_text
        )

    @boundary
    def notice(self, version: str) -> Notice | None:
        """The published notice of that version, or None."""
        return self.catalog.notice(version)

    # -- grants and withdrawals ----------------------------------------------------------

    @boundary
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
            UnknownPurpose: first, if the purpose is not registered;
            UnknownNotice: then, if the notice is not published;
            PolicyViolation, ValueError, InvalidPII: the rules; nothing is written.
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

    @boundary
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
        facts = check_evidence(evidence)
        resolved = [self.catalog.current(name) for name in purposes]  # UnknownPurpose first
        shown = self.catalog.notice(notice) if isinstance(notice, str) else None
        if shown is None:
            raise UnknownNotice(notice)
        if bundle:
            refuse_bundle(p.name for p, _ in resolved if p.separate)
        if self._assessed is not None:
            for purpose, _ in resolved:
                if purpose.sensitive_kinds and not self._assessed(purpose.name, ("sensitive",)):
                    raise PolicyViolation(
                        f"purpose {purpose.name!r} processes sensitive personal information: "
                        "it needs an impact assessment before consent is collected (PIPL "
                        "Art. 55): guard.records.assessment"
                    )
        refuse_uncovered(notice, (p.name for p, _ in resolved if p.name not in shown.purposes))
        if guardian_needed(born, id_number, self._clock().date()) and not facts.get("guardian"):
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
                "action": GRANT,
                "notice": notice,
                "purpose_version": version,
                "evidence": self._seal_for(text, subject, (pseudonym, purpose.name, GRANT, now)),
                "at": now,
            }
            for purpose, version in resolved
        ]
        text = None
        if rows:
            with self._store.joining_changes() as connection:
                self._events.append(connection, rows)
            self._report(rows)

    @boundary
    def withdraw(
        self, subject: str, purpose: str, *, evidence: Mapping[str, str] | None = None
    ) -> None:
        """Record a withdrawal: effective at once, for every Guard on this store (Art. 15)."""
        failure = self._attempt(lambda: self._append(subject, purpose, WITHDRAW, evidence))
        if failure is not None:
            del evidence
            raise failure

    @boundary
    def withdraw_all(self, subject: str) -> list[str]:
        """Withdraw every consent the subject holds now (erasure); return the purposes."""
        pseudonym = self._subject(subject)
        granted = [
            purpose.name
            for purpose, _ in self.catalog.names()
            if purpose.needs_grant and self._holds(pseudonym, purpose.name)
        ]
        for name in granted:
            self._append(subject, name, WITHDRAW, None)
        return granted

    @boundary
    def expire(self, subject: str, purpose: str) -> None:
        """Record that a consent lapsed (a period ended, a retention rule ran): the subject did
        not withdraw it, but it no longer holds."""
        self._append(subject, purpose, EXPIRE, None)

    def _append(
        self, subject: str, purpose: str, action: str, evidence: Mapping[str, str] | None
    ) -> None:
        pseudonym = self._subject(subject)
        facts = check_evidence(evidence)
        _, version = self.catalog.current(purpose)
        now = self.now()
        text = json.dumps(facts, sort_keys=True) if facts else None
        del evidence, facts
        sealed = self._seal_for(text, subject, (pseudonym, purpose, action, now))
        text = None
        row = {
            "subject": pseudonym,
            "purpose": purpose,
            "action": action,
            "notice": None,
            "purpose_version": version,
            "evidence": sealed,
            "at": now,
        }
        with self._store.joining_changes() as connection:
            self._events.append(connection, [row])
        self._report([row])

    def _report(self, rows: list[dict[str, Any]]) -> None:
        """Tell the Guard (its audit log) about committed events: pseudonyms only."""
        if self._changed is not None:
            for row in rows:
                self._changed(str(row["action"]), str(row["purpose"]), str(row["subject"]))

    def now(self) -> datetime:
        """The ledger's clock, in UTC."""
        return self._clock().astimezone(UTC)

    def _seal_for(
        self, text: str | None, subject: str, event: tuple[str, str, str, datetime]
    ) -> str | None:
        """Evidence sealed under the subject's key and bound to its event."""
        if text is None:
            return None
        return self._seal(text, subject, _event_context(*event))

    # -- erasure participant --------------------------------------------------------------

    def erase_subject(self, subject: str, now: datetime) -> str:
        """Erasure: withdraw every consent; the events stay, pseudonymous, as proof."""
        return f"{len(self.withdraw_all(subject))} withdrawn"

    def export_subject(self, subject: str) -> list[dict[str, str | None]]:
        """Access request: the subject's consent history."""
        return [
            {"purpose": e.purpose, "action": e.action, "notice": e.notice, "at": e.at.isoformat()}
            for e in self.history(subject)
        ]

    # -- checks -----------------------------------------------------------------------------

    def check(self, subject: str, purpose: str) -> bool:
        """Whether the subject's consent to ``purpose`` holds now.

        Purposes with a basis other than consent always hold (they need no grant).

        Raises:
            UnknownPurpose: the purpose is not registered.
        """
        # the boundary written out (a wrapper's frame costs a tenth of a warm check)
        try:
            return self._holds(self._subject(subject), purpose)
        except Exception as error:
            failure = contract_error(error)
        del subject, purpose
        raise failure

    @boundary
    def missing(self, subject: str, purposes: Iterable[str]) -> set[str]:
        """The purposes among ``purposes`` the subject's consent does not cover now."""
        return self.lacking(subject, purposes)

    def lacking(self, subject: str, purposes: Iterable[str]) -> set[str]:
        """:meth:`missing` without the boundary, for callers that are boundaries themselves
        (``requires_consent``: it runs on every decorated call)."""
        pseudonym = self._subject(subject)
        holds, out = self._holds, set()
        for name in purposes:  # a loop: a comprehension is a frame of its own on 3.11
            if not holds(pseudonym, name):
                out.add(name)
        return out

    def _holds(self, pseudonym: str, purpose: str) -> bool:
        cached, generation = self._cache.look((pseudonym, purpose))
        if cached is not None:
            return cached
        with self._store.reading() as connection:
            state = self._state(connection, pseudonym, purpose)
        self._cache.keep((pseudonym, purpose), state, generation)
        return state

    @boundary
    def filter(self, subjects: Iterable[str], purpose: str) -> Iterator[str]:
        """Yield, in order, the subjects whose consent to ``purpose`` holds.

        For campaigns: the purpose's current state per subject is read once, in one streamed
        pass over its events (never one query per subject), then the subjects stream through it.
        """
        with self._store.reading() as connection:
            terms = self.catalog.terms(purpose, connection)
            if terms.needs_grant:
                orders = self.catalog.notice_orders(connection)
                granted = {
                    pseudonym
                    for pseudonym, event in self._events.latest_per_subject(connection, purpose)
                    if holds(
                        terms,
                        LastEvent(
                            event.action,
                            event.purpose_version,
                            None if event.notice is None else orders.get(event.notice),
                        ),
                    )
                }
        if not terms.needs_grant:
            yield from subjects
            return
        pseudonym = self._bulk_pseudonym()
        for subject in subjects:
            if require_subject(subject) is not subject:  # the one subject check, refused
                break
            if pseudonym(subject) in granted:
                yield subject
        else:
            return
        del subjects, subject  # the caller's subjects stay out of the error's frames
        raise require_subject(None)  # type: ignore[misc]

    # -- what subjects and regulators ask for ------------------------------------------------

    @boundary
    def history(self, subject: str) -> list[ConsentEvent]:
        """Every consent event of the subject, oldest first (PIPL Art. 45 access)."""
        return self._events.history(self._subject(subject))

    @boundary
    def proof(self, subject: str, purpose: str, *, actor: str | None = None) -> ConsentProof:
        """The grant the subject's consent rests on: the purpose as agreed, the notice shown
        (with the hash of its text), the evidence, and whether it holds now; opened for
        ``actor`` (else the actor of ``pg.acting``) and recorded in the audit log first, as
        the evidence may hold personal information (an IP address, a device).

        After the subject's erasure the evidence no longer opens: the proof says so
        (``evidence_erased``) and still shows the pseudonymous grant.

        Raises:
            AccessDenied: no actor (``reason="no_actor"``).
            EventNotRecorded: the access could not be recorded; nothing is returned.
        """
        pseudonym = self._subject(subject)
        if self._opened is not None:
            self._opened(actor, purpose, pseudonym)
        with self._store.reading() as connection:
            target, version = self.catalog.current(purpose, connection)
            valid = self._state(connection, pseudonym, purpose)
            grant = self._events.last(connection, pseudonym, purpose, action=GRANT)
            agreed = (
                None
                if grant is None
                else self.catalog.definition_at(purpose, grant.event.purpose_version, connection)
            )
        if grant is None:
            return ConsentProof(target, version, valid, None, None, {})
        event = grant.event
        evidence: dict[str, str] = {}
        erased = False
        if grant.evidence:
            context = _event_context(pseudonym, event.purpose, event.action, event.at)
            try:
                evidence = json.loads(self._unseal(grant.evidence, context))
            except KeyDestroyed:
                erased = True
        notice = self.catalog.notice(event.notice) if event.notice else None
        return ConsentProof(target, version, valid, event, notice, evidence, agreed, erased)

    def _state(self, connection: Connection, pseudonym: str, purpose: str) -> bool:
        """Whether consent holds now, read from the store: the subject's latest event for the
        purpose put to the one rule (``check``, ``missing`` and ``proof`` all come here)."""
        terms = self.catalog.terms(purpose, connection)
        last = self._events.last(connection, pseudonym, purpose) if terms.needs_grant else None
        if last is None:
            return holds(terms, None)
        order = self.catalog.notice_order(last.event.notice, connection)
        return holds(terms, LastEvent(last.event.action, last.event.purpose_version, order))

    def _subject(self, subject: str) -> str:
        if require_subject(subject) is subject:  # the one subject check, passed
            return self._pseudonym(subject)
        return self._pseudonym(self._checked_subject(subject))  # raises, without the value

    @staticmethod
    def _checked_subject(subject: object) -> str:
        refused = require_subject(subject)
        if isinstance(refused, InvalidArgument):
            del subject
            raise refused
        return refused


def _event_context(pseudonym: str, purpose: str, action: str, at: datetime) -> dict[str, str]:
    """What evidence is bound to: its subject (by pseudonym), purpose, action and time."""
    return {
        "subject": pseudonym,
        "purpose": purpose,
        "action": action,
        "at": at.astimezone(UTC).isoformat(),
    }
