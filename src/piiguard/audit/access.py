"""Access policy: which role sees which kind in clear, masked or not at all, for which
purposes; and just-in-time grants of a role, with a ticket and an approver.

:func:`view` is the one rule of what a role sees; :class:`Access` (``guard.access``) keeps
the grants in the store, so every instance sees a grant and its revocation at once, and
decides whether an actor may act in a role (:meth:`Access.admit`). Least privilege: a kind a
role does not name is absent; separation of duties: nobody approves their own grant.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import structlog
from sqlalchemy import and_, insert, select, update

from piiguard.audit.log import holds_pii, micros, moment
from piiguard.errors import AccessDenied, InvalidArgument, boundary
from piiguard.events import NAME_LIMIT, AccessEvent, Reveals, actor_name, same_person
from piiguard.kinds import get_kind
from piiguard.seals import Digest, seal, sealed
from piiguard.store import Store

__all__ = ["Access", "AccessGrant", "AccessPolicy", "Role", "View", "view"]

View = Literal["clear", "masked", "absent"]

#: The longest a just-in-time grant may last when the role does not say.
DEFAULT_MAX_TTL = timedelta(hours=8)

_log = structlog.get_logger("piiguard")


def _name(what: str, value: object) -> str:
    """A role, actor, approver or ticket: a non-empty printable str of at most 128, that
    holds no personal information (it is kept in clear)."""
    if type(value) is not str:
        raise InvalidArgument(f"{what} is a str")
    if not value or len(value) > NAME_LIMIT or not value.isprintable():
        raise InvalidArgument(f"{what} is 1 to {NAME_LIMIT} printable characters")
    if holds_pii(value):
        raise InvalidArgument(f"{what} is a name or a reference, not personal information")
    return value


def _names(what: str, values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidArgument(f"{what} is a set of names, not one str")
    return frozenset(_name(what, value) for value in values)


def _kind_names(values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidArgument("a role's kinds are a set of kind names, not one str")
    return frozenset(get_kind(value).name for value in values)


class Role:
    """What one role may see, and for which purposes.

    Args:
        name: the role's name (``"cs"``, ``"finance"``).
        purposes: the registered purposes the role acts for; any other purpose is refused.
        clear: kinds the role sees in clear (still only when the purpose covers the kind).
        masked: kinds the role sees masked by the kind's rule. A kind in neither is absent.
        jit: the role is held only through a live just-in-time grant
            (:meth:`Access.grant`), never by saying so.
        max_ttl: the longest grant of this role (default 8 hours).
        approvers: who may approve a grant of this role (anyone but the grantee when empty).

    Raises:
        InvalidArgument: a name that is not a printable str, no purposes, a kind both clear
            and masked, or a ``max_ttl`` that is not a positive timedelta.
        UnknownKind: a kind no built-in or registered kind has.
    """

    __slots__ = ("approvers", "clear", "jit", "masked", "max_ttl", "name", "purposes")

    def __init__(
        self,
        name: str,
        *,
        purposes: Iterable[str],
        clear: Iterable[str] = (),
        masked: Iterable[str] = (),
        jit: bool = False,
        max_ttl: timedelta = DEFAULT_MAX_TTL,
        approvers: Iterable[str] = (),
    ) -> None:
        self.name = _name("a role's name", name)
        self.purposes = _names("a role's purposes", purposes)
        if not self.purposes:
            raise InvalidArgument("a role acts for at least one purpose")
        self.clear = _kind_names(clear)
        self.masked = _kind_names(masked)
        if self.clear & self.masked:
            raise InvalidArgument("a kind is either clear or masked for a role, not both")
        if type(jit) is not bool:
            raise InvalidArgument("jit is True or False")
        self.jit = jit
        if not isinstance(max_ttl, timedelta) or max_ttl <= timedelta(0):
            raise InvalidArgument("max_ttl is a positive timedelta")
        self.max_ttl = max_ttl
        self.approvers = _names("a role's approvers", approvers)

    def __repr__(self) -> str:
        return (
            f"Role({self.name!r}, purposes={sorted(self.purposes)}, clear={sorted(self.clear)},"
            f" masked={sorted(self.masked)}, jit={self.jit})"
        )


def view(role: Role, kind: str, purpose_kinds: frozenset[str]) -> View:
    """The one rule of what ``role`` sees of a value of ``kind`` for a purpose whose
    registered kinds are ``purpose_kinds``: clear only when both the role and the purpose
    allow it, masked when the role names the kind, else absent."""
    if kind in role.clear:
        return "clear" if kind in purpose_kinds else "masked"
    return "masked" if kind in role.masked else "absent"


class MaskingRules(Protocol):
    """What :class:`AccessPolicy` needs of a :class:`~piiguard.MaskingPolicy`."""

    def rule_for(self, kind: str, role: str | None = None) -> Callable[[str], str] | None:
        """The rule ``role`` sees ``kind`` masked with, or None for the kind's default."""


