"""The privacy waybill example (examples/privacy_waybill.py) runs as documented: the courier
reads the masked name, the address and a token, never the phone."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from tests.helpers import CANARY_PHONE

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "privacy_waybill.py"


def test_the_privacy_waybill_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    printed = runpy.run_path(str(EXAMPLE))["main"]()
    assert printed["receiver"] == "张**"
    assert printed["address"] == "北京市朝阳区建国路88号"
    assert str(printed["phone"]).startswith("vt_")
    out = capsys.readouterr().out
    assert CANARY_PHONE not in out
    assert "ending 5678" in out
