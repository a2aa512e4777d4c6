"""Errors as OpenAI's envelope (docs/api.md, errors).

Each failure is one class carrying its status, type and code; `http.py` turns any of
them into `{"error": {"message", "type", "param", "code", "metadata"?}}`, which is what
the OpenAI SDKs parse to pick their exception class.
"""

from __future__ import annotations

from typing import Any, ClassVar

QUOTE_LIMIT = 100  # characters of client input an error message quotes


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """Client input as an error message quotes it: at most `limit` characters, so a huge
    model id does not make a huge error."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


class GatewayError(Exception):
    """Base of every error the gateway returns to a client."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "api_error"
    code: ClassVar[str] = "internal_error"
    # False adds `x-should-retry: false`, so the SDKs do not retry what cannot succeed
    # (they retry 408, 409, 429 and 5xx by default).
    retryable: ClassVar[bool | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        metadata: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.metadata = metadata
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body of the response."""
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        if self.metadata:
            error["metadata"] = self.metadata
        return {"error": error}

    def response_headers(self) -> dict[str, str]:
        """Headers the response carries besides the body."""
        if self.retryable is False:
            return {"x-should-retry": "false", **self.headers}
        return dict(self.headers)


class InvalidRequest(GatewayError):
    """The request is malformed or a parameter is invalid (`param` names it)."""

    status, type, code = 400, "invalid_request_error", "invalid_request_error"
    retryable = False


class InvalidJSON(InvalidRequest):
    """The body is not valid JSON."""

    code = "invalid_json"


class ContextLengthExceeded(InvalidRequest):
    """The prompt cannot fit the model's context window."""

    code = "context_length_exceeded"


class ProviderKeyRejected(InvalidRequest):
    """The provider refused the account's own key for it (bring-your-own-key); the
    account must replace or delete that key. Never retried with the gateway's key."""

    code = "provider_key_rejected"


class TokenRateLimitTooSmall(InvalidRequest):
    """Even the least this request needs is more tokens than its tokens-per-minute window
    holds: waiting cannot help, so it is refused, not rate limited."""

    code = "exceeds_tokens_per_minute"


class InvalidReferralCode(InvalidRequest):
    """No user has this referral code, or it is the caller's own (or a teammate's)."""

    code = "invalid_referral_code"


class ReferralWindowClosed(InvalidRequest):
    """A referral code applies only within days of sign-up and before the first purchase."""

    code = "referral_window_closed"


class InvalidApiKey(GatewayError):
    """No key, or a key that does not exist."""

    status, type, code = 401, "authentication_error", "invalid_api_key"
    retryable = False


class ExpiredApiKey(InvalidApiKey):
    """The key is past its expiry."""

    code = "expired_api_key"


class RevokedApiKey(InvalidApiKey):
    """The key was revoked, or its rotated-out secret's grace period ended."""

    code = "revoked_api_key"


class DisabledApiKey(InvalidApiKey):
    """The key was disabled by its account (it can be enabled again)."""

    code = "disabled_api_key"


class InvalidSession(GatewayError):
    """A Supabase session token that is malformed, forged, or not meant for us."""

    status, type, code = 401, "authentication_error", "invalid_session"
    retryable = False


class ExpiredSession(InvalidSession):
    """The session token is past its expiry: refresh it and try again."""

    code = "expired_session"


class InsufficientCredits(GatewayError):
    """The account (or the key's spending limit) cannot cover the request."""

    status, type, code = 402, "insufficient_credits", "insufficient_credits"
    retryable = False


class PermissionDenied(GatewayError):
    """The key may not do this; subclasses name why."""

    status, type, code = 403, "permission_error", "permission_denied"
    retryable = False


class RoleDenied(PermissionDenied):
    """The user's role in the account does not allow this (owners and admins manage)."""

    code = "role_denied"


class ScopeDenied(PermissionDenied):
    """The key's scopes do not include this route."""

    code = "scope_denied"


class IpNotAllowed(PermissionDenied):
    """The client IP is outside the key's CIDR allowlist."""

    code = "ip_not_allowed"


class RefererNotAllowed(PermissionDenied):
    """The Referer/Origin is outside the key's domain allowlist."""

    code = "referer_not_allowed"


class AccountInactive(PermissionDenied):
    """The key's account is suspended or closed."""

    code = "account_inactive"


class ModelNotAllowed(PermissionDenied):
    """The key may not use this model."""

    code = "model_not_allowed"


class EscalationDenied(PermissionDenied):
    """A key may not grant more than it holds, nor per-key limits above the plan's."""

    code = "escalation_denied"


class KeyLimitReached(PermissionDenied):
    """The account already has as many live keys as its plan allows."""

    code = "max_keys_reached"


class NotFound(GatewayError):
    """No such path or resource."""

    status, type, code = 404, "not_found_error", "not_found"
    retryable = False


class ModelNotFound(NotFound):
    """No such model, or no offer with a known price."""

    code = "model_not_found"


class AccountNotFound(NotFound):
    """The session's user has no account here yet (sign up with POST /v1/account)."""

    code = "account_not_found"


class BillingNotSetUp(NotFound):
    """The account has no Stripe customer yet (it never checked out)."""

    code = "billing_not_set_up"


class MethodNotAllowed(GatewayError):
    """The path exists but not with this method."""

    status, type, code = 405, "invalid_request_error", "method_not_allowed"
    retryable = False


class Conflict(GatewayError):
    """The request conflicts with an earlier one (e.g. a reused idempotency key)."""

    status, type, code = 409, "conflict_error", "idempotency_conflict"
    retryable = False


class KeyRevoked(Conflict):
    """The API key was revoked: it can no longer be changed or rotated."""

    code = "key_revoked"


class EmailInUse(Conflict):
    """Another user here already has this e-mail address."""

    code = "email_in_use"


class InvitationUsed(Conflict):
    """The team invitation was already accepted, revoked or has expired."""

    code = "invitation_used"


class AlreadyMember(Conflict):
    """The person is already a member of the team."""

    code = "already_member"


class PlanConflict(Conflict):
    """Another plan has this id or this Stripe price."""

    code = "plan_exists"


class ReferralAlreadyApplied(Conflict):
    """The user (or their account) has already applied a referral code."""

    code = "referral_already_applied"


class InvitationEmailMismatch(PermissionDenied):
    """The session's verified e-mail is not the address the invitation was sent to."""

    code = "invitation_email_mismatch"


class RequestTooLarge(GatewayError):
    """The body exceeds the size limit."""

    status, type, code = 413, "invalid_request_error", "request_too_large"
    retryable = False


class UnsupportedMediaType(GatewayError):
    """The body is not `application/json`."""

    status, type, code = 415, "invalid_request_error", "unsupported_media_type"
    retryable = False


class RateLimited(GatewayError):
    """A rate limit was reached; `Retry-After` says when to try again."""

    status, type, code = 429, "rate_limit_error", "rate_limit_exceeded"


class UpstreamRateLimited(RateLimited):
    """Every provider tried answered 429; `Retry-After` is the shortest they asked for."""

    code = "upstream_rate_limited"


class InternalError(GatewayError):
    """Something failed inside the gateway; details go to the log, never to the client."""


class UpstreamError(GatewayError):
    """The provider failed; its body is never echoed."""

    status, type, code = 502, "upstream_error", "upstream_error"


class UpstreamRefused(UpstreamError):
    """The provider refused our own credentials or the model (its 401/403/404): a retry
    gets the same answer until an operator acts."""

    retryable = False


class ImageStorageFailed(UpstreamError):
    """Storing a generated image (Supabase Storage) failed; nothing was charged."""

    code = "image_storage_failed"


class ServiceUnavailable(GatewayError):
    """A dependency (database, Redis) is down."""

    status, type, code = 503, "api_error", "service_unavailable"


class NoProviderAvailable(ServiceUnavailable):
    """No provider can serve the request as asked (they are excluded or not configured)."""

    code = "no_provider_available"
    retryable = False


class MissingConfiguration(ServiceUnavailable):
    """A setting the route needs is unset or invalid; the message names it."""

    code = "missing_configuration"
    retryable = False

    def __init__(self, name: str, *, invalid: bool = False) -> None:
        state = "invalid" if invalid else "not configured"
        super().__init__(f"Server misconfigured: {name} is {state}.", metadata={"setting": name})


class UpstreamTimeout(GatewayError):
    """The provider did not answer in time."""

    status, type, code = 504, "upstream_error", "upstream_timeout"


class IdempotencyKeyReused(Conflict):
    """The `Idempotency-Key` was used for another request (another body or route)."""

    code = "idempotency_key_reused"


class IdempotencyInProgress(GatewayError):
    """The first request with this `Idempotency-Key` is still being served: retry soon."""

    status, type, code = 409, "conflict_error", "idempotency_in_progress"
    retryable = True


class IdempotentAnswerNotKept(Conflict):
    """The first answer for this `Idempotency-Key` was too large to keep for a replay."""

    code = "idempotent_answer_not_kept"


# --- Coupons (docs/api.md, coupons): why a code cannot be redeemed, each its own `code`,
# all 400 with `param: code` so a client can tell the customer exactly what is wrong.


class CouponNotFound(InvalidRequest):
    """No coupon has this code."""

    code = "coupon_not_found"


class CouponInactive(InvalidRequest):
    """The coupon was deactivated by an operator."""

    code = "coupon_inactive"


class CouponNotYetValid(InvalidRequest):
    """The coupon's validity has not begun."""

    code = "coupon_not_yet_valid"


class CouponExpired(InvalidRequest):
    """The coupon's validity has ended."""

    code = "coupon_expired"


class CouponExhausted(InvalidRequest):
    """The coupon reached its maximum number of redemptions."""

    code = "coupon_exhausted"


class CouponAlreadyRedeemed(InvalidRequest):
    """The user redeemed the coupon as many times as it allows each user."""

    code = "coupon_already_redeemed"


class CouponNotForYou(InvalidRequest):
    """The coupon was issued to another user."""

    code = "coupon_not_for_you"


class CouponAlreadyAttached(InvalidRequest):
    """A percent coupon is already waiting for the account's next checkout."""

    code = "coupon_already_attached"


class CouponExists(Conflict):
    """Another coupon has this code."""

    code = "coupon_exists"
