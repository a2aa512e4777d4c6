"""`GET /v1/generation?id=`: one of the caller's requests, as its usage record tells it.

The id is the gateway's request id (`x-request-id`, `req_...`) or the provider's
completion id (the answer's `id`). Only the caller's own account's requests are found,
by a key holding `generations:read`, `chat` or `embeddings` (the key that made the
request can read what it cost).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import errors

if TYPE_CHECKING:
    from gatewayz.identity.auth import Caller

SCOPES = ("generations:read", "chat", "embeddings")
MAX_ID_LENGTH = 200  # ours are 36 characters, providers' well under 100

_SQL = """
SELECT request_id, upstream_id, endpoint, model, provider, provider_model, input_tokens,
       cached_input_tokens, output_tokens, reasoning_tokens, cost_nanos, latency_ms,
       upstream_latency_ms, ttft_ms, status, finish_reason, error_code, streamed,
       usage_estimated, created_at, api_key_id, is_byok, upstream_cost_nanos
  FROM usage_records
 WHERE account_id = %(account)s AND (request_id = %(id)s OR upstream_id = %(id)s)
 ORDER BY created_at DESC
 LIMIT 1
"""


def lookup(caller: Caller, generation_id: str) -> dict[str, Any]:
    """The generation's record, shaped like OpenRouter's `/generation`.

    Raises:
        InvalidRequest: the id is empty, too long, or not printable text.
        NotFound: no request of this account has that id.
    """
    from gatewayz import db

    _check_id(generation_id)
    row = db.execute(_SQL, {"account": caller.account_id, "id": generation_id}).fetchone()
    if row is None:
        raise errors.NotFound(f"No generation `{generation_id}` in this account.", param="id")
    (request_id, upstream_id, endpoint, model, provider, provider_model, uncached, cached,
     output, reasoning, cost, latency, upstream_latency, ttft, status, finish, error_code,
     streamed, estimated, created_at, key_id, byok, upstream_cost) = row  # fmt: skip
    return {
        "data": {
            "id": upstream_id or request_id,
            "request_id": request_id,
            "endpoint": endpoint,
            "model": model,
            "provider": provider,
            "provider_model": provider_model,
            "created_at": created_at.isoformat(),
            "api_key_id": str(key_id) if key_id else None,
            "tokens": {
                "prompt": uncached + cached,
                "completion": output + reasoning,
                "cached": cached,
                "reasoning": reasoning,
            },
            "total_cost": cost / 1e9,
            "cost_nanos": cost,
            "latency_ms": latency,
            "upstream_latency_ms": upstream_latency,
            "time_to_first_token_ms": ttft,
            "status": status,
            "finish_reason": finish,
            "error_code": error_code,
            "streamed": streamed,
            "usage_estimated": estimated,
            # As OpenRouter: served with the account's own provider key, which the
            # provider billed this much (at the catalog's price); total_cost is our fee.
            "is_byok": byok,
            "upstream_inference_cost": upstream_cost / 1e9 if upstream_cost is not None else None,
        }
    }


def _check_id(generation_id: str) -> None:
    # PostgreSQL text cannot hold NUL, and no id holds control characters: refuse them
    # here rather than fail in the driver.
    if not generation_id or len(generation_id) > MAX_ID_LENGTH:
        raise errors.InvalidRequest(
            f"`id` must be 1 to {MAX_ID_LENGTH} characters long.", param="id"
        )
    if not generation_id.isprintable():
        raise errors.InvalidRequest("`id` must be printable text.", param="id")
