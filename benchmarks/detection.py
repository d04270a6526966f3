"""Detection quality and speed on the labelled corpus (benchmarks/detection_corpus.py).

    python benchmarks/run.py detection_quality

Precision and recall per kind, by exact span and by overlap; recall per way of writing; the
share of hard negatives flagged; scan speed in MB/s of text and against one naive regex pass.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import piiguard as pg
from benchmarks._harness import Case, Ratio, best_ns
from benchmarks.detection_corpus import corpus
from benchmarks.naive import naive_scan

__all__ = ["Quality", "detection_quality", "measure"]

Found = list[tuple[str, int, int]]

#: The goals issue 14 sets, per kind: (precision, recall).
GOALS = {"person_name": (0.90, 0.90), "address": (0.90, 0.90)}
_PATTERN_GOAL = (0.98, 0.99)


@dataclass(frozen=True)
class Quality:
    """One printed line of the quality report."""

    label: str
    precision: float | None
    recall: float | None
    support: int
    goal: tuple[float, float] | None = None

    def row(self) -> str:
        def show(value: float | None) -> str:
            return "   -" if value is None else f"{value:.3f}"

        verdict = ""
        if self.goal is not None and self.precision is not None and self.recall is not None:
            met = self.precision >= self.goal[0] and self.recall >= self.goal[1]
            verdict = "ok" if met else "MISSED"
        goal = f"P>={self.goal[0]} R>={self.goal[1]}" if self.goal else ""
        return (
            f"{self.label:<58} P {show(self.precision)}  R {show(self.recall)}  "
            f"n={self.support:<6} {goal} {verdict}"
        )


class _Label(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def form(self) -> str: ...


class _Sample(Protocol):
    """A labelled text, from either corpus."""

    @property
    def text(self) -> str: ...
    @property
    def labels(self) -> Sequence[_Label]: ...
    @property
    def negatives(self) -> Sequence[tuple[str, int, int]]: ...


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def measure(samples: Sequence[_Sample], scanner: Callable[[str], Found]) -> list[Quality]:
    """Precision and recall per kind (exact and overlap), recall per form, hard negatives."""
    true_exact: Counter[str] = Counter()
    true_overlap: Counter[str] = Counter()
    reported: Counter[str] = Counter()
    reported_right: Counter[str] = Counter()
    planted: Counter[str] = Counter()
    form_found: Counter[str] = Counter()
    form_planted: Counter[str] = Counter()
    negatives = negatives_flagged = 0
    for sample in samples:
        found = scanner(sample.text)
        for kind, start, end in found:
            reported[kind] += 1
            if any(
                label.kind == kind and _overlaps((start, end), (label.start, label.end))
                for label in sample.labels
            ):
                reported_right[kind] += 1
        for label in sample.labels:
            planted[label.kind] += 1
            form_planted[f"{label.kind}/{label.form}"] += 1
            span = (label.start, label.end)
            if (label.kind, *span) in found:
                true_exact[label.kind] += 1
                form_found[f"{label.kind}/{label.form}"] += 1
            if any(kind == label.kind and _overlaps(span, (s, e)) for kind, s, e in found):
                true_overlap[label.kind] += 1
        for _, start, end in sample.negatives:
            negatives += 1
            negatives_flagged += any(_overlaps((start, end), (s, e)) for _, s, e in found)
    rows = []
    for kind in sorted(planted.keys() | reported.keys()):
        goal = GOALS.get(kind, _PATTERN_GOAL)
        exact_precision = _share(true_exact[kind], reported[kind])
        rows.append(
            Quality(
                f"{kind}: exact spans",
                exact_precision,
                _share(true_exact[kind], planted[kind]),
                planted[kind],
                goal,
            )
        )
        rows.append(
            Quality(
                f"{kind}: overlap",
                _share(reported_right[kind], reported[kind]),
                _share(true_overlap[kind], planted[kind]),
                planted[kind],
            )
        )
    rows.extend(
        Quality(f"  recall of {form}", None, _share(form_found[form], form_planted[form]),
                form_planted[form])
        for form in sorted(form_planted)
    )  # fmt: skip
    rows.append(
        Quality("hard negatives flagged (share; goal <= 0.005)", None,
                _share(negatives_flagged, negatives), negatives)
    )  # fmt: skip
    return rows


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _pg_scanner(**options: object) -> Callable[[str], Found]:
    def found(text: str) -> Found:
        return [(f.kind, f.start, f.end) for f in pg.scan(text, **options)]  # type: ignore[arg-type]

    return found


def _speed(texts: Iterable[str], scanner: Callable[[str], object]) -> float:
    """MB (UTF-8) of text scanned per second, best of three passes."""
    texts = list(texts)
    size = sum(len(text.encode()) for text in texts) / 1e6
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for text in texts:
            scanner(text)
        best = min(best, time.perf_counter() - started)
    return size / best


def detection_quality() -> list[Quality | Ratio]:
    """The report: quality per kind, then speed."""
    from benchmarks.detection_heldout import corpus as independent_corpus

    samples = corpus(6000)
    rows: list[Quality | Ratio] = [Quality("-- our corpus (6,000 samples)", None, None, 0)]
    rows += measure(samples, _pg_scanner())
    rows.append(Quality("-- the independent corpus (6,000 samples)", None, None, 0))
    rows += measure(independent_corpus(6000, seed=1), _pg_scanner())
    texts = [sample.text for sample in samples]
    joined = "\n".join(texts[:400])
    numbers_only = pg.PATTERN_KINDS
    times = best_ns(
        {
            "naive": Case("f(t)", {"f": naive_scan, "t": joined}),
            "numbers": Case("f(t, kinds=k)", {"f": pg.scan, "t": joined, "k": numbers_only}),
        },
        number=3,
        rounds=7,
    )
    rows.append(
        Ratio("scan without names/addresses / naive regex", times["numbers"], times["naive"], 2.0)
    )
    all_speed = _speed(texts[:2000], pg.scan)
    rows.append(Quality(f"scan, every kind: {all_speed:.2f} MB/s (goal >= 2)", None, None, 2000))
    return rows
