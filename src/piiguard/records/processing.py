"""Records of processing and impact assessments (PIPL Art. 54-56; GB/T 35273-2020 §11.4,
§11.5), built from the registers piiguard already keeps, so that they never disagree with
what the code does.

``guard.records.processing()`` assembles the purposes (legal basis, kinds, sensitive), the
models that collect for each (their inventories), the retention policies, the recipients
(their fields, terms and transfers abroad) and the impact assessments; ``markdown()`` renders
the same record for people. ``guard.records.assessment(purpose, ...)`` keeps an assessment
at least three years (Art. 56); :func:`requirements` is the one rule of which purposes need
one (:func:`piiguard.sharing.requirements`, which ``share`` applies too).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import insert, select

from piiguard.consent import ConsentLedger
from piiguard.consent.state import StateCache
from piiguard.errors import InvalidArgument, UnknownPurpose, boundary
from piiguard.fields import PIIModel, inventory
from piiguard.retention import RetentionPolicy
from piiguard.seals import seal, sealed
from piiguard.sharing import ASSESSMENT_SCOPES, Sharing, requirements
from piiguard.store import Store, aware

__all__ = ["RECORD_FORMAT", "Assessment", "Records", "requirements"]

_log = structlog.get_logger("piiguard")
#: The record of processing's format and version.
RECORD_FORMAT = "piiguard.records/1"
#: How long an assessment is kept, at least (PIPL Art. 56: three years).
KEEP_ASSESSMENTS = timedelta(days=3 * 366)


@dataclass(frozen=True, slots=True)
class Assessment:
    """A personal information protection impact assessment, as kept.

    Attributes:
        assessment_id: its id.
        purpose: the purpose assessed.
        created_at: when it was recorded; kept until ``keep_until`` at least.
        author: who made it.
        risks, measures: what it found and what the shop does about it (text the author
            wrote: keep personal information out of it).
        required_for: why the purpose needed one when it was made.
    """

    assessment_id: str
    purpose: str
    created_at: datetime
    keep_until: datetime
    author: str
    risks: tuple[str, ...]
    measures: tuple[str, ...]
    required_for: tuple[str, ...]


def _models() -> list[type[PIIModel]]:
    """Every PIIModel class declared with ``purposes=``, by name."""
    seen: dict[str, type[PIIModel]] = {}
    waiting = list(PIIModel.__subclasses__())
    while waiting:
        model = waiting.pop()
        waiting += model.__subclasses__()
        if model.__dict__.get("__pii_purposes__") or model.__pii_purposes__:
            seen.setdefault(f"{model.__module__}.{model.__qualname__}", model)
    return [seen[name] for name in sorted(seen)]


def _texts(what: str, values: object) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence | set | frozenset):
        raise InvalidArgument(f"{what} is a list of texts")
    found = tuple(values)
    if not found or not all(isinstance(v, str) and v.strip() and len(v) <= 2000 for v in found):
        raise InvalidArgument(f"{what} is a non-empty list of texts of at most 2000 characters")
    return found


class Records:
    """``guard.records``: the record of processing and the impact assessments.

    Args:
        mac: the MAC (a key the KEK wraps) each assessment is sealed with: a row inserted
            or changed by hand is not an assessment.
        recorded: records that an assessment was made (the audit log).
        name_refusal: why an author's name cannot be kept (the audit log's rule for
            actors), or None.
    """

    def __init__(
        self,
        store: Store,
        *,
        consent: ConsentLedger,
        sharing: Sharing,
        policies: Callable[[], list[RetentionPolicy]],
        clock: Callable[[], datetime],
        mac: Callable[[], Any],
        recorded: Callable[[str, Mapping[str, str]], None],
        name_refusal: Callable[[str], Exception | None],
        made: Callable[[], set[str]] = set,
        stored: Callable[[str, str], str] = lambda key, value: value,
    ) -> None:
        self._store = store
        self._made = made  # the assessment ids the audit log recorded, in stored form
        self._stored = stored
        counter = store.change_counter() if store.engine.dialect.name == "sqlite" else None
        self._assessed: StateCache[bool] = StateCache(counter)  # purpose -> assessed
        self._mac = mac
        self._recorded = recorded
        self._name_refusal = name_refusal
        self._consent = consent
        self._sharing = sharing
        self._policies = policies
        self._clock = clock

    # -- impact assessments --------------------------------------------------------------

    @boundary
    def assessment(
        self,
        purpose: str,
        *,
        risks: Sequence[str],
        measures: Sequence[str],
        author: str,
        covers: Iterable[str] = (),
    ) -> Assessment:
        """Keep an impact assessment of a registered purpose (kept three years at least).

        It covers what the purpose needs one for now (:func:`~piiguard.sharing.requirements`:
        ``sensitive``, ``providing``, ``cross_border``) and what ``covers`` adds (a recipient,
        or one abroad, to be registered later). A share or a grant is admitted only by an
        assessment that covers what it needs (PIPL Art. 55(3)-(4)): one made before any
        recipient was registered does not cover providing.

        Raises:
            UnknownPurpose: the purpose is not registered.
            InvalidArgument: no risks, no measures, no author, or an unknown ``covers``.
        """
        defined, version = self._consent.catalog.current(purpose)
        if isinstance(covers, str) or not set(covers) <= set(ASSESSMENT_SCOPES):
            raise InvalidArgument(f"covers names some of {list(ASSESSMENT_SCOPES)}")
        needed = requirements(defined, self._sharing.recipients())
        risks, measures = _texts("risks", risks), _texts("measures", measures)
        if type(author) is not str or not author.strip() or len(author) > 128:
            raise InvalidArgument("an assessment names its author")
        refused = self._name_refusal(author)
        if refused is not None:
            raise refused
        now = self._clock().astimezone(UTC)
        made = Assessment(
            assessment_id="pia_" + secrets.token_hex(12),
            purpose=defined.name,
            created_at=now,
            keep_until=now + KEEP_ASSESSMENTS,
            author=author,
            risks=risks,
            measures=measures,
            required_for=tuple(s for s in ASSESSMENT_SCOPES if s in {*needed, *covers}),
        )
        body = {
            "risks": list(risks),
            "measures": list(measures),
            "required_for": list(made.required_for),
            "purpose_version": version,  # a redefined purpose needs a new assessment
        }
        text = json.dumps(body, ensure_ascii=False, sort_keys=True)
        sealing = seal(
            self._mac(),
            "assessment",
            self._sealed_values(
                made.assessment_id, made.purpose, author, text, (made.created_at, made.keep_until)
            ),
        )
        with self._store.changing() as connection:  # every instance's cache sees it
            connection.execute(
                insert(self._store.tables.assessments).values(
                    id=made.assessment_id,
                    purpose=made.purpose,
                    created_at=now,
                    keep_until=made.keep_until,
                    author=author,
                    body=text,
                    seal=sealing,
                )
            )
        self._recorded("assessment", {"purpose": made.purpose, "assessment": made.assessment_id})
        return made

    @staticmethod
    def _sealed_values(
        assessment_id: str, purpose: str, author: str, body: str, dates: tuple[datetime, datetime]
    ) -> tuple[str, ...]:
        """What an assessment's seal covers: its id, purpose, author, body and both dates
        (to the second, in UTC, as every backend stores them)."""
        stamps = tuple(aware(d).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") for d in dates)
        return (assessment_id, purpose, author, body, *stamps)

    def _kept(self, rows: Iterable[Any]) -> list[Assessment]:
        """The rows whose seal holds: one inserted or changed by hand is not an assessment."""
        return [assessment for _, assessment in self._sealed_rows(rows)]

    def _sealed_rows(self, rows: Iterable[Any]) -> list[tuple[Any, Assessment]]:
        mac, kept = self._mac(), []
        for row in rows:
            dates = (row.created_at, row.keep_until)
            values = self._sealed_values(row.id, row.purpose, row.author, row.body, dates)
            if sealed(mac, "assessment", values, row.seal):
                kept.append((row, _assessment(row)))
            else:
                _log.warning("assessment_seal_broken", assessment=row.id)
        return kept

    @boundary
    def assessments(self, purpose: str | None = None) -> list[Assessment]:
        """The impact assessments kept (of one purpose), oldest first."""
        table = self._store.tables.assessments
        query = select(table).order_by(table.c.created_at, table.c.id)
        if purpose is not None:
            query = query.where(table.c.purpose == purpose)
        self._mac()  # the key, before the store is read
        with self._store.engine.connect() as connection:
            rows = connection.execute(query).all()
        return self._kept(rows)

    @boundary
    def missing_assessments(self) -> int:
        """How many assessments the audit log recorded that the store no longer holds whole
        (deleted or changed by hand): they are kept three years at least (PIPL Art. 56), so
        anything but 0 is an insider's work or a lost table. Counted, not named: the log
        keeps their ids as keyed digests. Events pruned from the log are not counted."""
        kept = {self._stored("assessment", a.assessment_id) for a in self.assessments()}
        return len(self._made() - kept)

    def assessed(self, purpose: str, needs: Iterable[str] = ()) -> bool:
        """Whether the purpose, as it is defined now, has a sealed impact assessment that
        covers ``needs`` (``sensitive``, ``providing``, ``cross_border``); cached on SQLite
        until the store changes."""
        wanted = frozenset(needs)
        key = (purpose, wanted)
        cached, generation = self._assessed.look(key)
        if cached is not None:
            return cached
        table = self._store.tables.assessments
        try:
            version = self._consent.catalog.current(purpose)[1]
        except UnknownPurpose:
            return False
        self._mac()
        with self._store.engine.connect() as connection:
            rows = connection.execute(select(table).where(table.c.purpose == purpose)).all()
        # one of the purpose as it is now (a purpose redefined since needs a new one), made
        # for what the share or grant needs
        found = any(
            json.loads(row.body).get("purpose_version") == version
            and wanted <= set(assessment.required_for)
            for row, assessment in self._sealed_rows(rows)
        )
        self._assessed.keep(key, found, generation)
        return found

    # -- the record of processing ------------------------------------------------------------

    @boundary
    def processing(self, models: Iterable[type[PIIModel]] | None = None) -> dict[str, Any]:
        """The record of processing, JSON-serialisable: every registered purpose with its
        legal basis, kinds, the models that collect for it (``purposes=``; default every
        such model), the recipients that receive data for it, whether it needs an impact
        assessment and which it has; the retention policies; the recipients with their
        terms and transfers abroad."""
        chosen = _models() if models is None else list(models)
        recipients = self._sharing.recipients()
        kept = self.assessments()
        # each model's inventory once, not once per purpose
        specs = {f"{m.__module__}.{m.__qualname__}": inventory(m) for m in chosen}
        purposes = []
        for purpose, version in self._consent.catalog.names():
            needed = requirements(purpose, recipients)
            inventories = {
                name: [
                    {"field": spec.name, "kind": spec.kind, "sensitive": spec.sensitive}
                    for spec in found
                    if purpose.name in spec.purposes
                ]
                for name, found in specs.items()
            }
            purposes.append(
                {
                    "name": purpose.name,
                    "version": version,
                    "basis": purpose.basis,
                    "kinds": sorted(purpose.kinds),
                    "sensitive": sorted(purpose.sensitive_kinds),
                    "separate": purpose.separate,
                    "collected_by": {name: f for name, f in inventories.items() if f},
                    "recipients": sorted(r.name for r in recipients if purpose.name in r.purposes),
                    "assessment_required": list(needed),
                    # whether one kept covers this version and what it needs now: an older
                    # one is listed below, but admits nothing
                    "assessment_covered": not needed or self.assessed(purpose.name, needed),
                    "assessments": [a.assessment_id for a in kept if a.purpose == purpose.name],
                }
            )
        return {
            "format": RECORD_FORMAT,
            "generated_at": self._clock().isoformat(),
            "purposes": purposes,
            "retention": [
                {
                    "category": p.category,
                    "keep_days": p.keep / timedelta(days=1),
                    "after": p.after,
                    "action": p.action,
                    "legal_minimum": p.legal_minimum,
                }
                for p in self._policies()
            ],
            "recipients": [r.terms() for r in recipients],
            "assessments_missing": self.missing_assessments(),
            "assessments": [
                {
                    "id": a.assessment_id,
                    "purpose": a.purpose,
                    "created_at": a.created_at.isoformat(),
                    "keep_until": a.keep_until.isoformat(),
                    "author": a.author,
                    "required_for": list(a.required_for),
                }
                for a in kept
            ],
        }

    def markdown(self, record: dict[str, Any] | None = None) -> str:
        """The record of processing for people: one section per purpose, then retention,
        recipients and assessments."""
        found = record or self.processing()
        lines = [
            "# Record of processing",
            "",
            f"Generated {found['generated_at']} ({found['format']}).",
            "",
            "## Purposes",
            "",
        ]
        for p in found["purposes"]:
            lines += [
                f"### {p['name']} (version {p['version']})",
                "",
                f"- Legal basis: {p['basis']}{'; separate consent' if p['separate'] else ''}",
                f"- Kinds: {', '.join(p['kinds']) or 'none'}",
                f"- Sensitive kinds: {', '.join(p['sensitive']) or 'none'}",
                f"- Recipients: {', '.join(p['recipients']) or 'none'}",
                "- Impact assessment: "
                + (
                    (
                        "required ("
                        + ", ".join(p["assessment_required"])
                        + ("), covered; " if p["assessment_covered"] else "), NOT covered; ")
                    )
                    if p["assessment_required"]
                    else "not required; "
                )
                + (", ".join(p["assessments"]) or "none kept"),
            ]
            for model, fields in p["collected_by"].items():
                shown = ", ".join(f"{f['field']} ({f['kind']})" for f in fields)
                lines.append(f"- Collected by `{model}`: {shown}")
            lines.append("")
        lines += ["## Retention", "", "| category | kept (days) | after | then | legal minimum |"]
        lines.append("|---|---|---|---|---|")
        for r in found["retention"]:
            lines.append(
                f"| {r['category']} | {r['keep_days']:g} | {r['after']} | {r['action']} | "
                f"{'yes' if r['legal_minimum'] else 'no'} |"
            )
        lines += ["", "## Recipients", ""]
        for r in found["recipients"]:
            abroad = r["cross_border"]
            where = (
                f"abroad: {abroad['country']}, {abroad['mechanism']}"
                if abroad
                else "in the country"
            )
            if abroad and abroad.get("filing_ref"):
                where += f" ({_md(abroad['filing_ref'])})"
            contract = r.get("contract")
            bound = (
                f"contract {_md(contract['ref'])} until {contract['until']}"
                if contract
                else "no contract"
            )
            fields = ", ".join(f"{k} ({v})" for k, v in r["fields"].items())
            lines.append(
                f"- **{r['name']}**: {', '.join(r['purposes'])}; fields {fields}; assessed "
                f"until {r['assessed_until']}; {bound}; {where}"
            )
        lines += ["", "## Impact assessments", ""]
        if found.get("assessments_missing"):
            lines += [
                f"**{found['assessments_missing']} assessment(s) recorded in the audit log are "
                "no longer held whole by the store.**",
                "",
            ]
        for a in found["assessments"]:
            lines.append(
                f"- {a['id']}: {a['purpose']} by {_md(a['author'])}, {a['created_at']}, kept "
                f"until {a['keep_until']}; made for {', '.join(a['required_for']) or 'nothing'}"
            )
        return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Free text (an author, a reference) as Markdown shows it: literally, not as markup."""
    return re.sub(r"([\\`*_{}\[\]()#+!|<>~-])", r"\\\1", text)


def _assessment(row: Any) -> Assessment:
    body = json.loads(row.body)
    return Assessment(
        assessment_id=row.id,
        purpose=row.purpose,
        created_at=aware(row.created_at),
        keep_until=aware(row.keep_until),
        author=row.author,
        risks=tuple(body["risks"]),
        measures=tuple(body["measures"]),
        required_for=tuple(body["required_for"]),
    )
