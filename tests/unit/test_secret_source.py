"""Settings from one Secrets Manager secret (under moto): read once, below the environment."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from gatewayz import config, errors
from tests.conftest import reset_caches
from tests.pg import ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator

SecretsManagerClient = Any  # boto3's client, untyped here

SECRET = {
    "DATABASE_URL": "postgresql://gatewayz:from-the-secret@db.example.com:6543/postgres",
    "STRIPE_SECRET_KEY": "sk_test_from_the_secret",
    "KEY_HASH_SECRET": "a-pepper-kept-in-secrets-manager",
    "RESEND_API_KEY": "",  # empty: not configured, like an empty variable
    "SOMETHING_ELSE": "ignored, like an unknown variable",
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretsManagerClient]:
    """Secrets Manager under moto, no variable of SECRET set, fresh settings."""
    for name in ("AWS_PROFILE", "GATEWAYZ_SECRET_ID", *SECRET):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    reset_caches()
    with mock_aws():
        yield boto3.client("secretsmanager")
    monkeypatch.undo()
    reset_caches()


def name_secret(
    client: SecretsManagerClient, monkeypatch: pytest.MonkeyPatch, value: object = SECRET
) -> str:
    """Create the secret holding `value` (JSON unless a str) and point the settings at it."""
    text = value if isinstance(value, str) else json.dumps(value)
    arn = client.create_secret(Name="gatewayz/prod", SecretString=text)["ARN"]
    monkeypatch.setenv("GATEWAYZ_SECRET_ID", arn)
    return arn


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "settings: the secret cannot be used"]


def test_the_secret_feeds_the_settings(
    aws: SecretsManagerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    name_secret(aws, monkeypatch)
    settings = config.get_settings()
    assert settings.database_url == SECRET["DATABASE_URL"]
    assert config.require("stripe_secret_key") == SECRET["STRIPE_SECRET_KEY"]
    assert config.key_hash_secret() == SECRET["KEY_HASH_SECRET"].encode()
    with pytest.raises(errors.MissingConfiguration, match="RESEND_API_KEY"):
        config.require("resend_api_key")
    assert "SOMETHING_ELSE" not in repr(settings)
    assert SECRET["STRIPE_SECRET_KEY"] not in repr(settings)


def test_the_secret_may_be_named_rather_than_given_by_arn(
    aws: SecretsManagerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    name_secret(aws, monkeypatch)
    monkeypatch.setenv("GATEWAYZ_SECRET_ID", "gatewayz/prod")
    assert config.require("stripe_secret_key") == SECRET["STRIPE_SECRET_KEY"]


def test_a_set_variable_wins_over_the_secret(
    aws: SecretsManagerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    name_secret(aws, monkeypatch)
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_from_the_environment")
    monkeypatch.setenv("RESEND_API_KEY", "re_from_the_environment")
    assert config.require("stripe_secret_key") == "sk_test_from_the_environment"
    assert config.require("resend_api_key") == "re_from_the_environment"
    # What the environment leaves unset still comes from the secret.
    assert config.get_settings().database_url == SECRET["DATABASE_URL"]


def test_an_empty_variable_does_not_hide_the_secret(
    aws: SecretsManagerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A template parameter left empty passes `STRIPE_SECRET_KEY=`: the secret's value applies.
    name_secret(aws, monkeypatch)
    monkeypatch.setenv("STRIPE_SECRET_KEY", "")
    assert config.require("stripe_secret_key") == SECRET["STRIPE_SECRET_KEY"]


def test_the_secret_is_read_once_per_process(
    aws: SecretsManagerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = name_secret(aws, monkeypatch)
    first = config.get_settings()
    aws.put_secret_value(SecretId=arn, SecretString=json.dumps({**SECRET, "EMAIL_FROM": "a@b.c"}))
    aws.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    # Another read would fail now (the secret is gone): this one is the cached settings.
    assert config.get_settings() is first
    assert config.require("stripe_secret_key") == SECRET["STRIPE_SECRET_KEY"]
    # A new process (cold start) reads it again.
    reset_caches()
    with pytest.raises(errors.MissingConfiguration, match="GATEWAYZ_SECRET_ID"):
        config.get_settings()


def test_a_changed_secret_is_seen_by_the_next_cold_start(
    aws: SecretsManagerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = name_secret(aws, monkeypatch)
    assert config.get_settings().email_from is None
    aws.put_secret_value(SecretId=arn, SecretString=json.dumps({**SECRET, "EMAIL_FROM": "a@b.c"}))
    assert config.get_settings().email_from is None
    reset_caches()
    assert config.get_settings().email_from == "a@b.c"


def test_a_missing_secret_is_a_503_naming_the_setting(
    aws: SecretsManagerClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GATEWAYZ_SECRET_ID", "gatewayz/nowhere")
    with caplog.at_level(logging.ERROR), pytest.raises(errors.MissingConfiguration) as caught:
        config.require("database_url")
    assert caught.value.status == 503
    assert caught.value.body()["error"]["metadata"] == {"setting": "GATEWAYZ_SECRET_ID"}
    (record,) = refusals(caplog)
    assert record.secret_id == "gatewayz/nowhere"
    assert "ResourceNotFoundException" in record.error
    # A failed read is not cached: once the secret exists, the next request gets it.
    name_secret(aws, monkeypatch)
    assert config.require("database_url") == SECRET["DATABASE_URL"]


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        ("DATABASE_URL=postgresql://gatewayz:hunter2@db.example.com/postgres", "not JSON"),
        ('["postgresql://gatewayz:hunter2@db.example.com/postgres"]', "not a JSON object"),
        ('"postgresql://gatewayz:hunter2@db.example.com/postgres"', "not a JSON object"),
    ],
)
def test_a_secret_that_is_not_a_json_object_is_a_503_logged_without_its_value(
    aws: SecretsManagerClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    stored: str,
    reason: str,
) -> None:
    name_secret(aws, monkeypatch, stored)
    with caplog.at_level(logging.ERROR), pytest.raises(errors.MissingConfiguration) as caught:
        config.get_settings()
    assert caught.value.message == "Server misconfigured: GATEWAYZ_SECRET_ID is invalid."
    (record,) = refusals(caplog)
    assert record.error.startswith(reason)
    logged = caplog.text + capsys.readouterr().out + json.dumps(vars(record), default=str)
    assert "hunter2" not in logged
    assert "hunter2" not in json.dumps(caught.value.body())


def test_an_invalid_value_in_the_secret_is_named_like_an_invalid_variable(
    aws: SecretsManagerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    name_secret(aws, monkeypatch, {**SECRET, "KEY_HASH_SECRET": "changeme"})
    with pytest.raises(errors.MissingConfiguration, match="KEY_HASH_SECRET is invalid"):
        config.get_settings()


PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
import app
from gatewayz import config
loaded = "boto3" in sys.modules or "botocore" in sys.modules
if len(sys.argv) > 2:
    config.get_settings()
    loaded = loaded or "boto3" in sys.modules or "botocore" in sys.modules
print("boto3 loaded" if loaded else "no boto3")
"""


@pytest.mark.parametrize("group", ["chat", "billing"])
def test_without_a_secret_boto3_is_never_imported(group: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgresql://nobody@192.0.2.1/x"}
    argv = [sys.executable, "-c", PROBE, str(ROOT / "functions" / group), "read settings"]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert out.stdout.strip() == "no boto3", out.stderr


def test_with_a_secret_named_importing_a_handler_reads_nothing() -> None:
    # The secret is read on the first get_settings(), not at import (no credentials here).
    env = {"PATH": "/usr/bin:/bin", "GATEWAYZ_SECRET_ID": "arn:aws:secretsmanager:x"}
    argv = [sys.executable, "-c", PROBE, str(ROOT / "functions" / "chat")]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert out.stdout.strip() == "no boto3", out.stderr
