"""The scheduled jobs under `gatewayz dev` (docs/operations.md, the local outbox).

In AWS, EventBridge Scheduler invokes the scheduled function; locally one thread runs
the same jobs through the same entry point (`jobs.run`) on a timer: `email_outbox`
every few seconds (so the local outbox fills as you click), the others at their
template.yaml rates. A job that fails is logged and runs again at its next turn;
`stop()` ends the thread between jobs.
"""

from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING, Any

from gatewayz import jobs
from gatewayz.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from gatewayz.dev.samtemplate import Schedule

LOCAL_INTERVALS_S = {"email_outbox": 5.0}
DAILY_S = 24 * 3600.0  # a cron schedule runs once a day locally
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


def interval_s(expression: str) -> float:
    """Seconds between runs of a `rate(...)` expression; a day for `cron(...)`."""
    found = _RATE.fullmatch(expression.strip())
    if found is None:
        return DAILY_S
    return float(int(found[1]) * _UNIT_S[found[2].rstrip("s")])


def intervals(schedules: Iterable[Schedule]) -> dict[str, float]:
    """Each job's local interval: the template's rate, shortened where waiting helps nobody."""
    return {s.job: LOCAL_INTERVALS_S.get(s.job, interval_s(s.expression)) for s in schedules}


class JobTimer:
    """Runs each job at start, then every `intervals[job]` seconds, in one daemon thread."""

    def __init__(
        self,
        intervals: Mapping[str, float],
        run: Callable[[dict[str, Any]], dict[str, Any]] = jobs.run,
    ) -> None:
        self.intervals = dict(intervals)
        self.runs: dict[str, int] = dict.fromkeys(self.intervals, 0)
        self.failures: dict[str, int] = dict.fromkeys(self.intervals, 0)
        self._run = run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gatewayz-jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Ask the thread to stop after the job it is running; whether it ended in time."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        due = dict.fromkeys(self.intervals, time.monotonic())
        while not self._stop.is_set():
            name = min(due, key=due.__getitem__, default=None)
            if name is None:
                return
            if self._stop.wait(max(due[name] - time.monotonic(), 0)):
                return
            self._run_one(name)
            due[name] = time.monotonic() + self.intervals[name]

    def _run_one(self, name: str) -> None:
        try:
            self._run({"job": name})
        except Exception:  # noqa: BLE001 - a failing job must not stop the others or the server
            # It runs again at its next turn, as the scheduler would retry it.
            self.failures[name] += 1
            get_logger().exception("local job failed", extra={"job": name})
        finally:
            self.runs[name] += 1
