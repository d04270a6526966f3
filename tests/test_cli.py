"""The piiguard command, driven through typer's test runner."""

from __future__ import annotations

from typer.testing import CliRunner

from piiguard.cli import app
from tests.helpers import CANARY_ID, CANARY_PHONE

runner = CliRunner()


def test_demo_shows_masked_values_only() -> None:
    """The demo validates, masks and redacts, and prints no full value."""
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "138****5678" in result.output
    assert "1****************X" in result.output
    assert "invalid cn_resident_id" in result.output
    assert CANARY_PHONE not in result.output
    assert CANARY_ID not in result.output


def test_scan_prints_kind_and_span() -> None:
    """scan reads standard input and prints one finding a line."""
    result = runner.invoke(app, ["scan"], input=f"call {CANARY_PHONE}\n")
    assert result.exit_code == 0
    assert result.output == "phone\t5\t16\n"


def test_redact_masks_standard_input() -> None:
    """redact prints the text with findings masked."""
    result = runner.invoke(app, ["redact"], input=f"call {CANARY_PHONE}\n")
    assert result.output == "call 138****5678\n"


def test_inventory_lists_a_model() -> None:
    """inventory imports module:Class and lists its PII fields."""
    result = runner.invoke(app, ["inventory", "piiguard.cli:DemoCustomer"])
    assert result.exit_code == 0
    assert "cn_resident_id" in result.output
    assert "financial" in result.output


def test_inventory_refuses_what_is_not_a_model() -> None:
    """A target that names no PIIModel is a usage error."""
    result = runner.invoke(app, ["inventory", "piiguard.cli:main"])
    assert result.exit_code == 2
