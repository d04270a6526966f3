"""The README's one-screen example runs as written (issue 10: it raised NameError)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import structlog

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Executed in an empty directory, as a new user would paste it (Guard.open() makes
    ./.piiguard there)."""
    found = re.search(r"## In one screen\n\n```python\n(.*?)```", README.read_text(), re.S)
    assert found is not None
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}
    exec(compile(found.group(1), str(README), "exec"), namespace)  # noqa: S102 - our own README
    structlog.reset_defaults()  # the example configures structlog for the whole process
    guard = namespace["guard"]
    assert (tmp_path / ".piiguard").is_dir()
    report = guard.audit.verify()  # type: ignore[attr-defined]
    assert report.ok
    guard.close()  # type: ignore[attr-defined]


def test_the_storage_docs_name_every_table() -> None:
    """docs/encryption.md lists the tables piiguard keeps, all of them and no others."""
    from piiguard.store._schema import Tables

    docs = (Path(__file__).parent.parent / "docs" / "encryption.md").read_text(encoding="utf-8")
    section = docs.split("## Storage", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(piiguard_[a-z_]+)`", section))
    assert named == {table.name for table in Tables(None).metadata.sorted_tables}
    count = len(named)
    words = {21: "twenty-one", 22: "twenty-two", 23: "twenty-three", 24: "twenty-four"}
    assert f"keeps {words.get(count, count)} tables" in section
