"""docs/api.md renders every public name: each name of ``piiguard.__all__`` (and of the
integrations and key providers) lives in a module the reference renders, so the strict docs
build checks its signature and docstring."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import piiguard
import piiguard.integrations.sqlalchemy
import piiguard.keys

API = Path(__file__).resolve().parent.parent / "docs" / "api.md"
RENDERED = set(re.findall(r"^::: ([\w.]+)$", API.read_text(encoding="utf-8"), re.MULTILINE))


def _documented(module: object, names: list[str]) -> list[str]:
    missing = []
    for name in names:
        value = getattr(module, name)
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue  # constants and type aliases are described where they are used
        if value.__module__ not in RENDERED:
            missing.append(f"{name} ({value.__module__})")
    return missing


def test_every_public_class_and_function_is_rendered() -> None:
    assert _documented(piiguard, piiguard.__all__) == []
    assert _documented(piiguard.keys, piiguard.keys.__all__) == []
    sqlalchemy = piiguard.integrations.sqlalchemy
    assert _documented(sqlalchemy, sqlalchemy.__all__) == []
    import piiguard.integrations.django as django_integration

    assert _documented(django_integration, django_integration.__all__) == []


def test_every_rendered_module_exists() -> None:
    import importlib

    for module in RENDERED:
        importlib.import_module(module)
