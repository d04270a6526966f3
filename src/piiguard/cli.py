"""The ``piiguard`` command: a demo; scanning, redacting and inventorying from a shell; and
verifying and reading the audit log (``piiguard audit verify|events``).

Needs the ``cli`` extra (typer, rich): ``pip install "piiguard[cli]"``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

try:
    import typer
    from rich.console import Console
    from rich.table import Table
except ImportError:  # pragma: no cover - exercised only without the extra
    typer = None  # type: ignore[assignment]

import piiguard as pg

__all__ = ["app", "main"]

_SAMPLE_CUSTOMER = {
    "name": "张三丰",
    "phone": "138 1234 5678",
    "email": "zhangsan@example.com",
    "id_number": "11010519491231002x",
    "card": "6222 0212 3456 7890 128",
    "address": "北京市朝阳区建国路88号",
}
_SAMPLE_NOTE = (
    "收件人张三丰，手机13812345678，身份证11010519491231002X，"
    "退款请打到卡6222021234567890128，有问题发邮件 zhangsan@example.com。"
)


class DemoCustomer(pg.PIIModel):
    """The record the demo validates: every common kind of customer PII."""

    name: pg.PersonName
    phone: pg.Phone
    email: pg.Email
    id_number: pg.CNResidentID
    card: pg.BankCard
    address: pg.Address


def _demo(console: Console) -> None:
    customer = DemoCustomer.model_validate(_SAMPLE_CUSTOMER)
    console.rule("[bold]1. A customer record, validated and normalised")
    table = Table("field", "kind", "sensitive", "masked for display")
    masked = pg.mask_model(customer)
    for spec in pg.inventory(customer):
        table.add_row(spec.name, spec.kind, "yes" if spec.sensitive else "", masked[spec.name])
    console.print(table)
    console.print("repr() never shows the values:", repr(customer), markup=False)

    console.rule("[bold]2. Bad input is refused without being echoed")
    for field, value in (("id_number", "11010519491231002Y"), ("phone", "12345")):
        try:
            DemoCustomer.model_validate({**_SAMPLE_CUSTOMER, field: value})
        except ValueError as error:
            console.print(str(error), markup=False)

    console.rule("[bold]3. PII found and masked in a free-text order note")
    console.print("findings:", pg.scan(_SAMPLE_NOTE), markup=False)
    console.print("redacted:", pg.redact(_SAMPLE_NOTE), markup=False)


def _open_guard(store: str, kek: str, schema: str | None, **options: Any) -> pg.Guard:
    """A Guard on an existing store, with the KEK in a local key file: a SQLite path that
    names no file is refused (a typo would make an empty store and report nothing)."""
    try:
        parsed = make_url(store)
    except ArgumentError:
        raise typer.BadParameter("--store is not an SQLAlchemy URL") from None
    database = parsed.database or ":memory:"
    on_file = parsed.get_backend_name() == "sqlite" and database != ":memory:"
    if on_file and not Path(database).is_file():
        raise typer.BadParameter("--store names no existing SQLite file")
    return pg.Guard.open(store, kek=pg.keys.LocalKEK.from_file(kek), schema=schema, **options)


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("an ISO 8601 date or time, e.g. 2026-12-01T00:00+08:00") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _load_model(target: str) -> type[pg.PIIModel]:
    module_name, _, attribute = target.partition(":")
    model = getattr(importlib.import_module(module_name), attribute or "", None)
    if not (isinstance(model, type) and issubclass(model, pg.PIIModel)):
        raise typer.BadParameter("expected module:Class naming a piiguard.PIIModel")
    return model


if typer is not None:
    app = typer.Typer(
        help="piiguard: protect customers' personal information.", no_args_is_help=True
    )

    @app.command()
    def demo() -> None:
        """Show validation, masking and detection on a sample customer and order note, then
        the life of one customer: consent, the ORM, search, reveal, sharing, retention,
        erasure and export."""
        from piiguard.demo import life  # noqa: PLC0415 - needs the cli extra, as this does

        console = Console()
        _demo(console)
        life(console)

    @app.command()
    def scan() -> None:
        """Read text on standard input; print each finding's kind and position."""
        text = sys.stdin.read()
        for finding in pg.scan(text):
            typer.echo(f"{finding.kind}\t{finding.start}\t{finding.end}")

    @app.command()
    def redact() -> None:
        """Read text on standard input; print it with every finding masked."""
        typer.echo(pg.redact(sys.stdin.read()), nl=False)

    @app.command()
    def inventory(
        model: Annotated[str, typer.Argument(help="module:Class of a PIIModel")],
    ) -> None:
        """List a model's PII fields with their kind, category and sensitivity."""
        table = Table("field", "kind", "category", "sensitive")
        for spec in pg.inventory(_load_model(model)):
            table.add_row(
                spec.name, spec.kind, spec.category.value, "yes" if spec.sensitive else ""
            )
        Console().print(table)

    audit_app = typer.Typer(help="Verify and read the audit log.", no_args_is_help=True)
    app.add_typer(audit_app, name="audit")
    StoreOption = Annotated[str, typer.Option("--store", help="the store's SQLAlchemy URL")]
    KekOption = Annotated[str, typer.Option("--kek", help="the local KEK's key file")]
    SchemaOption = Annotated[
        str | None, typer.Option("--schema", help="the PostgreSQL schema, if any")
    ]

    @audit_app.command("verify")
    def audit_verify(
        *,
        store: StoreOption,
        kek: KekOption,
        schema: SchemaOption = None,
        expected_seq: Annotated[
            int | None, typer.Option(help="a head kept elsewhere: its sequence number")
        ] = None,
        expected_chain: Annotated[
            str | None, typer.Option(help="a head kept elsewhere: its chain value (hex)")
        ] = None,
        from_checkpoint: Annotated[
            bool, typer.Option(help="start at the newest signed checkpoint")
        ] = False,
        retention_days: Annotated[
            int,
            typer.Option(
                min=1,
                help="the shop's audit retention (Guard.open(audit_retention=)): a log that"
                " starts younger than this is reported",
            ),
        ] = 180,
    ) -> None:
        """Recompute the audit chain; exit 1 and name the first bad event if it is broken."""
        expected = None
        if (expected_seq is None) != (expected_chain is None):
            raise typer.BadParameter("give both --expected-seq and --expected-chain")
        if expected_seq is not None and expected_chain is not None:
            expected = pg.AuditHead(expected_seq, expected_chain)
        retention = timedelta(days=retention_days)
        with _open_guard(store, kek, schema, audit_retention=retention) as guard:
            report = guard.audit.verify(expected=expected, from_checkpoint=from_checkpoint)
        if report.ok:
            head = report.head
            where = f"; head {head.seq} {head.chain}" if head is not None else ""
            typer.echo(f"ok: {report.checked} events verified{where}")
            return
        typer.echo(f"BROKEN at event {report.first_bad}: {report.reason}", err=True)
        raise typer.Exit(1)

    @app.command()
    def records(
        *,
        store: StoreOption,
        kek: KekOption,
        schema: SchemaOption = None,
        format: Annotated[str, typer.Option("--format", help="md (for people) or json")] = "md",
        model: Annotated[
            list[str] | None,
            typer.Option("--model", help="module:Class of a PIIModel with purposes= (repeat)"),
        ] = None,
    ) -> None:
        """Print the record of processing built from the store's registers (purposes,
        recipients, assessments) and the models named."""
        if format not in {"md", "json"}:
            raise typer.BadParameter("--format is md or json")
        models = [_load_model(target) for target in model or []]
        with _open_guard(store, kek, schema) as guard:
            found = guard.records.processing(models=models)
            text = (
                json.dumps(found, ensure_ascii=False, indent=2)
                if format == "json"
                else guard.records.markdown(found)
            )
        typer.echo(text, nl=not text.endswith("\n"))

    @audit_app.command("events")
    def audit_events(
        *,
        store: StoreOption,
        kek: KekOption,
        schema: SchemaOption = None,
        actor: Annotated[str | None, typer.Option(help="only this actor's events")] = None,
        action: Annotated[str | None, typer.Option(help="only this action")] = None,
        purpose: Annotated[str | None, typer.Option(help="only this purpose")] = None,
        since: Annotated[str | None, typer.Option(help="from this time (ISO 8601)")] = None,
        until: Annotated[str | None, typer.Option(help="before this time (ISO 8601)")] = None,
    ) -> None:
        """Print matching events as JSON lines, oldest first (pseudonyms, never values)."""
        with _open_guard(store, kek, schema) as guard:
            for event in guard.audit.events(
                actor=actor,
                action=action,
                purpose=purpose,
                since=_moment(since),
                until=_moment(until),
            ):
                line = {**dataclasses.asdict(event), "at": event.at.isoformat()}
                typer.echo(json.dumps(line, ensure_ascii=False, sort_keys=True))

    access_app = typer.Typer(help="Just-in-time grants and the access watch.", no_args_is_help=True)
    app.add_typer(access_app, name="access")
    ByOption = Annotated[
        str, typer.Option("--by", help="who does this (recorded in the audit log)")
    ]

    @access_app.command("grants")
    def access_grants(
        *,
        store: StoreOption,
        kek: KekOption,
        schema: SchemaOption = None,
        actor: Annotated[str | None, typer.Option(help="only this actor's grants")] = None,
        all_grants: Annotated[
            bool, typer.Option("--all", help="expired and revoked grants too")
        ] = False,
    ) -> None:
        """Print grants as JSON lines, oldest first (live ones unless --all)."""
        with _open_guard(store, kek, schema) as guard:
            for grant in guard.access.grants(actor, live=not all_grants):
                line = {
                    key: value.isoformat() if isinstance(value, datetime) else value
                    for key, value in dataclasses.asdict(grant).items()
                }
                typer.echo(json.dumps(line, ensure_ascii=False, sort_keys=True))

    @access_app.command("revoke")
    def access_revoke(
        grant_id: str,
        *,
        by: ByOption,
        store: StoreOption,
        kek: KekOption,
        schema: SchemaOption = None,
    ) -> None:
        """End a grant now; exit 1 if it was not live."""
        with _open_guard(store, kek, schema) as guard:
            ended = guard.access.revoke(grant_id, by=by)
        typer.echo("revoked" if ended else "not live")
        if not ended:
            raise typer.Exit(1)

    @access_app.command("blocked")
    def access_blocked(*, store: StoreOption, kek: KekOption, schema: SchemaOption = None) -> None:
        """Print the actors the access watch stopped, one per line."""
        with _open_guard(store, kek, schema) as guard:
            for actor in guard.watch.blocked():
                typer.echo(actor)

    @access_app.command("reset")
    def access_reset(
        actor: str, *, by: ByOption, store: StoreOption, kek: KekOption, schema: SchemaOption = None
    ) -> None:
        """Let an actor the access watch stopped reveal again; exit 1 if it was not stopped."""
        with _open_guard(store, kek, schema) as guard:
            lifted = guard.watch.reset(actor, by=by)
        typer.echo("reset" if lifted else "not blocked")
        if not lifted:
            raise typer.Exit(1)


def main() -> None:
    """Entry point of the ``piiguard`` console script."""
    if typer is None:  # pragma: no cover - exercised only without the extra
        sys.exit('the piiguard command needs the cli extra: pip install "piiguard[cli]"')
    app()
