"""The offline mock's embeddings model `mock/embed` (docs/api.md, embeddings): deterministic
vectors with no network.

Each input's vector comes from SHA-256 of the input (the text, or the token ids as JSON)
in counter mode: component i is a 32-bit word mapped onto [-1, 1]. The first
`dimensions` components (default `DEFAULT_DIMENSIONS`, at most `MAX_DIMENSIONS`) are
scaled to unit length, so a shorter vector is the longer one's prefix, renormalised, as
OpenAI's `dimensions` behaves. The same input always gives the same vector. Tokens are
whitespace-separated words of a text input (a token-id input counts its ids); OpenAI's
floats only, the gateway encodes base64 itself.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gatewayz.chat.upstream import LocalReply
from gatewayz.errors import GatewayError, InvalidRequest

if TYPE_CHECKING:
    from gatewayz.chat.model import Model

MODEL_ID = "mock/embed"
DEFAULT_DIMENSIONS = 256
MAX_DIMENSIONS = 3072
CONTEXT_LENGTH = 8192
_WORDS_PER_DIGEST = 8  # 32-bit words in one SHA-256 digest


def vector(data: str | list[int], dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """The unit vector of `data` in `dimensions` dimensions."""
    seed = (data if isinstance(data, str) else json.dumps(data)).encode()
    words: list[int] = []
    for block in range(-(-dimensions // _WORDS_PER_DIGEST)):
        digest = hashlib.sha256(block.to_bytes(4, "big") + seed).digest()
        words += struct.unpack(">8I", digest)
    raw = [w / 2**31 - 1.0 for w in words[:dimensions]]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def answer(payload: bytes) -> LocalReply:
    """The answer to a POST of `payload` to `/embeddings`, as OpenAI gives it (floats)."""
    try:
        body = json.loads(payload)
    except ValueError:
        return _error(InvalidRequest("The request body is not valid JSON."))
    if not isinstance(body, dict):
        return _error(InvalidRequest("The request body must be a JSON object."))
    dimensions = body.get("dimensions")
    if dimensions is None:
        dimensions = DEFAULT_DIMENSIONS
    if not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS:
        return _error(
            InvalidRequest(
                f"`dimensions` must be between 1 and {MAX_DIMENSIONS} for {MODEL_ID}.",
                param="dimensions",
            )
        )
    inputs = _inputs(body.get("input"))
    if not inputs:
        return _error(InvalidRequest("`input` must not be empty.", param="input"))
    tokens = sum(len(i.split()) if isinstance(i, str) else len(i) for i in inputs)
    data = [
        {"object": "embedding", "index": n, "embedding": vector(item, dimensions)}
        for n, item in enumerate(inputs)
    ]
    reply = {
        "object": "list",
        "data": data,
        "model": str(body.get("model") or MODEL_ID),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return LocalReply(200, json.dumps(reply).encode())


def model() -> Model:
    """`mock/embed`, priced like OpenAI's text-embedding-3-small ($0.02 per million input
    tokens), so a demo shows billing."""
    from gatewayz.billing.pricing import Offer, Price
    from gatewayz.chat.model import Model

    price = Price(input=Decimal("0.02"), output=Decimal(0))
    return Model(
        id=MODEL_ID,
        name="Mock: Embed (offline)",
        description="Deterministic unit vectors from a hash of the input. No network.",
        context_length=CONTEXT_LENGTH,
        output_modalities=("embeddings",),
        supported_parameters=("dimensions", "encoding_format"),
        offers=(Offer(MODEL_ID, "mock", MODEL_ID, priority=0, price=price),),
    )


def _inputs(value: Any) -> list[str | list[int]]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str | list)]
    return []


def _error(error: GatewayError) -> LocalReply:
    return LocalReply(error.status, json.dumps(error.body()).encode())
