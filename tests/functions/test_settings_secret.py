"""A deployed function takes its settings from the Secrets Manager secret (under moto):
real API Gateway events, inside "Lambda" (no local fallbacks), no secret in the environment."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from tests.conftest import reset_caches
from tests.factories import new_key, new_owner
from tests.functions.events import event, invoke, json_body
from tests.functions.keys_api import call

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.usefixtures("database_url")

PEPPER = "the-pepper-only-the-secret-knows"


@contextmanager
def _in_lambda(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Secrets Manager under moto; a Lambda environment with no setting but the secret's id."""
    for name in ("DATABASE_URL", "REDIS_URL", "KEY_HASH_SECRET", "GATEWAYZ_SECRET_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "gatewayz-keys")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    reset_caches()
    try:
        with mock_aws():
            yield boto3.client("secretsmanager")
    finally:
        monkeypatch.undo()
        reset_caches()


def test_a_key_works_with_the_database_and_pepper_from_the_secret(
    database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Made before the function starts, hashed with the pepper the secret will hold.
    monkeypatch.setenv("KEY_HASH_SECRET", PEPPER)
    reset_caches()
    key = new_key(new_owner())
    settings = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "KEY_HASH_SECRET": PEPPER}
    with _in_lambda(monkeypatch) as client:
        arn = client.create_secret(Name="gatewayz/test", SecretString=json.dumps(settings))["ARN"]
        monkeypatch.setenv("GATEWAYZ_SECRET_ID", arn)
        reply = call("GET", "/v1/key", key.secret)
        assert reply.status == 200, reply.raw
        assert reply.body["data"]["id"] == key.id
        health = invoke("keys", event("keys"))
        assert health["statusCode"] == 200, health["body"]
        assert json_body(health)["checks"] == {"database": "ok", "redis": "ok"}


def test_without_the_secret_the_same_request_is_a_503_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _in_lambda(monkeypatch):
        monkeypatch.setenv("GATEWAYZ_SECRET_ID", "gatewayz/never-created")
        well_formed = "gw_test_" + "a" * 32
        reply = call("GET", "/v1/key", well_formed)
        assert reply.status == 503, reply.raw
        assert reply.code == "missing_configuration"
        assert reply.body["error"]["metadata"] == {"setting": "GATEWAYZ_SECRET_ID"}
        completion = event("chat", "chat-completions")
        headers = {**completion["headers"], "Authorization": f"Bearer {well_formed}"}
        chat = invoke("chat", event("chat", "chat-completions", headers=headers))
        assert chat["statusCode"] == 503, chat["body"]
        assert json_body(chat)["error"]["metadata"] == {"setting": "GATEWAYZ_SECRET_ID"}
        health = json_body(invoke("keys", event("keys")))
        assert "GATEWAYZ_SECRET_ID" in health["error"]["metadata"]["checks"]["database"]
