"""Access events: who reveals what and why, and the sink Protocol revealing parts report to.

Every reveal (decrypt, detokenize, FPE decrypt, export) names an actor and a registered
purpose, given to the call or set once for a request with :func:`acting` (a ContextVar, so
threads and async tasks keep their own). :class:`Reveals` is the one place that decides
whether a reveal may happen (:meth:`Reveals.admit`) and records it (:meth:`Reveals.record`):
the revealing parts (crypto, tokens, subjects) call it and never import the audit log, which
the Guard wires in as the sink. An event holds identifiers (actor, purpose, kind, context, key
id, the subject's pseudonym), never a value.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol, overload

from piiguard.errors import AccessDenied, EventNotRecorded, InvalidArgument, ShareRefused

__all__ = [
    "AccessEvent",
    "EventSink",
    "ListSink",
    "NullSink",
    "Reveals",
    "Rows",
    "acting",
    "current_acting",
]

#: The longest actor or purpose name a reveal accepts (they are stored with every event).
NAME_LIMIT = 128


class Rows(Sequence[Mapping[str, str]]):
    """The contexts of a batch whose rows differ in one key only (an ORM query's rows:
    same table, field and kind, one id each): ``{**base, key: value}`` for each value, kept
    factored so a batch of 10,000 builds no 10,000 mappings to encode or to record.

    Raises:
        InvalidArgument: ``key`` is also in ``base``, or a value is not a str.
    """

    __slots__ = ("_base", "_key", "_values")

    def __init__(self, base: Mapping[str, str], key: str, values: Sequence[str]) -> None:
        if key in base:
            raise InvalidArgument("the varying key of a batch's contexts is not in its base")
        if not all(type(value) is str for value in values):
            raise InvalidArgument("context values must be str")
        self._base: Mapping[str, str] = MappingProxyType(dict(base))
        self._key = key
        self._values = tuple(values)

    @property
    def base(self) -> Mapping[str, str]:
        """What every row's context holds (read-only)."""
        return self._base

    @property
    def key(self) -> str:
        """The key whose value each row has of its own."""
        return self._key

    @property
    def values(self) -> tuple[str, ...]:
        """Each row's value of :attr:`key`."""
        return self._values

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> Mapping[str, str]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Mapping[str, str]]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Rows(self._base, self._key, self._values[index])
        return {**self._base, self._key: self._values[index]}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.base.items())), self.key, tuple(self.values)))

    def __repr__(self) -> str:  # keys may be values too (a phone as a key): none shown
        return f"Rows({len(self._base) + 1} keys, {len(self._values)} rows)"


@dataclass(frozen=True, slots=True)
class AccessEvent:
    """One access to personal information, or an operation on it.

    Attributes:
        action: what happened: ``decrypt``, ``detokenize``, ``fpe_decrypt``, ``export``,
            ``erase``, ``shred``, ``consent_grant``, ``rotate_kek``, ...
        actor: who asked (a staff id, ``svc:`` and a service name).
        purpose: why: a registered purpose (None for operations that reveal nothing).
        at: when, from the Guard's clock.
        context: where the value lives (table, field, row id): identifiers, not values.
        key_id: the data key used.
        count: how many values this one call revealed (batches).
        kind: the PII kind revealed, when known.
        subjects: the pseudonyms of the subjects concerned, when known (never their ids).
        result: ``ok``, or ``denied`` for a refused reveal (nothing was revealed).
        rows: a batch's contexts, one per value revealed.
    """

    action: str
    actor: str
    purpose: str | None
    at: datetime
    context: Mapping[str, str] = field(default_factory=dict)
    key_id: int | None = None
    count: int = 1
    kind: str | None = None
    subjects: tuple[str, ...] = ()
    result: str = "ok"
    rows: Sequence[Mapping[str, str]] = ()


class EventSink(Protocol):
    """Keeps access events. A sink that cannot keep an event raises: the reveal it reports
    then fails (:class:`~piiguard.EventNotRecorded`) and nothing is revealed (fail closed)."""

    def record(self, event: AccessEvent) -> None:
        """Keep one event durably before returning, or raise."""


class NullSink:
    """Drops every event: only for code that must not keep an audit trail (benchmarks)."""

    __slots__ = ()

    def record(self, event: AccessEvent) -> None:
        """Drop the event."""


