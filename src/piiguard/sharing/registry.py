"""``guard.sharing``: the recipients a shop may share with, the one rule that admits a share,
the record of every share, and the yearly cross-border report.

Recipients and shares live in the store, so every instance sees a recipient registered (or
its terms changed) by another at once, and ``recipients_of(subject)`` answers "who received
my data" whichever instance shared. Shares name subjects by their keyed pseudonym; an
erasure unlinks them (the row stays, under a one-off marker, so that yearly counts of
people provided abroad stay right).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, insert, select, update

from piiguard.consent import ConsentLedger, Purpose
from piiguard.consent.state import StateCache
from piiguard.errors import InvalidArgument, ShareRefused, UnknownPurpose, boundary
from piiguard.seals import seal, sealed
from piiguard.sharing.recipients import Recipient
from piiguard.store import Store, aware

_log = structlog.get_logger("piiguard")

__all__ = [
    "ASSESSMENT_SCOPES",
    "CrossBorderReport",
    "CrossBorderThresholds",
    "ShareRecord",
    "Sharing",
    "requirements",
]


@dataclass(frozen=True, slots=True)
class ShareRecord:
    """One share, as ``recipients_of`` and ``export`` give it: no value, no subject id."""

    share_id: str
    at: datetime
    recipient: str
    purpose: str
    fields: Mapping[str, str]
    country: str | None
    mechanism: str | None


@dataclass(frozen=True, slots=True)
class CrossBorderThresholds:
    """The yearly numbers of people whose data a processor (not a critical information
    infrastructure operator) provides abroad that decide the mechanism required, under the
    Provisions on Promoting and Regulating Cross-Border Data Flows (CAC, 2024-03-22):

    - Art. 7(2): 1,000,000 people or more (not counting sensitive PI), or 10,000 or more
      with sensitive PI: a CAC security assessment;
    - Art. 8: 100,000 or more (and fewer than 1,000,000), or any with sensitive PI (fewer
      than 10,000): the standard contract (filed) or a certification;
    - Art. 5(4): fewer than 100,000, none with sensitive PI: none of them is required.

    Counted from 1 January of the year. Shares that relied on the contract with the subject
    (Art. 5(1): cross-border shopping, delivery, payment) are exempt whatever the numbers and
    are reported apart. Configurable, for a rule that changes or a stricter internal one.
    """

    assessment_people: int = 1_000_000
    assessment_sensitive: int = 10_000
    contract_people: int = 100_000

    def __post_init__(self) -> None:
        numbers = (self.assessment_people, self.assessment_sensitive, self.contract_people)
        if not all(type(n) is int and n >= 1 for n in numbers):
            raise InvalidArgument("cross-border thresholds are whole numbers of people, >= 1")
        if self.contract_people > self.assessment_people:
            raise InvalidArgument("the contract threshold is below the assessment threshold")


@dataclass(frozen=True, slots=True)
class CrossBorderReport:
    """What the year's transfers abroad add up to, and which mechanism they require.

    Attributes:
        year: the calendar year counted (from 1 January, UTC).
        people: distinct people whose data went abroad, contract-exempt shares aside.
        sensitive_people: of them, those with sensitive PI provided.
        exempt_people: distinct people whose data went abroad only under the contract
            exemption (Art. 5(1)).
        by_country: country -> {"people", "sensitive_people", "mechanisms"}.
        required: ``"none"``, ``"standard_contract_or_certification"`` or
            ``"security_assessment"``.
        shortfall: the countries whose shares relied on a weaker mechanism than required.
    """

    year: int
    people: int
    sensitive_people: int
    exempt_people: int
    by_country: Mapping[str, Mapping[str, Any]]
    required: str
    shortfall: tuple[str, ...] = field(default=())


_STRENGTH = {
    "exempt": 0,
    "standard_contract": 1,
    "certification": 1,
    "security_assessment": 2,
}
_REQUIRED_STRENGTH = {
    "none": 0,
    "standard_contract_or_certification": 1,
    "security_assessment": 2,
}


def _stamp(at: datetime) -> str:
    """A registration time as its seal covers it: microseconds since the epoch, UTC."""
    return str((at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))


def _terms(definition: str) -> str:
    """The digest of a recipient's terms that its registration event records."""
    return hashlib.sha256(definition.encode()).hexdigest()[:32]


