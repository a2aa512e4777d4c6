"""Settings: read lazily, a missing one is a 503 naming it."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from gatewayz import config, errors
from tests.conftest import reset_caches

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    reset_caches()
    yield
    reset_caches()


def test_a_missing_setting_is_a_503_naming_it() -> None:
    with pytest.raises(errors.MissingConfiguration) as caught:
        config.require("stripe_secret_key")
    assert caught.value.status == 503
    assert "STRIPE_SECRET_KEY" in caught.value.message
    assert caught.value.body()["error"]["metadata"] == {"setting": "STRIPE_SECRET_KEY"}


def test_a_set_secret_is_unwrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_123")
    assert config.require("stripe_secret_key") == "sk_test_123"
    assert "sk_test_123" not in repr(config.get_settings())


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESEND_API_KEY", "")
    with pytest.raises(errors.MissingConfiguration, match="RESEND_API_KEY"):
        config.require("resend_api_key")


def test_a_placeholder_secret_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEY_HASH_SECRET", "changethis")
    with pytest.raises(errors.MissingConfiguration, match="KEY_HASH_SECRET is invalid"):
        config.get_settings()


def test_the_dev_pepper_is_generated_once_and_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GATEWAYZ_HOME", str(tmp_path))
    first = config.key_hash_secret()
    reset_caches()
    assert config.key_hash_secret() == first
    assert len(first) >= 32
    assert (tmp_path / "key_hash_secret").stat().st_mode & 0o077 == 0


def test_inside_lambda_the_pepper_must_be_configured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GATEWAYZ_HOME", str(tmp_path))
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "gatewayz-chat")
    with pytest.raises(errors.MissingConfiguration, match="KEY_HASH_SECRET"):
        config.key_hash_secret()
    assert not (tmp_path / "key_hash_secret").exists()


def test_inside_lambda_the_database_url_must_be_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from gatewayz import db

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "gatewayz-chat")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(errors.MissingConfiguration, match="DATABASE_URL"):
        db.database_url()


def test_importing_config_reads_nothing() -> None:
    # A broken environment must not break import (cold start), only the routes that need it.
    code = "import gatewayz.config, gatewayz.http; print('ok')"
    env = {"KEY_HASH_SECRET": "changeme", "MAX_REQUEST_BYTES": "not a number", "PATH": "/usr/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_an_empty_base_url_takes_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_BASE_URL", "")
    assert config.get_settings().openrouter_base_url == "https://openrouter.ai/api/v1"
