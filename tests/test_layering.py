"""Imports run the way DESIGN §1 draws them; a module that breaks the direction fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "piiguard"

# part -> the piiguard parts it may import (besides itself). Parts not yet built are listed
# so that the rule is in place the day they arrive.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "events": set(),
    "validate": {"errors"},
    "kinds": {"errors", "validate"},
    "masking": {"errors", "kinds", "validate"},
    "detect": {"errors", "kinds", "validate", "masking"},
    "fields": {"errors", "kinds", "validate", "masking"},
    "store": {"errors"},
    "keys": {"errors"},
    "crypto": {"errors", "events", "keys", "store"},
    "tokens": {"errors", "crypto", "store", "events", "kinds", "validate"},
    "consent": {"errors", "kinds", "validate", "store"},
    "subjects": {"errors", "store"},
    "retention": {"errors", "store", "subjects"},
    "guard": {
        "errors",
        "events",
        "keys",
        "store",
        "crypto",
        "tokens",
        "consent",
        "retention",
        "subjects",
    },
    "integrations": {"errors", "guard"},
    "testing": {"errors", "events", "guard", "keys"},
    "cli": {"*"},
}


def _part(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0].removesuffix(".py")


def _imported_parts(path: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("piiguard."):
            parts.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            parts.update(
                alias.name.split(".")[1]
                for alias in node.names
                if alias.name.startswith("piiguard.")
            )
    return parts


MODULES = sorted(
    path for path in SRC.rglob("*.py") if path.name != "__init__.py" or path.parent != SRC
)


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(SRC)))
def test_imports_follow_the_design(path: Path) -> None:
    """Each module imports only the parts its part may depend on."""
    part = _part(path)
    allowed = ALLOWED.get(part)
    assert allowed is not None, f"{part} has no entry in the layering table"
    if "*" in allowed:
        return
    assert _imported_parts(path) - allowed - {part} == set()


def test_nothing_imports_the_cli_or_the_integrations() -> None:
    """The command and the framework integrations are leaves: nothing depends on them."""
    for path in MODULES:
        for leaf in ("cli", "integrations", "testing"):
            if _part(path) != leaf:
                assert leaf not in _imported_parts(path), path
