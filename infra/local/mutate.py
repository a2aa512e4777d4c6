"""`make mutate`: mutation testing with mutmut over the modules that `[tool.mutmut]` in
pyproject.toml lists, then a summary per module (docs/testing.md explains the results).

mutmut names each mutant after its file's path and switches mutants on by the module name
the tests import, so the package must sit at the top of the tree it runs in. Ours lives in
layers/common/gatewayz, so this script stages a copy of the project in mutants/ with the
package at mutants/gatewayz, and runs mutmut there (mutmut's own copy, with the mutants
compiled in, is mutants/mutants/). The tests use TEST_DATABASE_URL and TEST_REDIS_URL
from the environment, as `make test` does.

    python infra/local/mutate.py                     # every mutant (MUTATE_JOBS workers, default 2)
    python infra/local/mutate.py 'gatewayz.identity.policy.*'  # only these (mutmut's name patterns)

Every run starts from a fresh copy: mutmut's incremental mode (rerunning some mutants
after the tests changed) kept stale test associations here and reported killed mutants
as surviving, so it is not offered.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAGE = ROOT / "mutants"
PACKAGE = ROOT / "layers" / "common" / "gatewayz"
# What the tests read besides the package (tests.pg.ROOT is the stage's top).
COPIED = (
    "tests",
    "functions",
    "infra",
    "layers",
    "docs",
    "template.yaml",
    "pyproject.toml",
    "README.md",
)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
RESULT = re.compile(r"^\s*(?P<name>\S+): (?P<status>.+)$")


def stage() -> None:
    """A fresh copy of the project with the package at the top."""
    shutil.rmtree(STAGE, ignore_errors=True)
    STAGE.mkdir()
    shutil.copytree(PACKAGE, STAGE / "gatewayz", ignore=IGNORED)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, STAGE / name, ignore=IGNORED)
        else:
            shutil.copy2(source, STAGE / name)


def module_of(mutant: str) -> str:
    """`gatewayz.identity.policy.x_require_ip__mutmut_5` -> `gatewayz.identity.policy`."""
    parts = mutant.split(".")
    for i, part in enumerate(parts):
        if part.startswith(("x_", "xǁ")):
            return ".".join(parts[:i])
    return mutant.rsplit(".", 1)[0]


def summary(mutmut: Path) -> str:
    """A table per module, then every mutant that was not killed."""
    listing = subprocess.run(  # noqa: S603 - our own virtualenv's mutmut
        [str(mutmut), "results", "--all", "true"],
        cwd=STAGE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts: dict[str, Counter[str]] = {}
    survivors: list[str] = []
    for line in listing.splitlines():
        match = RESULT.match(line)
        if not match:
            continue
        name, status = match["name"], match["status"].strip()
        counts.setdefault(module_of(name), Counter())[status] += 1
        if status != "killed":
            survivors.append(f"  {name}: {status}")
    rows = [f"{'module':34} {'mutants':>7} {'killed':>7} {'other':>7}"]
    for module, tally in sorted(counts.items()):
        total = sum(tally.values())
        rows.append(
            f"{module:34} {total:7} {tally['killed']:7} {total - tally['killed']:7}"
            + "".join(f"  {status}: {n}" for status, n in sorted(tally.items()) if n)
        )
    if survivors:
        rows += ["", "Not killed (`cd mutants && ../.venv/bin/mutmut show NAME` shows one):"]
        rows += survivors
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    mutmut = ROOT / os.environ.get("VENV", ".venv") / "bin" / "mutmut"
    jobs = os.environ.get("MUTATE_JOBS", "2")
    started = time.monotonic()
    stage()
    run = subprocess.run(  # noqa: S603 - our own virtualenv's mutmut
        [str(mutmut), "run", "--max-children", jobs, *argv], cwd=STAGE, check=False
    )
    if run.returncode != 0:
        print(f"mutate: mutmut run failed (exit {run.returncode})", file=sys.stderr)
        return run.returncode
    table = summary(mutmut)
    minutes = (time.monotonic() - started) / 60
    report = f"{table}\n\nTook {minutes:.1f} minutes with {jobs} workers.\n"
    (STAGE / "summary.txt").write_text(report)
    print("\n" + report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