class AccessPolicy:
    """Roles, each naming which kinds it sees in clear or masked, and for which purposes.

        >>> import piiguard as pg
        >>> policy = pg.AccessPolicy([
        ...     pg.Role("cs", purposes={"after_sales"}, clear={"phone"},
        ...             masked={"person_name", "address"}),
        ... ])
        >>> sorted(policy.roles)
        ['cs']

    Args:
        roles: the roles; names are unique.
        masking: a :class:`~piiguard.MaskingPolicy` whose rules for a role's name mask what
            that role sees masked (each kind's default rule otherwise).
    """

    __slots__ = ("_roles", "masking")

    def __init__(self, roles: Iterable[Role], *, masking: MaskingRules | None = None) -> None:
        found: dict[str, Role] = {}
        for role in roles:
            if not isinstance(role, Role):
                raise InvalidArgument("an access policy's roles are pg.Role")
            if role.name in found:
                raise InvalidArgument("two roles share one name")
            found[role.name] = role
        self._roles: Mapping[str, Role] = found
        self.masking = masking

    @property
    def roles(self) -> frozenset[str]:
        """The names of the roles this policy defines."""
        return frozenset(self._roles)

    def role(self, name: object) -> Role | AccessDenied:
        """The role called ``name``, or the refusal (an unknown role sees nothing)."""
        found = self._roles.get(name) if isinstance(name, str) else None
        if found is None:
            return AccessDenied("unknown_role", "the access policy has no such role")
        return found

    def __repr__(self) -> str:
        return f"AccessPolicy(roles={sorted(self._roles)})"


#: A policy with no roles: until one is given, every ``guard.reveal`` is refused.
NO_ROLES = AccessPolicy(())


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """A just-in-time grant of a role to an actor, for a ticket, approved by someone else."""

    id: str
    actor: str
    role: str
    ticket: str
    approved_by: str
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        """Whether the grant holds at ``now``."""
        return self.revoked_at is None and self.granted_at <= now < self.expires_at


