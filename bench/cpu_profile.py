"""Where the chat function's CPU goes, as the CPU saw it (bench/README.md).

A cProfile counts calls and slows each by about the same, so it inflates code made of
many small calls; `perf` samples the CPU instead. This script runs `bench/inprocess.py`
(the chat function's ASGI app in process, real PostgreSQL and Redis, the fake
upstream), waits for its warm-up to end, then samples it with `perf record` (`cpu-clock`,
DWARF call graphs) while it serves. Python 3.12+'s perf trampoline
(`PYTHONPERFSUPPORT=1`) names each Python frame, so every sample is charged to the
Python function that was running (with whatever C it had called: a syscall, a C
extension, the interpreter), or, when no Python frame was running, to the machine code's
file (the kernel, uvloop's loop). It prints the shares by where the code lives (the
gateway, each library, the standard library) and the top functions.

Run: `.venv/bin/python bench/cpu_profile.py [--stream] [-n 1500]` (needs `perf`).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PY_FRAME = re.compile(r"py::(?P<name>.+?):(?P<path>.+?)\+0x")
_OBJECT = re.compile(r"\((?P<object>[^()]*)\)$")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=1500, help="per round")
    parser.add_argument("--rounds", type=int, default=2, help="sampled rounds")
    parser.add_argument("--stream", action="store_true", help="streamed completions")
    parser.add_argument("--frequency", type=int, default=499, help="samples a second")
    parser.add_argument("--top", type=int, default=40, help="functions to list")
    args = parser.parse_args()
    if shutil.which("perf") is None:
        print("perf is not installed", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="gatewayz-perf-") as tmp:
        data = Path(tmp) / "perf.data"
        _record(args, data)
        script = subprocess.run(
            ["perf", "script", "-i", str(data)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    samples = _samples(script)
    if not samples:
        print("perf recorded no samples", file=sys.stderr)
        return 1
    _report(samples, args.top)
    return 0


def _record(args: argparse.Namespace, data: Path) -> None:
    """Run the in-process bench; sample it from the end of its warm-up to its exit."""
    command = [
        sys.executable, str(ROOT / "bench" / "inprocess.py"),
        "-n", str(args.requests), "--rounds", str(args.rounds + 1),
        *(["--stream"] if args.stream else []),
    ]  # fmt: skip
    bench = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env=os.environ | {"PYTHONPERFSUPPORT": "1"}
    )
    assert bench.stdout is not None
    perf = None
    for line in bench.stdout:
        print(line, end="")
        if perf is None and line.startswith("round 0"):  # warmed up, one round run
            perf = subprocess.Popen(
                ["perf", "record", "-q", "-F", str(args.frequency), "-e", "cpu-clock",
                 "--call-graph", "dwarf,32768", "-p", str(bench.pid), "-o", str(data)],
            )  # fmt: skip
    bench.wait()
    if perf is not None:
        perf.wait()  # perf stops when the process it follows exits


def _samples(script: str) -> list[list[str]]:
    """Each sample's frames, innermost first."""
    return [
        [line.strip() for line in block.splitlines()[1:] if line.strip()]
        for block in script.split("\n\n")
        if block.strip()
    ]


def _where(path: str) -> str:
    if "/gatewayz/" in path:  # by module: gatewayz.adb, gatewayz.chat, ...
        return "gatewayz." + path.split("/gatewayz/")[1].split("/")[0].removesuffix(".py")
    if "/functions/" in path:
        return "gatewayz functions"
    if "site-packages/" in path:
        return path.split("site-packages/")[1].split("/")[0]
    return "standard library"


def _report(samples: list[list[str]], top: int) -> None:
    places: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    for frames in samples:
        python = next((m for f in frames if (m := _PY_FRAME.search(f))), None)
        if python is not None:
            where = _where(python["path"])
            functions[f"{python['name']} ({Path(python['path']).name}, {where})"] += 1
        else:
            leaf = _OBJECT.search(frames[0]) if frames else None
            where = "no Python frame: " + (Path(leaf["object"]).name if leaf else "?")
        places[where] += 1
    total = len(samples)
    print(f"\n{total} samples; share of the CPU by where the running Python code lives")
    for where, count in places.most_common():
        if count / total >= 0.002:
            print(f"  {100 * count / total:5.1f} %  {where}")
    print(f"\nthe {top} functions with the most samples (their own code and the C it called)")
    for name, count in functions.most_common(top):
        print(f"  {100 * count / total:5.1f} %  {name}")


if __name__ == "__main__":
    sys.exit(main())
