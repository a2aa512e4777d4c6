"""`gatewayz session EMAIL`: an offline sign-up, from the printed token to the new account,
through the keys function's real handler."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from gatewayz import config, errors
from gatewayz.dev import bootstrap, cli
from gatewayz.identity import sessions
from tests.functions.events import event, invoke, json_body

if TYPE_CHECKING:
    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")


def printed_token(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli.main(["session", *args]) == 0
    token = capsys.readouterr().out.strip()
    assert token.count(".") == 2
    return token


def post_account(token: str) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {token}"}
    return invoke("keys", event("keys", httpMethod="POST", path="/v1/account", headers=headers))


def test_the_printed_token_signs_up_with_the_trial(
    capsys: pytest.CaptureFixture[str], conn: psycopg.Connection
) -> None:
    token = printed_token(capsys, "Newcomer@Example.com")
    session = sessions.verify(token)
    assert (session.email, session.email_verified) == ("Newcomer@Example.com", True)
    created = post_account(token)
    assert created["statusCode"] == 201, created["body"]
    body = json_body(created)
    assert body["key"].startswith("gw_live_")
    assert (body["data"]["account"]["plan"], body["data"]["account"]["balance"]) == ("trial", 10)
    # Another token for the same address is the same user: no second account.
    again = post_account(printed_token(capsys, "newcomer@example.com"))
    assert again["statusCode"] == 200
    assert json_body(again)["data"]["account"]["id"] == body["data"]["account"]["id"]


def test_unverified_gets_no_trial_and_tokens_expire(capsys: pytest.CaptureFixture[str]) -> None:
    token = printed_token(capsys, "unverified-cli@example.com", "--unverified", "--ttl", "600")
    assert sessions.verify(token).email_verified is False
    created = post_account(token)
    assert json_body(created)["data"]["account"]["plan"] == "free"
    old = bootstrap.session_token("late@example.com", ttl_s=60, now=time.time() - 3600)
    with pytest.raises(errors.ExpiredSession):
        sessions.verify(old)


def test_the_secret_is_generated_once_into_the_state_directory() -> None:
    path = config.home() / "supabase_jwt_secret"
    token = bootstrap.session_token("file@example.com")
    assert path.stat().st_mode & 0o077 == 0
    before = path.read_text()
    # A second process (the CLI as a user runs it) signs with the same secret.
    out = subprocess.run(
        [sys.executable, "-m", "gatewayz.dev.cli", "session", "file@example.com"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert path.read_text() == before
    assert sessions.verify(out.stdout.strip()).auth_user_id == sessions.verify(token).auth_user_id


def test_a_bad_address_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["session", "not-an-address"]) == 2
    assert "e-mail" in capsys.readouterr().err
