"""The chat function pays its cold path when its server starts (the Lambda INIT phase
behind the Web Adapter), not on the first request: importing it stays lean, starting it
loads the request path and opens the stores, and a store that is down does not stop
it from starting. Each case runs in a fresh interpreter, as a new sandbox would."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.pg import ROOT

# Imports the chat function, reports what is loaded, starts its app's lifespan as uvicorn
# does, reports again, then stops it.
PROBE = """
import asyncio, gc, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("chat_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
WATCHED = ["gatewayz.chat.completions", "gatewayz.chat.relay", "gatewayz.chat.provider_http",
           "psycopg", "aws_lambda_powertools.logging"]

def report():
    from gatewayz import db
    from gatewayz.chat import catalog
    conn = getattr(db._local, "conn", None)
    return {"loaded": [name for name in WATCHED if name in sys.modules],
            "database": conn is not None and not conn.closed,
            "catalog": catalog._loaded is not None, "frozen": gc.get_freeze_count() > 0}

async def main():
    app = module.app
    imported = report()
    async with app.router.lifespan_context(app):
        started = report()
    print(json.dumps({"imported": imported, "started": started}))

asyncio.run(main())
"""


def probe(env: dict[str, str]) -> tuple[dict[str, dict[str, object]], str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "functions" / "chat" / "app.py")],
        env=keep | {"OPENROUTER_API_KEY": "x", "LOG_LEVEL": "WARNING"} | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report, done.stdout + done.stderr


def test_starting_the_app_loads_the_request_path_and_opens_the_stores(
    database_url: str, redis_url: str
) -> None:
    report, _ = probe({"DATABASE_URL": database_url, "REDIS_URL": redis_url})
    assert report["imported"] == {
        "loaded": [],
        "database": False,
        "catalog": False,
        "frozen": False,
    }
    assert report["started"]["loaded"] == [
        "gatewayz.chat.completions", "gatewayz.chat.relay", "gatewayz.chat.provider_http",
        "psycopg", "aws_lambda_powertools.logging",
    ]  # fmt: skip
    assert report["started"]["database"] is True
    assert report["started"]["catalog"] is True
    assert report["started"]["frozen"] is True  # what start-up built is out of the GC's way


@pytest.mark.usefixtures("database_url")
def test_a_store_that_is_down_leaves_the_start_to_finish_with_a_warning() -> None:
    report, output = probe(
        {
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
            "REDIS_URL": "redis://127.0.0.1:1/0",
        }
    )
    # Started all the same: the modules are loaded, the stores are left to the first request.
    assert "gatewayz.chat.completions" in report["started"]["loaded"]
    assert report["started"]["database"] is False
    warnings = [json.loads(line) for line in output.splitlines() if '"warm-up step failed"' in line]
    assert {w["step"] for w in warnings} == {"database", "rate-limit store"}
