"""``piiguard demo``: the life of one customer on the embedded default, step by step.

Collected under a notice with consent, stored encrypted through the ORM, found by phone,
shown masked to customer service, revealed with an audited reason, shared with a courier,
swept by retention, erased with a receipt (a copy taken before the erasure unreadable once the
key epoch advances), exported. Everything lives in a temporary directory and goes with it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from joserfc import jwe
from joserfc.jwk import ECKey
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import piiguard as pg
import piiguard.integrations.sqlalchemy as pg_sa
from piiguard.keys import LocalKEK
from piiguard.testing import SettableClock

__all__ = ["life"]

PHONE = "13812345678"
NAME = "张三丰"
ADDRESS = "北京市朝阳区建国路88号"


class _Base(DeclarativeBase):
    pass


class DemoAccount(_Base):
    """The shop's customers table: three encrypted columns, one searchable."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(
        pg_sa.Encrypted("person_name", subject="user_id", masked=True)
    )
    phone: Mapped[str] = mapped_column(
        pg_sa.Encrypted("phone", subject="user_id", searchable=True, masked=True)
    )
    address: Mapped[str] = mapped_column(pg_sa.Encrypted("address", subject="user_id", masked=True))


class _Waybill(pg.PIIModel):
    order_id: str
    receiver: pg.PersonName
    phone: pg.Phone
    address: pg.Address


def _purposes(guard: pg.Guard) -> None:
    guard.consent.register(
        pg.Purpose("delivery", basis="contract", kinds={"person_name", "phone", "address"})
    )
    guard.consent.register(pg.Purpose("after_sales", basis="contract", kinds={"phone"}))
    guard.consent.register(
        pg.Purpose("marketing_sms", basis="consent", kinds={"phone"}, separate=True)
    )
    guard.consent.register(
        pg.Purpose(
            "access_request", basis="legal_obligation", kinds={"phone", "person_name", "address"}
        )
    )
    guard.consent.publish_notice(
        "privacy-2026", purposes=["marketing_sms"], text="We send offers by SMS, if you agree."
    )


def life(console: Console) -> None:
    """Walk one customer from sign-up to erasure, printing each step."""
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        clock = SettableClock()
        with pg.Guard.open(
            f"sqlite:///{home / 'piiguard.db'}",
            kek=LocalKEK.load_or_generate(home / "kek.key"),
            clock=clock,
            erasure_log=home / "erasures.log",
        ) as guard:
            _steps(console, guard, clock, home)


def _steps(console: Console, guard: pg.Guard, clock: SettableClock, home: Path) -> None:
    _purposes(guard)
    engine = create_engine(f"sqlite:///{home / 'shop.db'}")
    try:
        _collect(console, guard, engine)
        _find_and_reveal(console, guard, engine)
        _share(console, guard)
        _sweep(console, guard, clock)
        _erase(console, guard, engine, clock, home)
        console.rule("[bold]8. Exported, for an access request")
        exported = guard.export("u1", actor="dpo-1", purpose="access_request")
        console.print("export sections:", sorted(exported), markup=False)
    finally:
        engine.dispose()


def _collect(console: Console, guard: pg.Guard, engine: Engine) -> None:
    console.rule("[bold]1. Collected under a notice, with separate consent to SMS offers")
    guard.consent.grant(
        "u1",
        "marketing_sms",
        notice="privacy-2026",
        evidence={"channel": "app", "ip": "203.0.113.7"},
    )
    missing = guard.consent.missing("u1", ["marketing_sms"])
    console.print("consent missing for marketing_sms:", missing or "none")
    console.rule("[bold]2. Stored encrypted through the ORM")
    pg_sa.install(guard, _Base)
    _Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(DemoAccount(user_id="u1", name=NAME, phone=PHONE, address=ADDRESS))
        session.commit()
    with engine.connect() as connection:
        (stored,) = connection.execute(select(DemoAccount.__table__.c.phone)).scalars()
    console.print("the phone column holds:", f"{stored.text[:24]}...", markup=False)