#: What an impact assessment may be needed for (PIPL Art. 55), in this order.
ASSESSMENT_SCOPES = ("sensitive", "providing", "cross_border")


def requirements(purpose: Purpose, recipients: Iterable[Recipient]) -> tuple[str, ...]:
    """Why ``purpose`` needs a personal information protection impact assessment (PIPL
    Art. 55), empty when it does not: ``sensitive`` (it covers sensitive kinds),
    ``providing`` (a recipient may receive data for it: Art. 55(3)), ``cross_border`` (a
    recipient abroad may: Art. 55(4))."""
    found = []
    if purpose.sensitive_kinds:
        found.append("sensitive")
    named = [r for r in recipients if purpose.name in r.purposes]
    if named:
        found.append("providing")
    if any(r.cross_border is not None for r in named):
        found.append("cross_border")
    return tuple(found)


class Sharing:
    """The recipient registry and the share records (``guard.sharing``).

    Args:
        mac: the MAC (a key the KEK wraps) each stored recipient is sealed with: whoever
            can write the database but not use the KEK cannot swap a recipient's key or
            widen its fields.
        recorded: records a change of a recipient's terms (the audit log).
        registered: the newest registration event of a recipient (the audit log), as
            (its stored context, its time), None when the log has none (never, or pruned);
            and ``stored(key, value)``, a context value in its stored form. A sealed row put
            back from an old copy of the store (an old key, wider fields) disagrees with the
            newest registration, and is not honoured.
        assessed: whether a purpose has an impact assessment (the records part); when
            given, a share for a purpose that needs one (:func:`requirements`: every share
            is a provision to another processor) is refused until it exists.
    """

    participant = "sharing"

    def __init__(
        self,
        store: Store,
        *,
        consent: ConsentLedger,
        pseudonym: Callable[[str], str],
        clock: Callable[[], datetime],
        mac: Callable[[], Any],
        recorded: Callable[[str, Mapping[str, str]], None],
        registered: Callable[[str], tuple[Mapping[str, Any], datetime] | None] = lambda _: None,
        stored: Callable[[str, str], str] = lambda key, value: value,
        assessed: Callable[[str, tuple[str, ...]], bool] | None = None,
    ) -> None:
        self._store = store
        self._registered = registered
        self._stored = stored
        self._mac = mac
        self._recorded = recorded
        self._assessed = assessed
        self._consent = consent
        self._pseudonym = pseudonym
        self._clock = clock
        # recipients by name, dropped whenever any instance registers one (the counter moves);
        # on SQLite only, where the counter is read in step with the file: PostgreSQL's
        # notices arrive a moment later, so there every share reads the row
        counter = store.change_counter() if store.engine.dialect.name == "sqlite" else None
        self._known: StateCache[tuple[Recipient | None]] = StateCache(counter)

    # -- the registry --------------------------------------------------------------------

    @boundary
    def register(self, recipient: Recipient) -> Recipient:
        """Register a recipient, or replace its terms (a new key, assessment or contract).
        Takes effect on every instance at once. Of two registrations of one recipient at
        the same moment, the one the audit log records last holds."""
        if not isinstance(recipient, Recipient):
            raise InvalidArgument("register takes a pg.Recipient")
        table = self._store.tables.recipients
        definition = recipient.definition()
        at = self._clock().astimezone(UTC)
        sealing = seal(self._mac(), "recipient", (recipient.name, definition, _stamp(at)))
        values = {"definition": definition, "seal": sealing, "registered_at": at}
        # the event first: a row is honoured only while its terms are the newest
        # registration's, so the row follows the event (a row put back from an old
        # copy, or written by an instance whose clock is ahead, never leads)
        self._recorded(
            "recipient_register", {"recipient": recipient.name, "terms": _terms(definition)}
        )
        with self._store.changing() as connection:  # every instance's cache sees it
            self._store.serialize(connection, "recipients")
            if not self._newest(recipient.name, definition):
                # another instance registered this recipient after this event: its row is
                # (or will be) the newest terms; writing this one over it would make the
                # recipient look rolled back, and refused everywhere
                return recipient
            found = connection.execute(
                select(table.c.name).where(table.c.name == recipient.name)
            ).first()
            if found is None:
                connection.execute(insert(table).values(name=recipient.name, **values))
            else:
                connection.execute(
                    update(table).where(table.c.name == recipient.name).values(**values)
                )
        return recipient

    def _opened(self, name: str, definition: str, stored: object, at: datetime) -> Recipient | None:
        """The stored recipient, if its seal holds and it is the newest registered; a row
        changed by hand, or put back from an old copy of the store, is not honoured."""
        mac = self._mac()
        at = aware(at)
        if sealed(mac, "recipient", (name, definition, _stamp(at)), stored):
            legacy = False
        elif sealed(mac, "recipient", (name, definition), stored):
            legacy = True  # sealed by piiguard before schema 10, without its time
        else:
            _log.warning("recipient_seal_broken", recipient=name)
            return None
        if not self._newest(name, definition):
            _log.error("recipient_rolled_back", recipient=name, sealed_before_10=legacy)
            return None
        return Recipient.from_definition(definition)

    def _newest(self, name: str, definition: str) -> bool:
        """Whether a row's terms are those of the newest registration the audit log has of
        the recipient (the event is written before the row). With no event (pruned, or a
        store older than the check), there is nothing to compare."""
        found = self._registered(name)
        if found is None:
            return True
        context, _ = found
        return bool(context.get("terms") == self._stored("terms", _terms(definition)))

    @boundary
    def recipient(self, name: str) -> Recipient:
        """The registered recipient of that name.

        Raises:
            ShareRefused: none is registered (reason ``unknown_recipient``).
        """
        found = self._find(name)
        if found is None:
            raise ShareRefused(
                "unknown_recipient", "no recipient of that name is registered: register it"
            )
        return found

    def _find(self, name: object) -> Recipient | None:
        if type(name) is not str or len(name) > 64:
            return None
        cached, generation = self._known.look(name)
        if cached is not None:
            return cached[0]
        table = self._store.tables.recipients
        self._mac()  # the key, before the store is read
        with self._store.engine.connect() as connection:
            row = connection.execute(
                select(table.c.definition, table.c.seal, table.c.registered_at).where(
                    table.c.name == name
                )
            ).first()
        found = (
            None if row is None else self._opened(name, row.definition, row.seal, row.registered_at)
        )
        self._known.keep(name, (found,), generation)
        return found

    @boundary
    def recipients(self) -> list[Recipient]:
        """Every registered recipient, by name."""
        table = self._store.tables.recipients
        self._mac()
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                select(
                    table.c.name, table.c.definition, table.c.seal, table.c.registered_at
                ).order_by(table.c.name)
            ).all()
        opened = (
            self._opened(row.name, row.definition, row.seal, row.registered_at) for row in rows
        )
        return [recipient for recipient in opened if recipient is not None]

    # -- the rule ------------------------------------------------------------------------

    def admit(self, name: object, purpose: str, subjects: Sequence[str]) -> tuple[Recipient, str]:
        """The one rule of a share: the recipient and the purpose's legal basis when
        ``name`` may receive data of ``subjects`` for ``purpose`` today; else
        :class:`ShareRefused`, and nothing leaves.

        - the recipient is registered and names the purpose; its assessment and contract
          hold today (their last day included);
        - the purpose is registered. Providing PI to another processor needs the subject's
          separate consent (PIPL Art. 23): a purpose whose basis is consent must be
          ``separate=True`` and granted by each subject; a purpose on another basis (the
          contract with the subject, such as delivery) needs none;
        - a recipient abroad also needs each subject's grant of its ``consent`` purpose
          (PIPL Art. 39), whatever the share's basis.
        """
        recipient = self._find(name)
        if recipient is None:
            raise ShareRefused(
                "unknown_recipient", "no recipient of that name is registered: register it"
            )
        if purpose not in recipient.purposes:
            raise ShareRefused(
                "purpose_not_allowed", "the recipient may not receive data for this purpose"
            )
        today = self._clock().astimezone(UTC).date()
        if today > recipient.assessed_until:
            raise ShareRefused(
                "assessment_expired",
                "the recipient's security assessment has expired: assess it again and "
                "register its new assessed_until",
            )
        if recipient.contract is not None and today > recipient.contract.until:
            raise ShareRefused("contract_expired", "the recipient's contract has expired")
        defined = self._consent.defined(purpose)
        if defined is None:
            raise ShareRefused(
                "purpose_not_allowed", "the purpose is not a registered processing purpose"
            )
        if defined.needs_grant:
            if not defined.separate:
                raise ShareRefused(
                    "not_separate",
                    "providing personal information to another processor on the basis of "
                    "consent needs separate consent (PIPL Art. 23): register the purpose "
                    "with separate=True",
                )
            self._granted(subjects, purpose, "consent_required")
        needs = requirements(defined, (recipient,))
        if self._assessed is not None and needs and not self._assessed(defined.name, needs):
            raise ShareRefused(
                "no_assessment",
                "providing personal information to another processor (abroad: Art. 55(4)) "
                "needs an impact assessment of the purpose that covers it first (PIPL "
                f"Art. 55): guard.records.assessment, covering {', '.join(needs)}",
            )
        crossing = recipient.cross_border
        if crossing is not None and crossing.consent is not None:
            agreed = self._consent.defined(crossing.consent)
            if agreed is None or not agreed.needs_grant or not agreed.separate:
                raise ShareRefused(
                    "cross_border_consent",
                    "a transfer abroad rests on the subject's separate consent (PIPL Art. 39): "
                    "its consent purpose must be registered with basis consent and "
                    "separate=True",
                    (crossing.consent,),
                )
            self._granted(subjects, crossing.consent, "cross_border_consent")
        return recipient, defined.basis

    def _granted(self, subjects: Sequence[str], purpose: str, reason: str) -> None:
        try:
            missing = [s for s in subjects if self._consent.lacking(s, (purpose,))]
        except UnknownPurpose:
            missing = list(subjects)
        if missing:
            raise ShareRefused(
                reason,
                f"{len(missing)} of {len(subjects)} subjects have not given the consent the "
                "share needs",
                (purpose,),
            )

    # -- the record ----------------------------------------------------------------------

    def pseudonyms(self, subjects: Iterable[str]) -> list[str]:
        """The keyed pseudonyms the records and the audit log name ``subjects`` by."""
        return [self._pseudonym(subject) for subject in subjects]

    def record(
        self,
        recipient: Recipient,
        purpose: str,
        basis: str,
        shares: Iterable[tuple[str, str, Mapping[str, str], bool]],
        at: datetime,
    ) -> None:
        """Keep the shares just made: (share id, the subject's pseudonym, field rules,
        sensitive) each."""
        crossing = recipient.cross_border
        rows = [
            {
                "id": share_id,
                "at": at.astimezone(UTC),
                "recipient": recipient.name,
                "subject": pseudonym,
                "purpose": purpose,
                "basis": basis,
                "fields": json.dumps(dict(rules), sort_keys=True, separators=(",", ":")),
                "sensitive": sensitive,
                "country": None if crossing is None else crossing.country,
                "mechanism": None if crossing is None else crossing.mechanism,
            }
            for share_id, pseudonym, rules, sensitive in shares
        ]
        if rows:
            with self._store.transaction() as connection:
                connection.execute(insert(self._store.tables.shares), rows)

    def unrecord(self, share_ids: Sequence[str]) -> None:
        """Take back the records of shares that were not handed out (their audit event
        could not be written)."""
        if share_ids:
            table = self._store.tables.shares
            with self._store.transaction() as connection:
                connection.execute(delete(table).where(table.c.id.in_(list(share_ids))))

    @boundary
    def recipients_of(self, subject: str) -> list[ShareRecord]:
        """Every share of the subject's data, oldest first: who received what, why, when
        (PIPL Art. 44-45: "who received my data")."""
        table = self._store.tables.shares
        pseudonym = self._pseudonym(subject)
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                select(table).where(table.c.subject == pseudonym).order_by(table.c.at, table.c.id)
            ).all()
        return [_share_record(row) for row in rows]

    @boundary
    def cross_border_report(
        self, year: int, thresholds: CrossBorderThresholds | None = None
    ) -> CrossBorderReport:
        """The year's transfers abroad, counted in distinct people, and the mechanism their
        totals require (see :class:`CrossBorderThresholds`, which cites the articles)."""
        if type(year) is not int or not 1970 <= year <= 9999:
            raise InvalidArgument("year is a calendar year")
        limits = thresholds or CrossBorderThresholds()
        table = self._store.tables.shares
        start = datetime(year, 1, 1, tzinfo=UTC)
        end = datetime(year + 1, 1, 1, tzinfo=UTC)
        exempt = (table.c.mechanism == "exempt") & (table.c.basis == "contract")
        with self._store.engine.connect() as connection:
            rows = connection.execute(
                select(
                    table.c.country,
                    table.c.subject,
                    table.c.mechanism,
                    table.c.sensitive,
                    exempt.label("exempt"),
                ).where(table.c.country.is_not(None), table.c.at >= start, table.c.at < end)
            ).all()
        return _report(year, rows, limits)

    # -- erasure and access (a participant) ------------------------------------------------

    def export_subject(self, subject: str) -> object:
        """The subject's shares: who received which fields, for what, when, and where."""
        return [
            {
                "share_id": share.share_id,
                "at": share.at.isoformat(),
                "recipient": share.recipient,
                "purpose": share.purpose,
                "fields": dict(share.fields),
                "country": share.country,
                "mechanism": share.mechanism,
            }
            for share in self.recipients_of(subject)
        ]

    def erase_subject(self, subject: str, now: datetime) -> str:
        """Unlink the subject's shares: each row keeps its recipient, purpose and time (the
        record of processing, the yearly counts) under a one-off marker instead of the
        subject's pseudonym."""
        table = self._store.tables.shares
        marker = "erased:" + secrets.token_hex(16)
        with self._store.transaction() as connection:
            done = connection.execute(
                update(table)
                .where(table.c.subject == self._pseudonym(subject))
                .values(subject=marker)
            )
        return f"{int(done.rowcount)} shares unlinked"


