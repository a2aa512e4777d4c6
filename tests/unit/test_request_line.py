"""The `request` log line every request writes (docs/operations.md, Logs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
from fastapi import APIRouter
from fastapi.testclient import TestClient
from gatewayz.http import create_app
from gatewayz.logs import get_logger

router = APIRouter()

@router.get("/v1/thing")
async def thing() -> dict[str, str]:
    return {"ok": "yes"}

with TestClient(create_app("probe", [router], health=False)) as client:
    client.get("/v1/thing")
    client.post("/v1/nowhere", json={})
get_logger().info("request", extra={"function": "by-the-logger"})
"""


def _lines(level: str) -> list[dict[str, object]]:
    env = {**os.environ, "LOG_LEVEL": level, "POWERTOOLS_SERVICE_NAME": "gatewayz-probe"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_each_request_writes_one_line_shaped_as_the_loggers() -> None:
    first, second, logged = _lines("INFO")
    assert first["function"] == second["function"] == "probe"
    assert (first["method"], first["path"], first["status"]) == ("GET", "/v1/thing", 200)
    assert (second["method"], second["path"], second["status"]) == ("POST", "/v1/nowhere", 404)
    assert str(first["request_id"]).startswith("req_")
    assert isinstance(first["duration_ms"], float)
    # The same keys, in the same order and format, as a line the logger itself writes.
    mine = {
        k: v
        for k, v in first.items()
        if k not in {"function", "request_id", "method", "path", "status", "duration_ms"}
    }
    theirs = {k: v for k, v in logged.items() if k != "function"}
    assert list(mine) == list(theirs) == ["level", "location", "message", "timestamp", "service"]
    assert (mine["level"], mine["message"], mine["service"]) == (
        "INFO",
        "request",
        "gatewayz-probe",
    )
    assert len(str(mine["timestamp"])) == len(str(theirs["timestamp"]))
    assert str(mine["timestamp"]).endswith("+0000")


def test_above_info_no_line_is_written() -> None:
    assert _lines("WARNING") == []
