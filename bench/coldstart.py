"""Cold start (bench/README.md): import time of each function's handler vs FastAPI alone, and
the unzipped size of the common layer.

Each sample is a fresh interpreter that times only the import (interpreter start-up is
the same for both and not ours to cut). Run: `.venv/bin/python bench/coldstart.py`.
`--instructions` counts each import's instructions instead (valgrind's callgrind, one
run each, less an interpreter that imports nothing): the same ratio, which this
machine's speed, moving by a third from one minute to the next, does not move.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GROUPS = [
    "chat",
    "images",
    "keys",
    "billing",
    "history",
    "referrals",
    "coupons",
    "webhooks",
    "scheduled",
]
BUDGET_RATIO = 1.2  # DESIGN: any function's import at most 1.2 times FastAPI's
LAYER_BUDGET_MB = 60

TIMER = """
import sys, time
sys.path.insert(0, sys.argv[1])
start = time.perf_counter()
{statement}
print(time.perf_counter() - start)
"""


def once(statement: str, path: str) -> float:
    """Seconds `statement` takes in a fresh interpreter."""
    code = TIMER.format(statement=statement)
    out = subprocess.run(
        [sys.executable, "-c", code, path], check=True, capture_output=True, text=True
    )
    return float(out.stdout)


def measure(subjects: dict[str, tuple[str, str]], runs: int) -> dict[str, float]:
    """Median import time per subject. Subjects are interleaved run by run, so a busy
    moment of the machine slows all of them alike instead of skewing one."""
    for statement, path in subjects.values():
        once(statement, path)  # warm-up: compile .pyc files
    times: dict[str, list[float]] = {name: [] for name in subjects}
    for _ in range(runs):
        for name, (statement, path) in subjects.items():
            times[name].append(once(statement, path))
    return {name: statistics.median(values) for name, values in times.items()}


def instructions(statement: str, path: str) -> int:
    """Instructions a fresh interpreter runs for `statement` and its start-up (callgrind)."""
    code = f"import sys; sys.path.insert(0, {path!r}); {statement}"
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-c", code],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no count from callgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def count(subjects: dict[str, tuple[str, str]]) -> dict[str, float]:
    """Instructions of each subject's import, the interpreter's own start-up taken off."""
    for statement, path in subjects.values():
        once(statement, path)  # compile .pyc files first, as measure() does
    start_up = instructions("pass", str(ROOT))
    return {name: instructions(*subject) - start_up for name, subject in subjects.items()}


def layer_size_mb() -> tuple[float, str]:
    """Unzipped size of the built layer: `sam build`'s output if present, else the same
    build (layers/common/Makefile, which sam build runs) into a temporary directory."""
    built = ROOT / ".aws-sam" / "build" / "CommonLayer"
    if built.is_dir():
        return _size(built) / 2**20, "sam build output (.aws-sam/build/CommonLayer)"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["make", "-s", "-C", str(ROOT / "layers/common"), "build-CommonLayer",
             f"ARTIFACTS_DIR={tmp}", f"PIP={sys.executable} -m pip"],
            check=True,
        )  # fmt: skip
        return _size(Path(tmp)) / 2**20, "layers/common/Makefile's build, as sam build runs it"


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--instructions", action="store_true", help="count, do not time")
    args = parser.parse_args()

    subjects = {"fastapi (baseline)": ("import fastapi", str(ROOT))}
    for group in GROUPS:
        subjects[f"functions/{group}/app.py"] = ("import app", str(ROOT / "functions" / group))
    if args.instructions:
        found, unit, scale = count(subjects), "M instr", 1e-6
        print(f"python {sys.version.split()[0]}, instructions of each import (callgrind)\n")
    else:
        found, unit, scale = measure(subjects, args.runs), "ms", 1000
        print(f"python {sys.version.split()[0]}, {args.runs} runs each, median import time\n")
    baseline = found["fastapi (baseline)"]
    print(f"| {'import':<30} | {unit:>7} | {'x FastAPI':>9} |")
    print(f"|{'-' * 32}|{'-' * 9}|{'-' * 11}|")
    worst = 0.0
    for name, took in found.items():
        ratio = took / baseline
        worst = max(worst, ratio)
        print(f"| {name:<30} | {took * scale:7.1f} | {ratio:9.2f} |")
    size, how = layer_size_mb()
    print(f"\nworst ratio {worst:.2f} (budget {BUDGET_RATIO}); common layer {size:.1f} MB ({how}; "
          f"budget {LAYER_BUDGET_MB} MB)")  # fmt: skip
    return 0 if worst <= BUDGET_RATIO and size <= LAYER_BUDGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