def _share_record(row: Any) -> ShareRecord:
    at = row.at if row.at.tzinfo is not None else row.at.replace(tzinfo=UTC)
    return ShareRecord(
        share_id=row.id,
        at=at,
        recipient=row.recipient,
        purpose=row.purpose,
        fields=json.loads(row.fields),
        country=row.country,
        mechanism=row.mechanism,
    )


def _report(year: int, rows: Sequence[Any], limits: CrossBorderThresholds) -> CrossBorderReport:
    """Distinct people per country and in all; a person with any share that did not rely on
    the contract exemption is counted (with sensitive PI, in both counts: the conservative
    reading of "not counting sensitive PI")."""
    counted: set[str] = set()
    sensitive: set[str] = set()
    exempt: set[str] = set()
    countries: dict[str, dict[str, Any]] = {}
    for row in rows:
        place = countries.setdefault(
            row.country,
            {"people": set(), "sensitive_people": set(), "mechanisms": set(), "relied": set()},
        )
        place["mechanisms"].add(row.mechanism)
        place["people"].add(row.subject)
        if row.sensitive:
            place["sensitive_people"].add(row.subject)
        if row.exempt:
            exempt.add(row.subject)
            continue
        place["relied"].add(row.mechanism)
        counted.add(row.subject)
        if row.sensitive:
            sensitive.add(row.subject)
    if len(counted) >= limits.assessment_people or len(sensitive) >= limits.assessment_sensitive:
        required = "security_assessment"
    elif len(counted) >= limits.contract_people or sensitive:
        required = "standard_contract_or_certification"
    else:
        required = "none"
    need = _REQUIRED_STRENGTH[required]
    shortfall = tuple(
        sorted(
            country
            for country, place in countries.items()
            if place["relied"] and min(_STRENGTH[m] for m in place["relied"]) < need
        )
    )
    return CrossBorderReport(
        year=year,
        people=len(counted),
        sensitive_people=len(sensitive),
        exempt_people=len(exempt - counted),
        by_country={
            country: {
                "people": len(place["people"]),
                "sensitive_people": len(place["sensitive_people"]),
                "mechanisms": sorted(place["mechanisms"]),
            }
            for country, place in sorted(countries.items())
        },
        required=required,
        shortfall=shortfall,
    )
