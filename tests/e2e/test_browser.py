"""A web page in a real browser (headless Chromium) calls the gateway from another origin
with the `openai` JS SDK: CORS lets the stream through, and a key for another site gets
its 403 as the SDK's own error, not a network failure.

Needs Chromium (Debian's `chromium` package) and the SDK from tests/browser/package.json
(`make test` installs it when npm exists); skipped only when either is missing. The
protocol itself is tested without a browser in tests/integration/test_cors.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest
from starlette.staticfiles import StaticFiles

from gatewayz import db
from tests.browser import chromium
from tests.e2e.conftest import INPUT_NANOS, MODEL, OUTPUT_NANOS, new_account
from tests.fakes.asgi_server import serve_asgi
from tests.pg import ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator

PAGES = ROOT / "tests" / "browser"
SDK = PAGES / "node_modules" / "openai" / "index.mjs"
BROWSER = chromium.find()

pytestmark = [
    pytest.mark.skipif(BROWSER is None, reason="no Chromium here (apt-get install chromium)"),
    pytest.mark.skipif(not SDK.exists(), reason="openai JS SDK not installed (tests/browser)"),
]


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """The web app's origin: another host and port than the gateway's 127.0.0.1."""
    with serve_asgi(StaticFiles(directory=PAGES)) as port:
        yield f"http://localhost:{port}"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    assert BROWSER is not None
    with chromium.launch(BROWSER, tmp_path_factory.mktemp("chromium")) as port:
        yield port


async def run_page(browser: int, page_origin: str, gateway: str, key: str) -> dict[str, Any]:
    query = urlencode({"base": gateway, "key": key, "model": MODEL})
    outcome = await chromium.open_page(
        browser, f"{page_origin}/page.html?{query}", "window.outcome"
    )
    assert isinstance(outcome, dict), outcome
    return outcome


def usage_row(account_id: str) -> tuple[Any, ...] | None:
    return db.execute(
        "SELECT input_tokens, output_tokens, cost_nanos FROM usage_records WHERE account_id = %s",
        (account_id,),
    ).fetchone()


async def test_a_page_streams_a_completion_and_sees_its_cost(
    browser: int, page_origin: str, gateway: str
) -> None:
    # A browser key, restricted to the page's own site.
    account = new_account(allowed_referers=["localhost"])
    before = account.balance()
    outcome = await run_page(browser, page_origin, gateway, account.secret)
    assert "error" not in outcome, outcome
    assert outcome["text"] == "hello from a browser"
    usage = outcome["usage"]
    cost = round(usage["cost"] * 1e9)
    assert cost == usage["prompt_tokens"] * INPUT_NANOS + usage["completion_tokens"] * OUTPUT_NANOS
    assert before - account.balance() == cost
    assert usage_row(account.account_id) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
        cost,
    )


async def test_a_key_for_another_site_gets_the_sdks_403(
    browser: int, page_origin: str, gateway: str
) -> None:
    account = new_account(allowed_referers=["app.example.com"])
    before = account.balance()
    outcome = await run_page(browser, page_origin, gateway, account.secret)
    # The SDK read the status, the code and the request id: CORS let the error through.
    assert outcome["error"] == "PermissionDeniedError", outcome
    assert (outcome["status"], outcome["code"]) == (403, "referer_not_allowed")
    assert str(outcome["requestId"]).startswith("req_")
    assert account.balance() == before
    assert usage_row(account.account_id) is None
