"""Timing harness: interleaved rounds, best of each, ratios against a baseline.

Shared machines are noisy, so each case is timed in many short rounds, cases interleaved
round by round (drift hits all alike), and the best round is kept: the best is the run least
disturbed by other work, which is what a ratio between two pieces of code should compare.
"""

from __future__ import annotations

import timeit
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Case:
    """One timed statement: ``stmt`` run with ``namespace`` as its globals."""

    stmt: str
    namespace: Mapping[str, Any]


def best_ns(cases: Mapping[str, Case], *, number: int, rounds: int = 15) -> dict[str, float]:
    """Best nanoseconds per run of each case over interleaved rounds."""
    timers = {
        name: timeit.Timer(case.stmt, globals=dict(case.namespace)) for name, case in cases.items()
    }
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(rounds):
        for name, timer in timers.items():
            best[name] = min(best[name], timer.timeit(number) / number * 1e9)
    return best


@dataclass(frozen=True)
class Ratio:
    """A measured ratio and the bar it must stay under (None: reported, no bar)."""

    label: str
    ours_ns: float
    baseline_ns: float
    bar: float | None
    unbarred: str = "peer"  # what a row without a bar is: a peer's ratio, or shown for "info"

    @property
    def value(self) -> float:
        return self.ours_ns / self.baseline_ns

    @property
    def met(self) -> bool | None:
        return None if self.bar is None else self.value <= self.bar

    def row(self) -> str:
        verdict = {True: "ok", False: "MISSED", None: self.unbarred}[self.met]
        bar = f"<= {self.bar:.3g}x" if self.bar is not None else ""
        return (
            f"{self.label:<58} {self.ours_ns:>10.0f} ns {self.baseline_ns:>10.0f} ns "
            f"{self.value:>7.2f}x {bar:>8} {verdict}"
        )
