"""The public surface: every __all__ name resolves, nothing private leaks."""

from __future__ import annotations

import importlib

import pytest

import piiguard

PUBLIC_MODULES = [
    "piiguard",
    "piiguard.errors",
    "piiguard.kinds",
    "piiguard.fields",
    "piiguard.masking",
    "piiguard.detect",
    "piiguard.validate",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_exported_name_resolves(name: str) -> None:
    """Each name in a public module's __all__ exists, and none is private."""
    module = importlib.import_module(name)
    for exported in module.__all__:
        assert hasattr(module, exported), exported
        assert not exported.startswith("_") or exported == "__version__"


def test_package_exports_the_design_names() -> None:
    """The names DESIGN §3 uses for fields, masking and detection are in piiguard.__all__."""
    for name in (
        "PIIModel",
        "PIIStr",
        "Phone",
        "Email",
        "PersonName",
        "CNResidentID",
        "BankCard",
        "Address",
        "inventory",
        "mask",
        "mask_model",
        "mask_many",
        "scan",
        "redact",
        "scan_many",
        "MaskingPolicy",
        "KeepEnds",
        "PiiGuardError",
        "InvalidPII",
    ):
        assert name in piiguard.__all__


def test_all_is_unique() -> None:
    """__all__ lists each name once."""
    assert len(piiguard.__all__) == len(set(piiguard.__all__))
