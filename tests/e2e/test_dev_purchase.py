"""Buying credit as a new user would, through a real `gatewayz dev` process and its local
Stripe stand-in: sign up, check out, pay on the stand-in's page as a browser does, see
the credit and the ledger, spend it with the OpenAI SDK, and find the e-mails in the local
outbox."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from openai import OpenAI

from gatewayz import db
from tests import ledger
from tests.integration.test_local import free_port
from tests.pg import ROOT

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

STRIPE_ENV = ("STRIPE_SECRET_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET", "PUBLIC_URL")


@pytest.fixture
def dev_server(empty_database: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`gatewayz dev` on a free port with no Stripe or Resend key: (base URL, its env)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in STRIPE_ENV}
    env.update(DATABASE_URL=empty_database, GATEWAYZ_HOME=str(tmp_path), PORT=str(port),
               PYTHONUNBUFFERED="1")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "gatewayz.dev.cli", "dev"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: _status(f"{base}/health") == 200, "the dev server did not start")
        yield base, env
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_new_user_buys_credit_sees_it_spends_it_and_gets_the_emails(
    dev_server: tuple[str, dict[str, str]], empty_database: str, tmp_path: Path
) -> None:
    base, env = dev_server
    token = _cli(env, "session", "carol@example.com").strip()
    signed_up = httpx.post(f"{base}/v1/account", headers={"Authorization": f"Bearer {token}"})
    assert signed_up.status_code == 201, signed_up.text
    key = signed_up.json()["key"]
    auth = {"Authorization": f"Bearer {key}"}

    checkout = httpx.post(f"{base}/v1/billing/checkout", headers=auth, json={"amount": 20})
    assert checkout.status_code == 201, checkout.text
    page_url = checkout.json()["data"]["url"]
    assert page_url.startswith(f"{base}/_stripe/")
    # The browser: open the Pay page, submit its form, follow the redirect back here.
    page = httpx.get(page_url)
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert action is not None
    assert "Pay 20.00 USD" in page.text
    paid = httpx.post(
        httpx.URL(page_url).join(action[1]), data={"card": "success"}, follow_redirects=True
    )
    assert paid.status_code == 200
    assert str(paid.url).startswith(f"{base}/?checkout=success")
    assert "Payment received" in paid.text

    credits = httpx.get(f"{base}/v1/credits", headers=auth).json()["data"]
    assert credits["balance"] == 30.0  # the $10 trial, kept, and the $20 bought
    entries = httpx.get(f"{base}/v1/credits/transactions", headers=auth).json()["data"]
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in entries] == [
        ("purchase", 20.0, 30.0),
        ("trial", 10.0, 10.0),
    ]
    assert httpx.get(f"{base}/v1/trial", headers=auth).json()["data"]["converted_at"]

    reply = OpenAI(base_url=f"{base}/v1", api_key=key).chat.completions.create(
        model="mock/echo", messages=[{"role": "user", "content": "spend some"}]
    )
    cost = reply.usage.cost  # type: ignore[union-attr]
    assert cost > 0
    after = httpx.get(f"{base}/v1/credits", headers=auth).json()["data"]
    assert after["balance"] == pytest.approx(30.0 - cost, abs=1e-9)
    assert after["total_usage"] == pytest.approx(cost, abs=1e-9)

    # The dev server's job timer sends the outbox every few seconds.
    outbox = tmp_path / "outbox"
    _until(
        lambda: {"welcome", "payment_received"} <= _templates(outbox),
        "the welcome and payment e-mails did not reach the local outbox",
    )
    receipt = next(outbox.glob("*-payment_received-*.txt")).read_text()
    assert "carol@example.com" in receipt
    assert "20.00" in receipt
    listed = _cli(env, "outbox")
    assert "payment_received" in listed
    assert "welcome" in listed
    with db.connect(empty_database) as conn:
        assert ledger.broken_accounts(conn) == []


def _templates(outbox: Path) -> set[str]:
    names = (path.name for path in outbox.glob("*.txt")) if outbox.exists() else ()
    return {match[1] for name in names if (match := re.match(r"[^-]+-([a-z_]+)-", name))}


def _cli(env: dict[str, str], *args: str) -> str:
    ran = subprocess.run(
        [sys.executable, "-m", "gatewayz.dev.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return ran.stdout


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.TransportError:
        return None


def _until(done: Callable[[], Any], failure: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, failure
        time.sleep(0.25)