def _find_and_reveal(console: Console, guard: pg.Guard, engine: Engine) -> None:
    console.rule("[bold]3. Found by phone, written any way, shown masked to customer service")
    with Session(engine) as session:
        found = session.scalars(
            select(DemoAccount).where(pg_sa.lookup(DemoAccount.phone, "138 1234 5678"))
        ).one()
        table = Table("customer", "name", "phone", "address")
        shown: Any = found  # the companion columns are mapped when the table is made
        table.add_row(found.user_id, shown.name_masked, shown.phone_masked, shown.address_masked)
        console.print(table)
        console.print("reveals so far:", len(list(guard.audit.events(action="decrypt"))))
        console.rule("[bold]4. Revealed with a reason, and audited")
        with pg.acting(actor="cs-7", purpose="after_sales"):
            revealed = found.phone
    (event,) = list(guard.audit.events(action="decrypt"))
    console.print(
        f"cs-7 read the phone for after_sales ({pg.mask(revealed, 'phone')} shown here); "
        f"audit event #{event.seq}: actor={event.actor}, purpose={event.purpose}, "
        f"count={event.count}",
        markup=False,
    )


def _share(console: Console, guard: pg.Guard) -> None:
    console.rule("[bold]5. Shared with a courier: minimised, encrypted to its key")
    courier_key = ECKey.generate_key("P-256")
    guard.sharing.register(
        pg.Recipient(
            "sf-express",
            public_key=courier_key.as_dict(private=False),
            purposes={"delivery"},
            fields={
                "order_id": "clear",
                "receiver": "masked",
                "phone": "token",
                "address": "clear",
            },
            assessed_until=date(2099, 12, 31),
            contract=pg.Contract("SF-2026-001", date(2099, 12, 31)),
        )
    )
    guard.records.assessment(
        "delivery",
        risks=["labels are thrown away"],
        measures=["masked name", "phone as a token"],
        author="dpo",
    )
    order = _Waybill(order_id="o-1001", receiver=NAME, phone=PHONE, address=ADDRESS)
    token = guard.share(order, to="sf-express", purpose="delivery", subject="u1", actor="svc:wb")
    opened = jwe.decrypt_compact(token, courier_key, algorithms=["ECDH-ES+A256KW", "A256GCM"])
    fields: dict[str, Any] = json.loads(opened.plaintext or b"{}")["fields"]
    console.print(f"a compact JWE of {len(token)} characters; the courier reads:", markup=False)
    console.print(fields, markup=False)
    console.print(
        "who received u1's data:", [r.recipient for r in guard.sharing.recipients_of("u1")]
    )


def _sweep(console: Console, guard: pg.Guard, clock: SettableClock) -> None:
    console.rule("[bold]6. Swept by retention when it is no longer needed")
    swept: list[str] = []
    guard.retention.policy(pg.RetentionPolicy("orders", keep=timedelta(days=30), after="completed"))

    @guard.retention.hook("orders")
    def delete_orders(ids: list[str]) -> None:
        swept.extend(ids)

    guard.retention.track("orders", "o-1001", subject="u1")
    clock.advance(timedelta(days=31))
    report = guard.retention.sweep()
    console.print(f"after 31 days the sweep deleted {report.done} order(s): {swept}", markup=False)


def _erase(
    console: Console, guard: pg.Guard, engine: Engine, clock: SettableClock, home: Path
) -> None:
    console.rule("[bold]7. Erased, with a receipt; a copy from before opens nothing after")
    for part in home.glob("piiguard.db*"):  # the file and its write-ahead log: a backup
        shutil.copy(part, home / part.name.replace("piiguard.db", "backup.db"))
    receipt = guard.erase("u1")
    done = "complete" if receipt.completed else "in progress"
    console.print(f"receipt {receipt.receipt_id}: {len(receipt.steps)} steps, {done}")
    guard.keys.advance_epoch()
    backup_url = f"sqlite:///{home / 'backup.db'}"
    with pg.Guard.open(backup_url, kek=LocalKEK.from_file(home / "kek.key"), clock=clock) as copy:
        pg_sa.install(copy, _Base)
        with Session(engine) as session:
            account = session.scalars(select(DemoAccount)).one()
            try:
                with pg.acting(actor="cs-7", purpose="after_sales"):
                    _ = account.phone
                console.print("the copy still opens: unexpected")
            except pg.KeyDestroyed:
                console.print("the copy of the store from before the erasure: KeyDestroyed")
    pg_sa.install(guard, _Base)
