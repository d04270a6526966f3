"""The README's one-screen example runs as written (issue 10: it raised NameError)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Executed in an empty directory, as a new user would paste it (Guard.open() makes
    ./.piiguard there)."""
    found = re.search(r"## In one screen\n\n```python\n(.*?)```", README.read_text(), re.S)
    assert found is not None
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}
    exec(compile(found.group(1), str(README), "exec"), namespace)  # noqa: S102 - our own README
    guard = namespace["guard"]
    assert (tmp_path / ".piiguard").is_dir()
    guard.close()  # type: ignore[attr-defined]
