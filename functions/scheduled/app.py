"""The scheduled function: EventBridge Scheduler jobs (docs/architecture.md). No HTTP."""

from __future__ import annotations

from typing import Any

from gatewayz import jobs


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return jobs.run(event)
