"""Configuration from the environment (docs/operations.md).

`get_settings()` builds the settings once per process, on first use, never at import.
A route that needs a setting calls `require()`; a missing or invalid value becomes a 503
naming the variable (`MissingConfiguration`), so a half-configured deploy answers clearly
instead of crashing at cold start.

In a deploy the secrets come from one Secrets Manager secret named by `GATEWAYZ_SECRET_ID`
(gatewayz.secret_source), read with the settings; a variable that is set still wins.
"""

from __future__ import annotations

import os
import secrets
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gatewayz.errors import MissingConfiguration
from gatewayz.secret_source import SecretsManagerSource

_PLACEHOLDERS = {"changeme", "changethis", "secret", "xxx", "todo"}


class Settings(BaseSettings):
    """Every environment variable the gateway reads; names as in docs/operations.md."""

    # `FOO=` (a template parameter left empty) means "not configured": the default applies.
    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_ignore_empty=True)

    # The Secrets Manager secret (ARN or name) holding the other settings; unset: none.
    gatewayz_secret_id: str | None = None

    database_url: str | None = None
    redis_url: str | None = None
    upstash_redis_rest_url: str | None = None
    upstash_redis_rest_token: SecretStr | None = None
    # When the rate-limit store cannot be reached: `open` lets requests through (logged and
    # counted; credit holds still cap what is in flight), `closed` refuses them with a 503.
    rate_limit_failure: Literal["open", "closed"] = "open"

    openrouter_api_key: SecretStr | None = None
    openrouter_base_url: str = "https://openrouter.ai/api/v1"
    portkey_api_key: SecretStr | None = None
    portkey_base_url: str = "https://api.portkey.ai/v1"
    featherless_api_key: SecretStr | None = None
    featherless_base_url: str = "https://api.featherless.ai/v1"
    chutes_api_key: SecretStr | None = None
    chutes_base_url: str = "https://llm.chutes.ai/v1"
    # The offline `mock` provider (`mock/echo`) beside the real ones: `on` always offers it
    # (`gatewayz dev` sets it), `off` only when no provider key is set.
    gatewayz_mock: Literal["on", "off"] = "off"

    key_hash_secret: SecretStr | None = None
    encryption_keys: SecretStr | None = None

    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None
    # Credit bought with an amount (`POST /v1/billing/checkout {"amount": ...}`), in USD.
    checkout_min_usd: Decimal = Field(default=Decimal(5), gt=0, allow_inf_nan=False)
    checkout_max_usd: Decimal = Field(default=Decimal(1000), gt=0, allow_inf_nan=False)
    # The largest grant a `credit` coupon may carry, in USD (a guard against typos).
    coupon_max_credit_usd: Decimal = Field(default=Decimal(500), gt=0, allow_inf_nan=False)
    # Where Stripe sends the customer back after a checkout or the billing portal.
    public_url: str = "http://127.0.0.1:8000"

    resend_api_key: SecretStr | None = None
    email_from: str | None = None
    resend_base_url: str | None = None

    supabase_url: str | None = None
    supabase_anon_key: SecretStr | None = None
    supabase_jwt_secret: SecretStr | None = None
    # Generated images (docs/api.md, images): stored in this Supabase Storage bucket with
    # the service role key, answered as signed URLs valid this long.
    supabase_service_role_key: SecretStr | None = None
    images_bucket: str = Field(default="images", pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    images_url_ttl_s: int = Field(default=7 * 24 * 3600, ge=60, le=365 * 24 * 3600)
    # A provider's image URL is fetched (to store it) within these bounds.
    images_fetch_max_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    images_fetch_timeout_s: float = Field(default=30.0, gt=0)
    # A `b64_json` answer larger than this is refused uncharged (Lambda answers <= 6 MB).
    images_max_answer_bytes: int = Field(default=5_800_000, gt=0)

    # Local state (embedded PostgreSQL, the dev key pepper, dev keys) lives here.
    gatewayz_home: Path = Path(".gatewayz")
    # API Gateway REST accepts at most 10 MB; larger bodies are refused before parsing.
    max_request_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    log_level: str = "INFO"

    # The chat path (docs/architecture.md).
    upstream_timeout_s: float = Field(default=120.0, gt=0)  # per attempt, between bytes
    upstream_connect_timeout_s: float = Field(default=5.0, gt=0)
    upstream_max_attempts: int = Field(default=3, ge=1)  # offers tried before giving up
    # After a client leaves mid-stream, keep reading the provider this long for its usage.
    stream_drain_s: float = Field(default=60.0, ge=0)
    # A client that has not taken a stream's bytes for this long is treated as gone.
    stream_send_timeout_s: float = Field(default=30.0, gt=0)
    # A stream notes what it delivered on its hold this often (the sweeper charges it if
    # the function dies); a stream shorter than this writes nothing extra.
    stream_progress_s: float = Field(default=3.0, gt=0)
    # While a provider is silent before its first token, a stream sends an SSE comment
    # (`: keep-alive`) this often, so proxies and API Gateway keep the connection.
    stream_keepalive_s: float = Field(default=5.0, gt=0)
    # A stream ends itself (settled, then an in-band error) this long before the Lambda
    # deadline or its hold's expiry, whichever is first.
    stream_deadline_margin_s: float = Field(default=10.0, ge=0)
    # A hold outlives the longest request (the chat function's timeout, 600 s); the
    # hold_sweeper ends it after that.
    hold_ttl_s: int = Field(default=1200, ge=60)
    # Chat history injection: the tokens of a session's history put in front of a chat
    # request that names the session, unless it names its own budget (docs/api.md).
    history_max_tokens: int = Field(default=8000, ge=0)
    # Bring-your-own-key: a request served with the account's own provider key pays only
    # this percentage of its catalog cost (the provider bills the rest to that key).
    byok_fee_percent: Decimal = Field(default=Decimal(5), ge=0, le=100, allow_inf_nan=False)
    # `catalog_refresh` prices an offer from a provider's list at its price plus this
    # percentage, rounded up, so no offer is ever below its upstream cost.
    price_markup_percent: Decimal = Field(default=Decimal(0), ge=0, le=1000, allow_inf_nan=False)

    # Referrals (docs/api.md, referrals): what each side gets, in USD, once the referred
    # account's first purchase of at least the minimum (what the card was charged) is paid.
    referral_referrer_reward_usd: Decimal = Field(
        default=Decimal(5), ge=0, decimal_places=9, allow_inf_nan=False
    )
    referral_referred_reward_usd: Decimal = Field(
        default=Decimal(5), ge=0, decimal_places=9, allow_inf_nan=False
    )
    referral_min_purchase_usd: Decimal = Field(
        default=Decimal(10), ge=0, decimal_places=9, allow_inf_nan=False
    )
    # A code applies within this many days of the referred user's sign-up.
    referral_apply_days: int = Field(default=7, ge=0)
    # Per referrer: at most this many rewarded referrals, and this much reward in USD.
    referral_max_rewards: int = Field(default=50, ge=0)
    referral_max_reward_usd: Decimal = Field(
        default=Decimal(250), ge=0, decimal_places=9, allow_inf_nan=False
    )

    @field_validator(
        "key_hash_secret",
        "encryption_keys",
        "stripe_secret_key",
        "stripe_webhook_secret",
        "resend_api_key",
        "supabase_jwt_secret",
        "supabase_service_role_key",
        "upstash_redis_rest_token",
    )
    @classmethod
    def _refuse_placeholders(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDERS:
            raise ValueError("is a placeholder, not a secret")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest first: a set variable beats the secret, so local runs are unchanged.
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            SecretsManagerSource(settings_cls),
            file_secret_settings,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the environment (and the secret it names) once per process.

    Raises:
        MissingConfiguration: a variable is set to an invalid value (named in the error),
            or the `GATEWAYZ_SECRET_ID` secret cannot be read.
    """
    try:
        return Settings()
    except ValidationError as exc:
        names = sorted({str(err["loc"][0]).upper() for err in exc.errors() if err["loc"]})
        raise MissingConfiguration(", ".join(names) or "configuration", invalid=True) from None


def require(name: str) -> str:
    """Return the value of setting `name` (a secret is unwrapped).

    Raises:
        MissingConfiguration: the setting is unset (503 naming the variable).
    """
    value = getattr(get_settings(), name)
    if value is None:
        raise MissingConfiguration(name.upper())
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value)


def in_lambda() -> bool:
    """True inside AWS Lambda, where no local defaults (embedded database, dev secrets) apply."""
    return "AWS_LAMBDA_FUNCTION_NAME" in os.environ


def home() -> Path:
    """The local state directory, created on demand (never used inside Lambda)."""
    path = get_settings().gatewayz_home.resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@lru_cache(maxsize=1)
def key_hash_secret() -> bytes:
    """The HMAC pepper for API key hashes.

    Locally, when `KEY_HASH_SECRET` is unset, one is generated once into the state
    directory so keys stay valid across restarts; in Lambda it must be configured. Read
    once per process (it is on every request's path).

    Raises:
        MissingConfiguration: unset inside Lambda.
    """
    return _secret_or_local("key_hash_secret")


@lru_cache(maxsize=1)
def session_jwt_secret() -> bytes:
    """The HS256 secret of Supabase session tokens (`SUPABASE_JWT_SECRET`).

    Locally, when it is unset, one is generated once into the state directory: the
    secret `gatewayz session` signs its tokens with, so sign-up works offline.

    Raises:
        MissingConfiguration: unset inside Lambda.
    """
    return _secret_or_local("supabase_jwt_secret")


def local_stripe_webhook_secret() -> str:
    """`STRIPE_WEBHOOK_SECRET`; locally, when unset, a `whsec_…` one generated once into the
    state directory (what the local Stripe stand-in of `gatewayz dev` signs events with).

    Raises:
        MissingConfiguration: unset inside Lambda.
    """
    return _secret_or_local("stripe_webhook_secret", prefix="whsec_").decode()


def _secret_or_local(name: str, prefix: str = "") -> bytes:
    """Secret setting `name`; unset outside Lambda, the one kept in the state directory's
    file `name` (`prefix` + random), generated on first use.

    Raises:
        MissingConfiguration: unset inside Lambda.
    """
    value: SecretStr | None = getattr(get_settings(), name)
    if value is not None:
        return value.get_secret_value().encode()
    if in_lambda():
        raise MissingConfiguration(name.upper())
    path = home() / name
    if not path.exists():
        # Written aside, then linked into place: two processes starting at once agree on
        # one secret, and no reader ever sees a half-written file.
        tmp = path.with_name(f".{name}.{os.getpid()}")
        tmp.write_text(prefix + secrets.token_urlsafe(48))
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip().encode()


def project_root() -> Path:
    """The checkout holding template.yaml and infra/ (for the CLI and local runs).

    `GATEWAYZ_ROOT` wins; else the nearest parent of the working directory with a
    template.yaml; else the checkout this package was installed from (editable install).
    """
    if root := os.environ.get("GATEWAYZ_ROOT"):
        return Path(root).resolve()
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents):
        if (candidate / "template.yaml").is_file():
            return candidate
    return Path(__file__).resolve().parents[3]
