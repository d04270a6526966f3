"""Helpers shared by the tests: vectors, canaries, and independent reference algorithms."""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any

import piiguard

VECTORS = Path(__file__).parent / "vectors"

#: Synthetic values that must never appear in reprs, errors, logs or tracebacks.
CANARY_PHONE = "13812345678"
CANARY_ID = "11010519491231002X"
CANARIES = (CANARY_PHONE, CANARY_ID, CANARY_ID[:14], "8613812345678")


def load_vectors(name: str) -> Any:
    """Load one JSON vector file from tests/vectors."""
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def luhn_reference(digits: str) -> bool:
    """Luhn the textbook way (a loop), to check the fast implementation against."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def luhn_complete(partial: str) -> str:
    """Append the check digit that makes ``partial`` Luhn-valid."""
    for check in "0123456789":
        if luhn_reference(partial + check):
            return partial + check
    raise AssertionError("unreachable")


def id_check_char_reference(first17: str) -> str:
    """ISO 7064 MOD 11-2 with the published weights, as GB 11643-1999 writes it."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


def exception_text(error: BaseException) -> str:
    """Everything an error tracker could record of an exception: message, args, chain,
    and the repr of every local of every frame."""
    formatted = traceback.TracebackException.from_exception(error, capture_locals=True)
    return "".join(formatted.format()) + repr(error.args) + str(error)


def assert_no_canary(text: str) -> None:
    """Fail if any canary value appears in ``text``."""
    for canary in CANARIES:
        assert canary not in text, "a canary value leaked"


def piiguard_frames_text(error: BaseException) -> str:
    """The message and the locals of piiguard's own frames (not the test's), rendered."""
    package = str(Path(piiguard.__file__).parent)
    formatted = traceback.TracebackException.from_exception(error, capture_locals=True)
    frames = [
        f"{frame.filename}:{frame.name} {frame.locals}"
        for frame in formatted.stack
        if frame.filename.startswith(package)
    ]
    return str(error) + repr(error.args) + "".join(frames)


class FailingSink:
    """An event sink whose store is down: every record() raises."""

    def record(self, event: object) -> None:
        raise OSError("audit store unreachable")