class Access:
    """``guard.access``: the access policy and just-in-time grants, kept in the store.

    Each grant row carries a seal (a MAC under a key the KEK wraps) over all its columns: a
    row written or changed by someone who can write the database but cannot use the KEK is
    never honoured, and a grant is never honoured for longer than its role's ``max_ttl``.
    """

    def __init__(
        self,
        store: Store,
        reveals: Reveals,
        clock: Callable[[], datetime],
        policy: AccessPolicy | None = None,
        *,
        mac: Callable[[], Digest],
    ) -> None:
        if policy is not None and not isinstance(policy, AccessPolicy):
            raise InvalidArgument("access= is a pg.AccessPolicy")
        self._store = store
        self._reveals = reveals
        self._clock = clock
        self._mac = mac
        self.policy: AccessPolicy = policy or NO_ROLES

    @boundary
    def grant(
        self,
        actor: str,
        *,
        role: str,
        ticket: str,
        approved_by: str,
        ttl: timedelta,
    ) -> AccessGrant:
        """Let ``actor`` act in the just-in-time ``role`` for ``ttl``, for ``ticket``, as
        approved by ``approved_by``; recorded in the audit log (as the approver's act).

        Raises:
            AccessDenied: ``reason="self_approval"`` when the approver is the grantee (names
                compared after NFKC, case folding and trimming), or ``"not_an_approver"``
                when the role names its approvers and this is not one.
            InvalidArgument: an unknown or standing (not ``jit``) role, a ttl that is not a
                positive timedelta within the role's ``max_ttl``, a bad name.
        """
        actor = _name("actor", actor_name(_name("actor", actor)))
        approved_by = _name("approved_by", approved_by)
        ticket = _name("ticket", ticket)
        found = self.policy.role(role)
        if isinstance(found, AccessDenied) or not found.jit:
            raise InvalidArgument("grants are of a jit role of the access policy")
        if not isinstance(ttl, timedelta) or not timedelta(0) < ttl <= found.max_ttl:
            raise InvalidArgument("ttl is a positive timedelta within the role's max_ttl")
        if same_person(approved_by, actor):
            raise AccessDenied("self_approval", "nobody approves their own grant")
        if found.approvers and not any(same_person(approved_by, a) for a in found.approvers):
            raise AccessDenied("not_an_approver", "the role names who approves its grants")
        mac = self._mac()  # keys first: a first use takes a transaction of its own
        now = self._clock()
        made = AccessGrant(_grant_id(), actor, found.name, ticket, approved_by, now, now + ttl)
        self._note("access_grant", approved_by, made)  # first: no grant holds unrecorded
        row = _columns(made)
        with self._store.transaction() as connection:
            connection.execute(
                insert(self._store.tables.access_grants).values(**row, seal=_sealed(mac, row))
            )
        return made

    @boundary
    def revoke(self, grant_id: str, *, by: str) -> bool:
        """End a grant now (audited as ``by``'s act); False if it was not live."""
        grant_id, by = _name("grant_id", grant_id), _name("by", by)
        grants = self._store.tables.access_grants
        mac = self._mac()  # before the transaction: a first use takes one of its own
        now = self._clock()
        with self._store.transaction() as connection:
            row = connection.execute(select(grants).where(grants.c.id == grant_id)).first()
            found = None if row is None else _opened(mac, row)
            if found is None or not found.live(now):
                return False
            ended = _columns(found) | {"revoked_us": micros(now)}
            connection.execute(
                update(grants)
                .where(grants.c.id == grant_id)
                .values(revoked_us=ended["revoked_us"], seal=_sealed(mac, ended))
            )
        self._note("access_revoke", by, found)
        return True

    @boundary
    def grants(self, actor: str | None = None, *, live: bool = True) -> list[AccessGrant]:
        """Grants, oldest first: an actor's or everyone's, only the live ones by default.
        A row whose seal does not hold (written around piiguard) is left out."""
        grants = self._store.tables.access_grants
        query = select(grants).order_by(grants.c.granted_us, grants.c.id)
        if actor is not None:
            query = query.where(grants.c.actor == actor_name(_name("actor", actor)))
        mac = self._mac()
        with self._store.engine.connect() as connection:
            rows = connection.execute(query).all()
        found = [_opened(mac, row) for row in rows]
        now = self._clock()
        return [g for g in found if g is not None and (g.live(now) or not live)]

    def admit(self, actor: str, role: object, purpose: str) -> Role | AccessDenied:
        """The role ``actor`` acts in for ``purpose``, or why not: an unknown role, a
        purpose the role does not act for, or a jit role without a live, sealed grant that
        someone else approved."""
        found = self.policy.role(role)
        if isinstance(found, AccessDenied):
            return found
        if purpose not in found.purposes:
            return AccessDenied("purpose_not_allowed", "the role does not act for this purpose")
        if found.jit and not self._granted(actor, found):
            return AccessDenied("no_grant", "the role needs a live just-in-time grant")
        return found

    def _granted(self, actor: str, role: Role) -> bool:
        grants = self._store.tables.access_grants
        now = self._clock()
        now_us = micros(now)
        query = select(grants).where(
            grants.c.actor == actor,
            grants.c.role == role.name,
            grants.c.revoked_us.is_(None),
            and_(grants.c.granted_us <= now_us, grants.c.expires_us > now_us),
        )
        mac = self._mac()
        with self._store.engine.connect() as connection:
            rows = connection.execute(query).all()
        for row in rows:
            grant = _opened(mac, row)
            if (
                grant is not None
                and grant.live(now)
                and not same_person(grant.approved_by, grant.actor)
                and grant.expires_at - grant.granted_at <= role.max_ttl
            ):
                return True
        return False

    def _note(self, action: str, by: str, grant: AccessGrant) -> None:
        event = AccessEvent(
            action,
            by,
            None,
            self._reveals.now(),
            {"grant": grant.id, "grantee": grant.actor, "role": grant.role, "ticket": grant.ticket},
        )
        failure = self._reveals.record(event)
        if failure is not None:
            raise failure

    def __repr__(self) -> str:
        return f"Access({self.policy!r})"


#: The grant columns a seal covers, in order.
_SEALED = (
    "id",
    "actor",
    "role",
    "ticket",
    "approved_by",
    "granted_us",
    "expires_us",
    "revoked_us",
)


def _sealed(mac: Digest, columns: Mapping[str, object]) -> bytes:
    return seal(mac, "access_grant", (columns[name] for name in _SEALED))


def _opened(mac: Digest, row: Any) -> AccessGrant | None:
    """The grant a stored row holds, if its seal holds; else None (and a log line)."""
    columns = {name: getattr(row, name) for name in _SEALED}
    if not sealed(mac, "access_grant", (columns[name] for name in _SEALED), row.seal):
        _log.warning("access_grant_seal_broken")
        return None
    return _grant(row)


def _grant_id() -> str:
    """A new grant's id: letters only (80 random bits), so the audit log keeps it in clear."""
    return "g_" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(17))


def _columns(grant: AccessGrant) -> dict[str, Any]:
    return {
        "id": grant.id,
        "actor": grant.actor,
        "role": grant.role,
        "ticket": grant.ticket,
        "approved_by": grant.approved_by,
        "granted_us": micros(grant.granted_at),
        "expires_us": micros(grant.expires_at),
        "revoked_us": None if grant.revoked_at is None else micros(grant.revoked_at),
    }


def _grant(row: Any) -> AccessGrant:
    return AccessGrant(
        id=row.id,
        actor=row.actor,
        role=row.role,
        ticket=row.ticket,
        approved_by=row.approved_by,
        granted_at=moment(int(row.granted_us)),
        expires_at=moment(int(row.expires_us)),
        revoked_at=None if row.revoked_us is None else moment(int(row.revoked_us)),
    )
