"""The ``piiguard`` command: a demo, and scanning, redacting and inventorying from a shell.

Needs the ``cli`` extra (typer, rich): ``pip install "piiguard[cli]"``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

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
        """Show validation, masking and detection on a sample customer and order note."""
        _demo(Console())

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


def main() -> None:
    """Entry point of the ``piiguard`` console script."""
    if typer is None:  # pragma: no cover - exercised only without the extra
        sys.exit('the piiguard command needs the cli extra: pip install "piiguard[cli]"')
    app()
