"""`GET /health`: whether this function can reach its database and rate-limit store.

Answers 200 with each dependency's state, or 503 in the error envelope naming what is
down, so a load balancer or a person reading it knows where to look.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gatewayz import __version__, errors
from gatewayz.logs import get_logger

router = APIRouter()


def check() -> dict[str, str]:
    """The state of each dependency: "ok" or why not."""
    return {"database": _database(), "redis": _redis()}


def _database() -> str:
    from gatewayz import db

    try:
        db.ping()
    except errors.MissingConfiguration as exc:
        return exc.message
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the log has the cause
        get_logger().warning("health: database down", extra={"error": type(exc).__name__})
        db.close()
        return "unreachable"
    return "ok"


def _redis() -> str:
    from gatewayz import ratelimit

    try:
        ratelimit.get_store().ping()
    except errors.MissingConfiguration as exc:
        return exc.message
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the log has the cause
        get_logger().warning("health: redis down", extra={"error": type(exc).__name__})
        return "unreachable"
    return "ok"


@router.get(
    "/health", summary="Database and rate-limit store reachable", openapi_extra={"security": []}
)
async def health() -> JSONResponse:
    checks = check()
    down = [name for name, state in checks.items() if state != "ok"]
    if down:
        # The app's handler turns it into the envelope, as for every other error.
        raise errors.ServiceUnavailable(
            f"Unhealthy: {', '.join(down)} {'is' if len(down) == 1 else 'are'} down.",
            metadata={"checks": checks},
        )
    return JSONResponse({"status": "ok", "version": __version__, "checks": checks})
