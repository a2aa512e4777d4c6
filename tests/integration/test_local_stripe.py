"""The local Stripe stand-in under `gatewayz dev`: served at /_stripe on the dev server when
STRIPE_SECRET_KEY is unset, with the functions' Stripe settings pointed at it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import httpx
import pytest
import stripe

from gatewayz import config
from gatewayz.dev import local, samtemplate
from gatewayz.dev.stripe_standin import local_run
from tests.conftest import reset_caches
from tests.fakes.asgi_server import serve_asgi
from tests.integration.test_local import free_port
from tests.pg import ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

STRIPE_ENV = ("STRIPE_SECRET_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No Stripe settings and a fresh state directory; whatever `start` sets is undone."""
    for name in STRIPE_ENV:
        monkeypatch.setenv(name, "x")  # so undo() removes what start() sets
        monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAYZ_HOME", str(tmp_path))
    reset_caches()
    yield tmp_path
    monkeypatch.undo()
    reset_caches()


def checkout(client: stripe.StripeClient) -> stripe.checkout.Session:
    item = {"price_data": {"currency": "usd", "unit_amount": 900, "product_data": {"name": "c"}}}
    return client.v1.checkout.sessions.create(
        params={"mode": "payment", "line_items": [{**item, "quantity": 1}]}  # type: ignore[list-item]
    )


def test_start_points_the_settings_at_the_stand_in_with_one_generated_secret(
    clean_env: Path,
) -> None:
    standin = local_run.start("0.0.0.0", 8123)

    assert standin is not None
    assert config.require("stripe_api_base") == "http://127.0.0.1:8123/_stripe"
    assert config.require("stripe_secret_key") == local_run.SECRET_KEY
    secret = config.require("stripe_webhook_secret")
    assert secret.startswith("whsec_")
    assert secret == standin.webhook_secret == (clean_env / "stripe_webhook_secret").read_text()
    assert str(clean_env / "stripe_webhook_secret") in local_run.describe(standin, clean_env)
    for name in STRIPE_ENV:  # a restart keeps the secret the functions already know
        os.environ.pop(name)
    reset_caches()
    again = local_run.start("127.0.0.1", 8123)
    assert again is not None
    assert again.webhook_secret == secret


def test_a_real_stripe_key_means_no_stand_in(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_a_real_account_key")
    reset_caches()
    assert local_run.start("127.0.0.1", 8123) is None
    assert config.get_settings().stripe_api_base is None


@pytest.mark.usefixtures("database_url")
def test_the_local_gateway_serves_the_stand_in_beside_the_functions(clean_env: Path) -> None:
    template = samtemplate.load(ROOT / "template.yaml")
    standin = local_run.start("127.0.0.1", free_port())
    assert standin is not None
    gateway = local.LocalGateway(
        template, local.load_functions(ROOT, template), {local_run.PREFIX: standin.app}
    )
    with serve_asgi(gateway) as served:
        base = f"http://127.0.0.1:{served}"
        client = stripe.StripeClient(
            config.require("stripe_secret_key"), base_addresses={"api": base + "/_stripe"}
        )
        session = checkout(client)
        page = httpx.get(session.url or "")
        keys = httpx.get(f"{base}/v1/keys")
    assert session.url == f"{base}/_stripe/pay/{session.id}"
    assert page.status_code == 200
    assert "Local Stripe stand-in (test mode)" in page.text
    # The functions' routes are unchanged: the keys function itself answers.
    assert keys.status_code == 401
    assert keys.json()["error"]["code"] == "invalid_api_key"


def test_gatewayz_dev_says_stripe_is_the_stand_in_and_serves_it(
    empty_database: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in STRIPE_ENV}
    env.update(DATABASE_URL=empty_database, GATEWAYZ_HOME=str(tmp_path), PORT=str(port),
               PYTHONUNBUFFERED="1")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "gatewayz.dev.cli", "dev"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        said = next((line for line in proc.stdout if line.startswith("stripe:")), "")
        base = f"http://127.0.0.1:{port}/_stripe"
        client = stripe.StripeClient("sk_test_local_standin", base_addresses={"api": base})
        deadline = time.monotonic() + 30
        while True:
            try:
                session = checkout(client)
                break
            except stripe.APIConnectionError:
                assert time.monotonic() < deadline, "the dev server did not start"
                time.sleep(0.2)
        page = httpx.get(session.url or "")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert "local Stripe stand-in" in said
    assert base in said
    assert str(tmp_path / "stripe_webhook_secret") in said
    assert (tmp_path / "stripe_webhook_secret").read_text().startswith("whsec_")
    assert page.status_code == 200
    assert "Pay 9.00 USD" in page.text