class ListSink:
    """Keeps events in a list, for tests and for small tools."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[AccessEvent] = []

    def record(self, event: AccessEvent) -> None:
        """Append the event."""
        self.events.append(event)


# -- who is acting -------------------------------------------------------------------------

_ACTING: ContextVar[tuple[str, str] | None] = ContextVar("piiguard_acting", default=None)


def same_person(left: str, right: str) -> bool:
    """Whether two actor names name one person, for separation of duties (compared in
    their :func:`actor_name` form)."""
    return actor_name(left) == actor_name(right)


#: Code points that draw nothing: Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties,
#: Unicode 15.1) with the Hangul and Khitan fillers, and the braille blank. Most are format
#: characters a name refuses as not printable; the printable ones are dropped.
_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x16FE4, 0x16FE4),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
#: Dashes that read as ``-``, and what draws nothing dropped, in a name (NFKC keeps them).
_LOOKALIKES = str.maketrans(
    dict.fromkeys(
        "\u2010\u2012\u2013\u2014\u2015\u2212\u2e3a\u2e3b\u058a\u05be\u1806\u2e17\u30a0", "-"
    )
    | {code: None for first, last in _IGNORABLE_RANGES for code in range(first, last + 1)}
)


@functools.lru_cache(maxsize=4096)
def actor_name(name: str) -> str:
    """The one spelling of an actor's name that events, grants and the access watch keep:
    Unicode NFKC, case folded, dashes made ``-``, fillers dropped and trimmed (``"CS-7 "``,
    ``"ｃｓ－７"`` and ``"cs\u20107"`` are ``"cs-7"``), so a second spelling is never a second
    person with a fresh count. Letters of other scripts that look alike (a Cyrillic ``с``)
    stay apart: name a role's ``approvers`` where that matters.

    Repeated until nothing changes, so that a name already in this form stays as it is
    (dropping a filler can bring two characters together that NFKC then composes)."""
    for _ in range(8):  # two or three passes in practice; the bound only guards the loop
        named = unicodedata.normalize("NFKC", name.translate(_LOOKALIKES)).casefold().strip()
        if named == name:
            break
        name = named
    return name


def name_refusal(what: str, name: object) -> InvalidArgument | None:
    """Why ``name`` cannot be an actor's or purpose's name (not a str, too long, not
    printable), or None."""
    if type(name) is not str:
        return InvalidArgument(f"{what} is a str, not {type(name).__name__}")
    if len(name) > NAME_LIMIT or not name.isprintable():
        return InvalidArgument(f"{what} is at most {NAME_LIMIT} printable characters")
    return None


@contextmanager
def acting(*, actor: str, purpose: str) -> Iterator[None]:
    """Name the actor and the purpose of every reveal made inside the block.

    A ContextVar: each thread and each asyncio task sees its own, and the previous values
    come back when the block ends. A reveal's own ``actor=``/``purpose=`` take precedence.

        >>> import piiguard as pg
        >>> with pg.acting(actor="cs-7", purpose="after_sales"):
        ...     pg.current_acting()
        ('cs-7', 'after_sales')

    Raises:
        InvalidArgument: an actor or purpose that is empty, not a str, or too long.
    """
    for what, name in (("actor", actor), ("purpose", purpose)):
        refused = name_refusal(what, name) or (
            InvalidArgument(f"{what} must not be empty") if not name else None
        )
        if refused is not None:
            raise refused
    token = _ACTING.set((actor, purpose))
    try:
        yield
    finally:
        _ACTING.reset(token)


def current_acting() -> tuple[str, str] | None:
    """The (actor, purpose) that :func:`acting` set for this thread or task, if any."""
    return _ACTING.get()


def identify(actor: object, purpose: object) -> tuple[str, str] | Exception:
    """The actor (in its :func:`actor_name` form) and purpose of a reveal: the call's own,
    else those of :func:`acting`."""
    if actor is None or purpose is None:
        current = _ACTING.get()
        if current is not None:
            actor = current[0] if actor is None else actor
            purpose = current[1] if purpose is None else purpose
    refused = None if actor is None else name_refusal("actor", actor)
    if refused is not None:
        return refused
    named = None if actor is None else actor_name(actor)
    if not named:
        return AccessDenied(
            "no_actor", "a reveal names its actor: pass actor= or use pg.acting(actor=...)"
        )
    if purpose is None or purpose == "":
        return AccessDenied(
            "no_purpose", "a reveal names its purpose: pass purpose= or use pg.acting(purpose=...)"
        )
    refused = name_refusal("actor", named) or name_refusal("purpose", purpose)
    if refused is not None:
        return refused
    return named, purpose  # type: ignore[return-value]  # checked to be str above


def _covers(
    kinds: frozenset[str] | None, purpose: str, revealed: Iterable[str]
) -> AccessDenied | None:
    """The one rule of which purposes may reveal what: a registered purpose, whose kinds
    include every kind revealed that is known."""
    if kinds is None:
        return AccessDenied.unknown_purpose(purpose)
    for kind in revealed:
        if kind not in kinds:
            return AccessDenied.kind_not_covered(purpose, kind)
    return None


class Gate(Protocol):
    """A last say on an actor's reveals (the access watch): None, or the refusal."""

    def check(self, actor: str, role: str | None, count: int) -> AccessDenied | None:
        """Whether ``actor`` may reveal ``count`` values now, acting in ``role``."""

    def settled(self, event: AccessEvent, *, recorded: bool) -> None:
        """An admitted reveal's event was recorded, or could not be (nothing revealed)."""

    def released(self, actor: str, count: int) -> None:
        """``count`` values admitted for ``actor`` were never revealed (the reveal failed)."""


