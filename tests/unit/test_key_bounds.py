"""What a key may grant, as pure rules over the grantor's own settings and its plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gatewayz import errors
from gatewayz.identity import key_bounds, keys

PLAN = {"requests_per_minute": 100, "requests_per_day": 1000, "tokens_per_minute": 10_000,
        "concurrent_requests": 5, "max_keys": 3}  # fmt: skip


def grantor(platform_admin: bool = False, **own: Any) -> key_bounds.Grantor:
    settings = dict.fromkeys(("scopes", *key_bounds.INHERITED))
    settings["scopes"] = list(keys.DEFAULT_SCOPES)
    return key_bounds.Grantor(own={**settings, **own}, plan=PLAN, platform_admin=platform_admin)


def refused(g: key_bounds.Grantor, settings: dict[str, Any], **kwargs: Any) -> str | None:
    try:
        key_bounds.check(g, settings, **kwargs)
    except errors.EscalationDenied as exc:
        return exc.param
    return None


@pytest.mark.parametrize(
    ("own", "entries", "field", "ok"),
    [
        (["openai/*"], ["openai/gpt-4o", "openai/*"], "allowed_models", True),
        (["openai/*"], ["openai-evil/x"], "allowed_models", False),
        (["openai/gpt-4o"], ["openai/gpt-4o-mini"], "allowed_models", False),
        (["10.0.0.0/8"], ["10.2.0.0/16", "10.0.0.1/32"], "allowed_cidrs", True),
        (["10.0.0.0/8"], ["11.0.0.0/8"], "allowed_cidrs", False),
        (["10.0.0.0/8"], ["::ffff:10.0.0.1/128"], "allowed_cidrs", False),
        (["2001:db8::/32"], ["2001:db8:1::/48"], "allowed_cidrs", True),
        (["*.example.com"], ["a.example.com", "*.a.example.com", "*.example.com"],
         "allowed_referers", True),
        (["*.example.com"], ["example.com"], "allowed_referers", False),
        (["*.example.com"], ["a.notexample.com"], "allowed_referers", False),
        (["app.example.com"], ["*.app.example.com"], "allowed_referers", False),
    ],
)  # fmt: skip
def test_an_allowlist_may_only_narrow(own: list[str], entries: list[str], field: str,
                                      ok: bool) -> None:  # fmt: skip
    g = grantor(**{field: own})
    assert refused(g, {field: entries}) == (None if ok else field)
    assert refused(g, {field: None}) == field  # no allowlist admits everything
    assert refused(grantor(), {field: entries}) is None  # the grantor has none


def test_an_admin_key_holds_every_scope_and_grants_admin() -> None:
    assert refused(grantor(scopes=["admin"]), {"scopes": list(keys.SCOPES)}) is None
    assert refused(grantor(), {"scopes": ["admin"]}) == "scopes"


def test_limits_resets_and_expiry_may_only_tighten() -> None:
    g = grantor(limit=100, limit_reset="weekly", expires_at=datetime(2030, 1, 1, tzinfo=UTC))
    assert refused(g, {"limit": 100, "limit_reset": "monthly"}) is None
    assert refused(g, {"limit": 100, "limit_reset": None}) is None
    assert refused(g, {"limit": 101}) == "limit"
    assert refused(g, {"limit": 50, "limit_reset": "daily"}) == "limit_reset"
    later = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=1)
    assert refused(g, {"expires_at": later}) == "expires_at"


def test_rate_limits_stay_within_the_plan_unless_a_platform_admin_sets_them() -> None:
    assert refused(grantor(), {"requests_per_minute": 100}) is None
    assert refused(grantor(), {"requests_per_minute": 101}) == "requests_per_minute"
    assert key_bounds.check(grantor(platform_admin=True), {"requests_per_minute": 101}) is True
    assert key_bounds.check(grantor(platform_admin=True), {"requests_per_minute": 100}) is False
    # Rotating a key compares it with the grantor, not with the plan.
    assert refused(grantor(), {"requests_per_minute": 101}, against_plan=False) is None
    assert refused(grantor(requests_per_minute=5), {"requests_per_minute": 6}) == (
        "requests_per_minute")  # fmt: skip


def test_a_new_key_inherits_what_the_body_does_not_say() -> None:
    g = grantor(scopes=["chat", "keys:write", "admin"], allowed_models=["a/*"], limit=9,
                limit_reset="daily")  # fmt: skip
    assert key_bounds.defaults(g, {"name": "x"})["scopes"] == list(keys.DEFAULT_SCOPES)
    narrow = grantor(scopes=["chat", "keys:write"], allowed_models=["a/*"], limit=9,
                     limit_reset="daily")  # fmt: skip
    full = key_bounds.defaults(narrow, {"name": "x", "limit": 3})
    assert (full["scopes"], full["allowed_models"], full["limit"], full["limit_reset"]) == (
        ["chat", "keys:write"], ["a/*"], 3, None)  # fmt: skip
