"""The offline mock's image model `mock/image` (docs/api.md, images): deterministic
pictures with no network.

It answers `POST /images/generations` as OpenAI does with `b64_json`: each image a PNG
of the requested size (gatewayz/chat/offline/png.py), its tiles coloured from the
prompt, size, quality, style and the image's index, so the same request always draws
the same pictures. `revised_prompt` is the prompt, as DALL-E 3 returns one.
"""

from __future__ import annotations

import base64
import json
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gatewayz.chat.offline import png
from gatewayz.chat.upstream import LocalReply
from gatewayz.errors import GatewayError, InvalidRequest

if TYPE_CHECKING:
    from gatewayz.chat.model import Model

MODEL_ID = "mock/image"
PRICE_USD = Decimal("0.02")  # per image, so a demo shows billing
_MAX_SIDE = 2048


def answer(payload: bytes) -> LocalReply:
    """The answer to a POST of `payload` to `/images/generations`."""
    try:
        body = json.loads(payload)
    except ValueError:
        return _error(InvalidRequest("The request body is not valid JSON."))
    if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
        return _error(InvalidRequest("`prompt` must be a string.", param="prompt"))
    size = _size(body.get("size", "1024x1024"))
    if size is None:
        return _error(InvalidRequest("`size` must be WIDTHxHEIGHT.", param="size"))
    n = body.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
        return _error(InvalidRequest("`n` must be from 1 to 10.", param="n"))
    data = [
        {"b64_json": base64.b64encode(draw(body, i)).decode(), "revised_prompt": body["prompt"]}
        for i in range(n)
    ]
    return LocalReply(200, json.dumps({"created": int(time.time()), "data": data}).encode())


def draw(body: dict[str, Any], index: int) -> bytes:
    """Image `index` of the request `body`: the same request, the same PNG."""
    size = _size(body.get("size", "1024x1024"))
    assert size is not None
    fields = [body.get(k) for k in ("prompt", "size", "quality", "style")]
    seed = json.dumps([*fields, index]).encode()
    return png.picture(seed, *size)


def model() -> Model:
    """`mock/image`, $0.02 an image."""
    from gatewayz.billing.pricing import Offer, Price
    from gatewayz.chat.model import Model

    price = Price(input=None, output=None, image=PRICE_USD)
    return Model(
        id=MODEL_ID,
        name="Mock: Image (offline)",
        description="Deterministic tiled PNGs coloured from the prompt. No network.",
        context_length=4000,
        output_modalities=("image",),
        supported_parameters=("n", "size", "quality", "style", "response_format", "user"),
        offers=(Offer(MODEL_ID, "mock", MODEL_ID, priority=0, price=price),),
    )


def _size(value: object) -> tuple[int, int] | None:
    if not isinstance(value, str):
        return None
    width, _, height = value.partition("x")
    if not (width.isdigit() and height.isdigit()):
        return None
    w, h = int(width), int(height)
    return (w, h) if 1 <= w <= _MAX_SIDE and 1 <= h <= _MAX_SIDE else None


def _error(error: GatewayError) -> LocalReply:
    return LocalReply(error.status, json.dumps(error.body()).encode())
