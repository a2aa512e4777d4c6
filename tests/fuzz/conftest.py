"""The gateway the fuzz talks to: the chat function's own ASGI app (`functions/chat/app.py`)
served by uvicorn on a real socket, as `run.sh` serves it under the Lambda Web Adapter, in
front of two healthy fake providers, with real PostgreSQL and a funded key.

Every request goes out as raw bytes (so a body can hold what `json.dumps` would refuse to
write) and comes back as an `Exchange`: the answer, what the fakes received meanwhile, and
the tracebacks the server logged while serving it (the cause of any 5xx).
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from gatewayz import db
from gatewayz.chat import catalog
from gatewayz.dev import local
from gatewayz.identity import auth
from gatewayz.logs import get_logger
from tests import factories
from tests.conftest import reset_caches
from tests.fakes.asgi_server import serve_asgi
from tests.fakes.openai_upstream import serve
from tests.pg import ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.fakes.openai_upstream import FakeUpstream, Received

MODEL = "test/echo"
ENV = {
    "OPENROUTER_API_KEY": "sk-or-fuzz",
    "FEATHERLESS_API_KEY": "sk-fl-fuzz",
    "UPSTREAM_TIMEOUT_S": "5",
    "STREAM_DRAIN_S": "5",
    "GATEWAYZ_METRICS": "off",
}
# Limits no fuzz run reaches, so a 429 never hides what a body does.
PLAN = "fuzz"


class _ServerLog(logging.Handler):
    """Warnings and errors the gateway and uvicorn log while serving a request."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass(repr=False)
class Exchange:
    """One request and everything it caused."""

    status: int
    headers: httpx.Headers
    content: bytes
    upstream: list[Received]  # what the fake providers received while it was served
    log: list[str] = field(default_factory=list)  # the server's warnings and tracebacks

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")

    def __repr__(self) -> str:
        return f"Exchange(status={self.status})"

    def json(self) -> Any:
        try:
            return json.loads(self.content)
        except ValueError:
            return None

    def describe(self) -> str:
        """Status, body head and the server's tracebacks, for an assertion message."""
        text = f"HTTP {self.status}: {self.content[:300]!r}"
        return "\n".join([text, *self.log])


@dataclass
class FuzzGateway:
    base_url: str
    primary: FakeUpstream
    secondary: FakeUpstream
    account_id: str
    secret: str
    client: httpx.Client
    logs: _ServerLog

    def post(self, path: str, raw: bytes, *, content_type: str = "application/json") -> Exchange:
        """POST `raw` as the body to `path` (`/chat/completions` or `/completions`)."""
        self.primary.requests.clear()
        self.secondary.requests.clear()
        self.logs.records.clear()
        response = self.client.post(
            self.base_url + path,
            content=raw,
            headers={"authorization": f"Bearer {self.secret}", "content-type": content_type},
        )
        upstream = [*self.primary.requests, *self.secondary.requests]
        upstream = [r for r in upstream if r.method == "POST"]
        log = [_format(r) for r in self.logs.records]
        return Exchange(response.status_code, response.headers, response.content, upstream, log)

    def usage_row(self, request_id: str) -> dict[str, Any] | None:
        """The usage record of a request and its ledger debit (waits briefly: a stream
        settles as its last bytes go out)."""
        deadline = time.monotonic() + 3
        while True:
            row = db.execute(
                """SELECT u.status, u.cost_nanos, u.input_tokens, u.output_tokens,
                          t.amount_nanos
                     FROM usage_records u
                LEFT JOIN credit_transactions t ON t.usage_record_id = u.id
                    WHERE u.request_id = %s""",
                (request_id,),
            ).fetchone()
            if row is not None or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if row is None:
            return None
        keys = ("status", "cost_nanos", "input_tokens", "output_tokens", "debit_nanos")
        return dict(zip(keys, row, strict=True))

    def holds(self) -> int:
        row = db.execute(
            "SELECT count(*) FROM credit_holds WHERE account_id = %s", (self.account_id,)
        ).fetchone()
        return int(row[0]) if row else 0


def _format(record: logging.LogRecord) -> str:
    """A log record; an exception as the project's own frames (`file:line in function`)
    and the exception itself, library frames left out."""
    reason = getattr(record, "reason", None)
    head = f"[{record.name}] {record.levelname} {record.getMessage()}"
    lines = [f"{head} ({reason})" if reason else head]
    if record.exc_info:
        _, exc, tb = record.exc_info
        for frame in traceback.extract_tb(tb):
            where = Path(frame.filename)
            if ROOT in where.parents and ".venv" not in where.parts:
                lines.append(f"  {where.relative_to(ROOT)}:{frame.lineno} in {frame.name}")
        lines.append(f"  {type(exc).__name__}: {str(exc)[:300]}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def fuzz_gateway(database_url: str) -> Iterator[FuzzGateway]:
    saved = {
        name: os.environ.get(name) for name in [*ENV, "OPENROUTER_BASE_URL", "FEATHERLESS_BASE_URL"]
    }
    handler = _ServerLog()
    loggers = [logging.getLogger(get_logger().name), logging.getLogger("uvicorn.error")]
    with serve() as primary, serve() as secondary:
        os.environ.update(ENV)
        os.environ["OPENROUTER_BASE_URL"] = primary.base_url
        os.environ["FEATHERLESS_BASE_URL"] = secondary.base_url
        reset_caches()
        auth.forget()
        _arrange_catalog_and_plan()
        owner = factories.new_owner(plan_id=PLAN)
        factories.fund(owner.account_id, 1_000_000_000_000)  # $1,000
        key = factories.new_key(owner)
        chat = local.import_app(ROOT / "functions" / "chat" / "app.py", "gatewayz_fuzz_chat")
        for logger in loggers:
            logger.addHandler(handler)
        try:
            with serve_asgi(chat.app) as port, httpx.Client(timeout=30) as client:
                yield FuzzGateway(
                    f"http://127.0.0.1:{port}/v1",
                    primary,
                    secondary,
                    owner.account_id,
                    key.secret,
                    client,
                    handler,
                )
        finally:
            for logger in loggers:
                logger.removeHandler(handler)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            reset_caches()


def _arrange_catalog_and_plan() -> None:
    """`test/echo` at $1 / $2 per million tokens on both fakes (as the end-to-end tests
    have it), and a plan whose rate limits the fuzz never reaches."""
    factories.add_echo_model()
    with db.transaction() as cur:
        cur.execute(
            """INSERT INTO plans (id, name, kind, requests_per_minute, requests_per_day,
                                  tokens_per_minute, concurrent_requests, max_keys, is_public)
               VALUES (%s, 'Fuzz', 'payg', 1000000, 100000000, 2000000000, 100, 5, false)
               ON CONFLICT (id) DO NOTHING""",
            (PLAN,),
        )
    catalog.refresh()
