"""A running gateway for end-to-end tests: the local gateway (routing as template.yaml
does) on a real socket, in front of two fake providers (OpenRouter and Featherless),
with real PostgreSQL and the rate-limit store of the environment; the same gateway with
no provider key (the offline mock); `backend`, either of the two, for the client suite;
and, for what only shows across processes, two chat function processes sharing the real
Redis."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import openai
import pytest

from gatewayz import db
from gatewayz.dev import local, samtemplate
from gatewayz.identity import auth, keys
from tests import factories
from tests.conftest import reset_caches
from tests.e2e.clients import Backend, add_upstream_embed_model
from tests.e2e.processes import chat_processes
from tests.fakes.asgi_server import serve_asgi
from tests.fakes.openai_upstream import FakeUpstream, serve
from tests.pg import ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator

MODEL = "test/echo"
# $1 and $2 per million tokens: 1,000 and 2,000 nanos a token.
INPUT_NANOS, OUTPUT_NANOS = 1_000, 2_000
ENV = {
    "OPENROUTER_API_KEY": "sk-or-test",
    "FEATHERLESS_API_KEY": "sk-fl-test",
    "UPSTREAM_TIMEOUT_S": "2",
    "STREAM_DRAIN_S": "5",
    "GATEWAYZ_METRICS": "off",
}


@dataclass(frozen=True)
class Upstreams:
    primary: FakeUpstream  # openrouter, tried first
    secondary: FakeUpstream  # featherless


@dataclass(frozen=True)
class Account:
    account_id: str
    user_id: str
    key_id: str
    secret: str

    def balance(self) -> int:
        row = db.execute("SELECT balance_nanos FROM accounts WHERE id = %s", (self.account_id,))
        return int(row.fetchone()[0])  # type: ignore[index]


# Module scope: the environment these set must not outlive the end-to-end tests.
@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    with serve() as primary, serve() as secondary:
        yield Upstreams(primary, secondary)


@pytest.fixture(scope="module")
def gateway(database_url: str, upstreams: Upstreams) -> Iterator[str]:
    """The base URL (`.../v1`) of a gateway whose providers are the two fakes."""
    saved = {
        name: os.environ.get(name) for name in [*ENV, "OPENROUTER_BASE_URL", "FEATHERLESS_BASE_URL"]
    }
    os.environ.update(ENV)
    os.environ["OPENROUTER_BASE_URL"] = upstreams.primary.base_url
    os.environ["FEATHERLESS_BASE_URL"] = upstreams.secondary.base_url
    reset_caches()
    factories.add_echo_model()
    template = samtemplate.load(ROOT / "template.yaml")
    gateway_app = local.LocalGateway(template, local.load_functions(ROOT, template))
    try:
        with serve_asgi(gateway_app) as port:
            yield f"http://127.0.0.1:{port}/v1"
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_caches()


@pytest.fixture(scope="module")
def offline(database_url: str) -> Iterator[str]:
    """The base URL (`.../v1`) of the local gateway with no provider key set: only the
    offline models (`mock/echo`, `mock/embed`)."""
    reset_caches()
    template = samtemplate.load(ROOT / "template.yaml")
    with serve_asgi(local.LocalGateway(template, local.load_functions(ROOT, template))) as port:
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="module", params=["offline", "upstream"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each client-suite test runs twice: against the offline mock (`mock/echo`,
    `mock/embed`) and against the gateway in front of the fake providers (`test/echo`,
    `test/clients-embed`). One gateway per module and backend; the offline tests run
    first, as the fake providers' keys, once set, hide the mock."""
    if request.param == "offline":
        return Backend("offline", request.getfixturevalue("offline"), "mock/echo", "mock/embed")
    base_url = request.getfixturevalue("gateway")
    return Backend("upstream", base_url, MODEL, add_upstream_embed_model())


@pytest.fixture(scope="module")
def redis_gateways(gateway: str, upstreams: Upstreams, redis_url: str) -> Iterator[list[str]]:
    """The base URLs of two chat function processes (uvicorn, as the Lambda Web Adapter runs
    it) sharing the test Redis as their rate-limit store: think two warm Lambda sandboxes."""
    with chat_processes(2, upstreams, REDIS_URL=redis_url) as running:
        yield [chat.base_url for chat in running]


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> None:
    if "upstreams" in request.fixturenames:
        fakes: Upstreams = request.getfixturevalue("upstreams")
        fakes.primary.reset()
        fakes.secondary.reset()
    auth.forget()


def new_account(
    *,
    credit_nanos: int = 5_000_000_000,
    plan: str = "payg",
    scopes: tuple[str, ...] = keys.DEFAULT_SCOPES,
    **key_fields: Any,
) -> Account:
    """A funded account with one key; `key_fields` set columns of the key."""
    owner = factories.new_owner(plan_id=plan)
    if credit_nanos:
        factories.fund(owner.account_id, credit_nanos)
    key = factories.new_key(owner, scopes=scopes, **key_fields)
    return Account(owner.account_id, owner.user_id, key.id, key.secret)


@pytest.fixture
def base_url(request: pytest.FixtureRequest) -> str:
    """The gateway a test module talks to: in front of the fake providers, or the offline
    one (`gatewayz dev` with the mock) for a module that sets `GATEWAY = "offline"`."""
    url: str = request.getfixturevalue(getattr(request.module, "GATEWAY", "gateway"))
    return url


@pytest.fixture
def account(base_url: str) -> Account:
    return new_account()


@pytest.fixture
def client(base_url: str, account: Account) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=account.secret, max_retries=0)


def prompt_bound(messages: list[dict[str, Any]]) -> int:
    """The credit hold's bound of a chat prompt, as documented (README, "Credits"): its
    messages' UTF-8 bytes as JSON, 8 tokens a message, 64 for the template's preamble."""
    return len(json.dumps(messages, ensure_ascii=False).encode()) + 8 * len(messages) + 64


def ledger_usage(account_id: str) -> list[tuple[int, str]]:
    """The account's usage debits (amount, request id), oldest first."""
    rows = db.execute(
        """SELECT t.amount_nanos, u.request_id FROM credit_transactions t
             JOIN usage_records u ON u.id = t.usage_record_id
            WHERE t.account_id = %s AND t.kind = 'usage' ORDER BY t.id""",
        (account_id,),
    )
    return [(int(a), r) for a, r in rows.fetchall()]
