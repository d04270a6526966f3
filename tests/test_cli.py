"""The piiguard command, driven through typer's test runner."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

import piiguard as pg
from piiguard.cli import app
from piiguard.keys import LocalKEK
from piiguard.testing import allow_test_reveals
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
    # the life of one customer, every step reached
    for step in range(1, 9):
        assert f"{step}. " in result.output
    assert "'receiver': '张**'" in result.output  # what the courier reads
    assert "KeyDestroyed" in result.output  # the pre-erasure copy opens nothing
    assert "unexpected" not in result.output


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


def test_audit_verify_and_events_read_the_log(tmp_path: Path) -> None:
    url, key = f"sqlite:///{tmp_path / 'shop.db'}", tmp_path / "kek.key"
    with pg.Guard.open(url, kek=LocalKEK.generate(key)) as guard:
        allow_test_reveals(guard)
        context = {"table": "customers", "field": "phone", "id": "u1"}
        ciphertext = guard.encrypt("13812345678", context=context, subject="u1")
        guard.decrypt(ciphertext, context=context, actor="cs-7", purpose="testing")
        head = guard.audit.head()
    assert head is not None
    options = ["--store", url, "--kek", str(key)]
    verified = runner.invoke(app, ["audit", "verify", *options])
    assert verified.exit_code == 0, verified.output
    assert verified.output.startswith("ok: 1 events verified")
    shown = runner.invoke(app, ["audit", "events", *options, "--actor", "cs-7"])
    assert shown.exit_code == 0, shown.output
    (line,) = shown.output.splitlines()
    event = json.loads(line)
    assert (event["action"], event["purpose"], event["result"]) == ("decrypt", "testing", "ok")
    assert "13812345678" not in shown.output
    assert "u1" not in shown.output
    tampered = sqlite3.connect(tmp_path / "shop.db")
    tampered.execute("UPDATE piiguard_audit_events SET actor = 'cs-0'")
    tampered.commit()
    tampered.close()
    broken = runner.invoke(
        app,
        [
            "audit",
            "verify",
            *options,
            "--expected-seq",
            str(head.seq),
            "--expected-chain",
            head.chain,
        ],
    )
    assert broken.exit_code == 1
    assert "BROKEN at event 1" in broken.output
    bad_time = runner.invoke(app, ["audit", "events", *options, "--since", "yesterday"])
    assert bad_time.exit_code != 0


def test_access_grants_revoke_blocked_and_reset(tmp_path: Path) -> None:
    from datetime import timedelta

    url, key = f"sqlite:///{tmp_path / 'shop.db'}", tmp_path / "kek.key"
    policy = pg.AccessPolicy([pg.Role("lead", purposes={"testing"}, clear={"phone"}, jit=True)])
    watch = pg.AccessWatch(limits={"*": 0}, block=True, refresh=timedelta(0))
    with pg.Guard.open(url, kek=LocalKEK.generate(key), access=policy, watch=watch) as guard:
        allow_test_reveals(guard)
        grant = guard.access.grant(
            "cs-7", role="lead", ticket="INC-9", approved_by="lead-1", ttl=timedelta(hours=1)
        )
        context = {"table": "customers", "field": "phone", "id": "u1"}
        ciphertext = guard.encrypt("13812345678", context=context)
        with pytest.raises(pg.AccessDenied):
            guard.decrypt(ciphertext, context=context, actor="cs-7", purpose="testing")
    options = ["--store", url, "--kek", str(key)]
    listed = runner.invoke(app, ["access", "grants", *options])
    assert listed.exit_code == 0, listed.output
    (line,) = listed.output.splitlines()
    assert json.loads(line)["id"] == grant.id
    assert json.loads(line)["ticket"] == "INC-9"
    revoked = runner.invoke(app, ["access", "revoke", grant.id, "--by", "lead-1", *options])
    assert (revoked.exit_code, revoked.output.strip()) == (0, "revoked")
    again = runner.invoke(app, ["access", "revoke", grant.id, "--by", "lead-1", *options])
    assert again.exit_code == 1
    assert runner.invoke(app, ["access", "grants", *options]).output == ""
    assert runner.invoke(app, ["access", "grants", "--all", *options]).output.count("\n") == 1
    blocked = runner.invoke(app, ["access", "blocked", *options])
    assert blocked.output.split() == ["cs-7"]
    lifted = runner.invoke(app, ["access", "reset", "cs-7", "--by", "sec-1", *options])
    assert (lifted.exit_code, lifted.output.strip()) == (0, "reset")
    assert runner.invoke(app, ["access", "blocked", *options]).output == ""
    assert runner.invoke(app, ["access", "reset", "cs-7", "--by", "sec-1", *options]).exit_code == 1


def test_audit_verify_takes_the_shop_s_retention(tmp_path: Path) -> None:
    """A shop that keeps its log 90 days prunes at 90 days; the CLI, told so, verifies it,
    and with the default 180 days it says the start of the log is missing within them."""
    from datetime import timedelta

    from piiguard.testing import SettableClock

    url, key = f"sqlite:///{tmp_path / 'shop.db'}", tmp_path / "kek.key"
    clock = SettableClock(datetime.now(UTC) - timedelta(days=120))
    kek = LocalKEK.generate(key)
    with pg.Guard.open(url, kek=kek, clock=clock, audit_retention=timedelta(days=90)) as guard:
        allow_test_reveals(guard)
        context = {"table": "customers", "field": "phone", "id": "u1"}
        ciphertext = guard.encrypt("13812345678", context=context)
        guard.decrypt(ciphertext, context=context, actor="cs-7", purpose="testing")
        clock.set(datetime.now(UTC))
        guard.decrypt(ciphertext, context=context, actor="cs-7", purpose="testing")
        assert guard.audit.prune() == 1
    options = ["--store", url, "--kek", str(key)]
    told = runner.invoke(app, ["audit", "verify", *options, "--retention-days", "90"])
    assert told.exit_code == 0, told.output
    untold = runner.invoke(app, ["audit", "verify", *options])
    assert untold.exit_code == 1
    assert "retention" in untold.output
