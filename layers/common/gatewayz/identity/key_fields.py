"""What a client may set on an API key, read and checked at the edge.

`KeyCreate` is the body of `POST /v1/keys`, `KeyUpdate` of `PATCH /v1/keys/{id}`,
`KeyRotate` of `POST /v1/keys/{id}/rotate`. `settings()` gives the fields the client
sent, in the units the database keeps (nanos, networks, a period), keyed by their API
names; what a key may grant is `key_bounds`' business.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
)

from gatewayz import errors, http, jsonbody
from gatewayz.billing import money
from gatewayz.identity import keys

# What the rate-limit fields and the rotation period accept.
Count = Annotated[StrictInt, Field(ge=1, le=1_000_000_000)]
Days = Annotated[StrictInt, Field(ge=1, le=3650)]
MAX_ENTRIES = 100
RESETS = ("daily", "weekly", "monthly")
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST = re.compile(rf"(\*\.)?{_LABEL}(?:\.{_LABEL})+|{_LABEL}")
_MODEL = re.compile(r"[A-Za-z0-9][\w.:+-]*/(\*|[\w.:+-][\w.:+/-]*)")


class _Fields(BaseModel):
    """The fields shared by create and update."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    scopes: Annotated[list[str], Field(min_length=1, max_length=len(keys.SCOPES))] | None = None
    allowed_models: Annotated[list[str], Field(max_length=MAX_ENTRIES)] | None = None
    allowed_cidrs: Annotated[list[str], Field(max_length=MAX_ENTRIES)] | None = None
    allowed_referers: Annotated[list[str], Field(max_length=MAX_ENTRIES)] | None = None
    expires_at: datetime | None = None
    limit: StrictFloat | None = None  # strict floats take ints too, never strings or booleans
    limit_reset: Literal["daily", "weekly", "monthly"] | None = None
    requests_per_minute: Count | None = None
    requests_per_day: Count | None = None
    tokens_per_minute: Count | None = None
    concurrent_requests: Count | None = None
    rotation_period_days: Days | None = None

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = sorted(set(value) - set(keys.SCOPES))
        if unknown:
            raise ValueError(f"unknown scopes {unknown}; known: {', '.join(keys.SCOPES)}")
        return sorted(set(value), key=keys.SCOPES.index)

    @field_validator("allowed_models")
    @classmethod
    def _models(cls, value: list[str] | None) -> list[str] | None:
        for entry in value or ():
            if len(entry) > 200 or not _MODEL.fullmatch(entry):
                raise ValueError(f"{entry!r} is not a model id (`vendor/model`) or `vendor/*`")
        return None if value is None else sorted(set(value))

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str] | None) -> list[str] | None:
        networks = []
        for entry in value or ():
            try:
                networks.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IPv4 or IPv6 CIDR") from None
        return None if value is None else sorted(set(networks))

    @field_validator("allowed_referers")
    @classmethod
    def _referers(cls, value: list[str] | None) -> list[str] | None:
        hosts = []
        for entry in value or ():
            host = entry.strip().lower()
            if len(host) > 253 or not _HOST.fullmatch(host):
                raise ValueError(f"{entry!r} is not a host (`app.example.com`) or `*.example.com`")
            hosts.append(host)
        return None if value is None else sorted(set(hosts))

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if value <= datetime.now(UTC):
            raise ValueError("expires_at must be in the future")
        return value

    @field_validator("limit")
    @classmethod
    def _limit(cls, value: float | None) -> float | None:
        if value is not None and not 0 <= value <= 1_000_000_000:
            raise ValueError("limit must be a number of USD from 0 to 1e9")
        return value

    def settings(self) -> dict[str, Any]:
        """The fields the client sent, in the database's units, by API name: `limit` in
        nanos, `rotation_period_days` as a timedelta.

        Raises:
            InvalidRequest: `limit` holds a fraction of a nano-dollar.
        """
        sent = {name: getattr(self, name) for name in self.model_fields_set}
        if sent.get("limit") is not None:
            try:
                sent["limit"] = money.usd_to_nanos(Decimal(repr(sent["limit"])))
            except ValueError:
                raise errors.InvalidRequest(
                    "limit has more than 9 decimal places.", param="limit"
                ) from None
        if sent.get("rotation_period_days") is not None:
            sent["rotation_period_days"] = timedelta(days=sent["rotation_period_days"])
        return sent


class KeyCreate(_Fields):
    """The body of `POST /v1/keys`."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    environment: Literal["live", "test"] = "live"


class KeyUpdate(_Fields):
    """The body of `PATCH /v1/keys/{id}`: the fields to change."""

    disabled: StrictBool | None = None

    @field_validator("name", "disabled")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class KeyRotate(BaseModel):
    """The body of `POST /v1/keys/{id}/rotate` (optional)."""

    model_config = ConfigDict(extra="forbid")

    grace_period_hours: Annotated[StrictFloat, Field(ge=0, le=720)] = 24

    @property
    def grace(self) -> timedelta:
        """How long the secret being replaced keeps working."""
        return timedelta(hours=self.grace_period_hours)


def parse[M: BaseModel](model: type[M], raw: bytes) -> M:
    """The request body `raw` as `model`; an empty body is `{}`.

    Raises:
        InvalidJSON / InvalidRequest: not JSON, not an object, or a field is invalid
            (`param` names it).
    """
    value = jsonbody.loads(raw) if raw.strip() else {}
    if not isinstance(value, dict):
        raise errors.InvalidRequest("Request body must be a JSON object.")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise http.validation_to_error(exc.errors()) from None
