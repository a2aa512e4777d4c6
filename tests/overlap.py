"""Running one job several times at once, as overlapping schedules would."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from gatewayz import db

if TYPE_CHECKING:
    from collections.abc import Callable


def run_at_once(job: Callable[[], dict[str, Any]], runs: int) -> list[dict[str, Any]]:
    """Start `runs` calls of `job` together, each in its own thread (so its own database
    connection); their reports. A run that raised leaves its report out."""
    start = threading.Barrier(runs)
    reports: list[dict[str, Any]] = []

    def one_run() -> None:
        start.wait()
        try:
            reports.append(job())
        finally:
            db.close()

    threads = [threading.Thread(target=one_run) for _ in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return reports
