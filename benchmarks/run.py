"""Run every benchmark suite in one process and print each ratio against its bar.

    make bench                    # or: python benchmarks/run.py [suite ...]

Exit status 0 whatever the numbers: benchmarks inform, tests decide.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.suites import SUITES


def main(argv: list[str]) -> None:
    """Run the named suites (all by default) and print one row per ratio."""
    chosen = argv or list(SUITES)
    print(f"python {platform.python_version()} on {platform.machine()}; best of interleaved rounds")
    print(f"{'ratio':<58} {'ours':>13} {'baseline':>13} {'ratio':>8} {'bar':>8}")
    for name in chosen:
        for ratio in SUITES[name]():
            print(ratio.row(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