class Reveals:
    """Decides and records reveals, for every part that reveals (one decision, one function).

    Args:
        sink: where events go; it must keep each one durably or raise.
        purpose_kinds: a registered purpose's kinds, or None when it is not registered.
        clock: the current time (timezone-aware).
    """

    __slots__ = ("_clock", "_purpose_kinds", "_record", "gate", "sink")

    def __init__(
        self,
        sink: EventSink,
        purpose_kinds: Callable[[str], frozenset[str] | None],
        clock: Callable[[], datetime],
    ) -> None:
        self.sink = sink
        self._record = sink.record
        self._purpose_kinds = purpose_kinds
        self._clock = clock
        #: consulted after the purpose rule (the Guard sets its access watch here)
        self.gate: Gate | None = None

    def now(self) -> datetime:
        """The time events are stamped with."""
        return self._clock()

    def admit(
        self,
        actor: object,
        purpose: object,
        *,
        action: str,
        kinds: tuple[str, ...] = (),
        context: Mapping[str, str] | None = None,
        count: int = 1,
        role: str | None = None,
    ) -> tuple[str, str] | Exception:
        """(actor, purpose) if the reveal of ``count`` values may happen; else the error to
        raise, returned (not raised) so the caller drops what it holds first. A refused
        reveal by a named actor is recorded as ``denied``; if even that cannot be recorded,
        the error says so."""
        who = identify(actor, purpose)
        if isinstance(who, Exception):
            return who
        refused = _covers(self._purpose_kinds(who[1]), who[1], kinds)
        if refused is None:
            gate = self.gate
            refused = None if gate is None else gate.check(who[0], role, count)
            if refused is None:
                return who
        return self.refuse(who, refused, action=action, kinds=kinds, context=context)

    def refuse(
        self,
        who: tuple[str, str],
        refused: AccessDenied | ShareRefused,
        *,
        action: str,
        kinds: tuple[str, ...] = (),
        context: Mapping[str, str] | None = None,
    ) -> Exception:
        """Record a refused reveal as ``denied`` (with the reason) and hand back the error to
        raise: ``refused``, or why even the refusal could not be recorded."""
        event = AccessEvent(
            action,
            who[0],
            who[1],
            self._clock(),
            {**(context or {}), "reason": refused.reason},
            kind=kinds[0] if len(kinds) == 1 else None,
            result="denied",
        )
        failure = self.record(event)
        if failure is None:
            return refused
        if isinstance(failure, Exception):
            return failure
        raise failure  # a cancellation or an interrupt, as it came

    def record(self, event: AccessEvent) -> BaseException | None:
        """Hand ``event`` to the sink; the error to raise instead of revealing, or None.

        A sink's ``Exception`` becomes :class:`~piiguard.EventNotRecorded`; its
        ``BaseException`` (a cancellation, an interrupt) is handed back as it is. Returned,
        not raised, so the caller drops the plaintext from its frame first: an audited reveal
        that cannot be recorded does not happen.
        """
        recorded = False
        try:
            self._record(event)
            recorded = True
        except Exception as error:
            return EventNotRecorded(error)
        except BaseException as error:
            return error.with_traceback(None)
        finally:
            if self.gate is not None:
                self.gate.settled(event, recorded=recorded)
        return None

    def release(self, who: tuple[str, str], count: int = 1) -> None:
        """An admitted reveal of ``count`` values failed before anything was revealed (a
        bad ciphertext, an expired token): they do not count towards the actor's limits."""
        if self.gate is not None:
            self.gate.released(who[0], count)
