"""Scheduled jobs (docs/architecture.md): EventBridge Scheduler sends `{"job": "<name>"}`.

Every job is idempotent, so a retry or an overlapping run does no harm. A job whose
issue has not landed yet reports `not_implemented` instead of pretending to work, and
its schedule stays in template.yaml so deploys need no change when it lands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable

JOB_NAMES = (
    "trial_expiry",
    "key_rotation",
    "hold_sweeper",
    "low_balance_alerts",
    "email_outbox",
    "catalog_refresh",
    "auto_topup",
)


def _hold_sweeper() -> dict[str, Any]:
    from gatewayz.billing import credits
    from gatewayz.chat import idempotency_store

    # Idempotency records outlive their requests as holds do: the same sweep ends both.
    report = credits.release_expired_holds()
    return {**report, "idempotency_records_deleted": idempotency_store.sweep()}


def _key_rotation() -> dict[str, Any]:
    from gatewayz.identity import key_rotation

    return key_rotation.run()


def _auto_topup() -> dict[str, Any]:
    from gatewayz.billing import auto_topup

    return auto_topup.run()


def _email_outbox() -> dict[str, Any]:
    from gatewayz.email import delivery
    from gatewayz.errors import MissingConfiguration

    try:
        return delivery.run()
    except MissingConfiguration as exc:
        # Nothing can be sent until the setting is made; the rows wait in the outbox.
        setting = (exc.metadata or {}).get("setting")
        get_logger().error("e-mail not configured", extra={"setting": setting})
        return {"status": "missing_configuration", "setting": setting}


def _trial_expiry() -> dict[str, Any]:
    from gatewayz.billing import trial_expiry

    return trial_expiry.run()


def _catalog_refresh() -> dict[str, Any]:
    from gatewayz.chat import catalog_refresh

    return catalog_refresh.refresh()


def _low_balance_alerts() -> dict[str, Any]:
    from gatewayz.billing import alerts

    return alerts.run()


JOBS: dict[str, Callable[[], dict[str, Any]]] = {
    "auto_topup": _auto_topup,
    "hold_sweeper": _hold_sweeper,
    "key_rotation": _key_rotation,
    "email_outbox": _email_outbox,
    "trial_expiry": _trial_expiry,
    "low_balance_alerts": _low_balance_alerts,
    "catalog_refresh": _catalog_refresh,
}


class UnknownJob(Exception):
    """The event names no job: a misconfigured schedule (retried, then dead-lettered)."""


def run(event: dict[str, Any]) -> dict[str, Any]:
    """Run the job the event names and return its report.

    Raises:
        UnknownJob: the event has no known `job`.
    """
    name = event.get("job") if isinstance(event, dict) else None
    if name not in JOB_NAMES:
        raise UnknownJob(f"unknown job {name!r}; expected one of {', '.join(JOB_NAMES)}")
    job = JOBS.get(name)
    if job is None:
        get_logger().warning("job not implemented yet", extra={"job": name})
        return {"job": name, "status": "not_implemented"}
    report = {"job": name, "status": "ok", **job()}
    # A run that did nothing logs at DEBUG: the one-minute jobs would otherwise bury the
    # log (and `make dev`'s request log) in idle reports.
    did_work = report["status"] != "ok" or any(
        isinstance(v, int) and not isinstance(v, bool) and v for v in report.values()
    )
    logger = get_logger()
    (logger.info if did_work else logger.debug)("job done", extra=report)
    return report
