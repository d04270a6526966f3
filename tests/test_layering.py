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
    "seals": set(),
    "events": {"errors"},
    "validate": {"errors"},
    "kinds": {"errors", "validate"},
    "masking": {"errors", "kinds", "validate"},
    "detect": {"errors", "kinds", "validate", "masking"},
    "fields": {"errors", "kinds", "validate", "masking"},
    "store": {"errors"},
    "keys": {"errors"},
    "settings": {"errors", "keys"},
    "aio": {"errors"},
    "crypto": {"errors", "events", "keys", "store"},
    "tokens": {"errors", "crypto", "store", "events", "kinds", "validate"},
    "consent": {"errors", "kinds", "validate", "store"},
    "subjects": {"errors", "store"},
    "retention": {"errors", "store", "subjects"},
    "audit": {
        "errors",
        "events",
        "seals",
        "store",
        "kinds",
        "validate",
        "masking",
        "detect",
        "fields",
    },
    "logging": {"errors", "kinds", "validate", "masking", "detect", "fields"},
    "sharing": {
        "errors",
        "events",
        "kinds",
        "validate",
        "masking",
        "fields",
        "consent",
        "seals",
        "store",
    },
    "records": {
        "errors",
        "kinds",
        "validate",
        "masking",
        "fields",
        "consent",
        "retention",
        "sharing",
        "seals",
        "store",
    },
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
        "audit",
        "kinds",
        "masking",
        "sharing",
        "records",
        "settings",
        "aio",
    },
    "integrations": {"errors", "events", "guard", "kinds", "masking"},
    "testing": {"errors", "events", "guard", "keys", "consent", "kinds"},
    "cli": {"*"},
    "demo": {"*"},
}


def _part(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0].removesuffix(".py")


def _imports(path: Path) -> list[str]:
    """Every piiguard module ``path`` imports, dotted; ``from piiguard import x`` counts as
    importing ``piiguard.x`` (a part) or the package root ``piiguard`` (anything else)."""
    parts_here = {p.name.removesuffix(".py") for p in SRC.iterdir()}
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            if node.module == "piiguard":
                found += [
                    f"piiguard.{alias.name}" if alias.name in parts_here else "piiguard"
                    for alias in node.names
                ]
            elif node.module and node.module.startswith("piiguard."):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("piiguard")]
    return found


def _imported_parts(path: Path) -> set[str]:
    return {
        module.split(".")[1] if "." in module else "<package root>" for module in _imports(path)
    }


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
    """The command and the framework integrations are leaves: nothing depends on them (the
    demo is the command's own walk-through: it may use them, and only the command uses it)."""
    for path in MODULES:
        for leaf in ("cli", "integrations", "testing", "demo"):
            if _part(path) != leaf and not (_part(path) == "demo" and leaf != "cli"):
                assert leaf not in _imported_parts(path) or (
                    leaf == "demo" and _part(path) == "cli"
                ), path


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(SRC)))
def test_private_modules_stay_in_their_part(path: Path) -> None:
    """A module whose name starts with ``_`` is imported only from its own part, and
    ``crypto/hazmat/`` (raw primitives) only from ``crypto/``."""
    part = _part(path)
    for module in _imports(path):
        names = module.split(".")[1:]
        if any(name.startswith("_") for name in names):
            assert names[0] == part, f"{module} is private to {names[0]}/"
        if "hazmat" in names:
            assert part == "crypto", f"{module} is for crypto/ only"


def test_the_package_root_is_imported_by_no_module() -> None:
    """``from piiguard import X`` inside the package would import every part at once."""
    for path in MODULES:
        if _part(path) not in ("cli", "demo"):
            assert "<package root>" not in _imported_parts(path), path


#: DESIGN §1's import directions, as written there ("A -> B: A may import B"); parts not built
#: yet (audit, sharing, records) are left out.
DESIGN_DIRECTIONS = (
    "masking, detect, fields -> kinds, validate; fields -> masking; crypto -> keys, store; "
    "tokens -> crypto, store; consent, retention -> store; subjects -> store; "
    "guard -> crypto, tokens, consent, retention, subjects; integrations, cli -> guard"
)


def test_the_table_allows_what_design_section_1_draws() -> None:
    """Every direction DESIGN §1 draws is allowed here, and what it forbids is not."""
    for rule in DESIGN_DIRECTIONS.split("; "):
        importers, imported = (side.split(", ") for side in rule.split(" -> "))
        for importer in importers:
            allowed = ALLOWED[importer]
            assert "*" in allowed or set(imported) <= allowed, rule
    for pure in ("masking", "detect"):  # "never import crypto or store: pure functions"
        assert not {"crypto", "store", "keys"} & ALLOWED[pure]
    assert not {"consent", "retention", "tokens", "crypto"} & ALLOWED["subjects"]
