"""What a provider's image answer holds (docs/api.md, images): each image's bytes, its
type and its revised prompt, whether the provider sent the bytes (`b64_json`) or a URL.

A URL is fetched at once (within `IMAGES_FETCH_MAX_BYTES` and `IMAGES_FETCH_TIMEOUT_S`),
since providers' URLs expire within hours and the gateway answers with its own. Anything
that is not an image of a type we serve is a failed attempt, never passed on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

import httpx

from gatewayz.chat import routing
from gatewayz.images import storage
from gatewayz.record import record


@record
class Image:
    """One generated image."""

    data: bytes
    content_type: str
    revised_prompt: str | None = None


async def images(payload: object, n: int, *, max_bytes: int, timeout_s: float) -> list[Image]:
    """The first `n` images of an OpenAI images answer.

    Raises:
        Retryable: the answer holds no image, or one that cannot be read or fetched.
    """
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or not data:
        raise routing.Retryable("the answer holds no image")
    found = []
    for item in data[:n]:
        if not isinstance(item, dict):
            raise routing.Retryable("an image of the answer is not an object")
        raw = await _bytes(item, max_bytes, timeout_s)
        kind = storage.content_type(raw)
        if kind is None:
            raise routing.Retryable("an image of the answer is not PNG, JPEG or WebP")
        revised = item.get("revised_prompt")
        found.append(Image(raw, kind, revised if isinstance(revised, str) else None))
    return found


async def _bytes(item: dict[str, Any], max_bytes: int, timeout_s: float) -> bytes:
    encoded = item.get("b64_json")
    if isinstance(encoded, str):
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise routing.Retryable("an image of the answer is not base64") from None
        if len(raw) > max_bytes:
            raise routing.Retryable("an image of the answer is too large")
        return raw
    url = item.get("url")
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return await fetch(url, max_bytes, timeout_s)
    raise routing.Retryable("an image of the answer has neither b64_json nor url")


async def fetch(url: str, max_bytes: int, timeout_s: float) -> bytes:
    """The body at `url`, at most `max_bytes` of it, within `timeout_s` in all.

    Raises:
        Retryable: not a 200, too large, too slow, or the connection failed.
    """
    try:
        async with (
            asyncio.timeout(timeout_s),
            httpx.AsyncClient(timeout=timeout_s) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise routing.Retryable(f"fetching the image: status {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise routing.Retryable("the image at the answer's URL is too large")
            return bytes(body)
    except (TimeoutError, httpx.TimeoutException):
        raise routing.Retryable("fetching the image timed out", timeout=True) from None
    except httpx.HTTPError as exc:
        raise routing.Retryable(f"fetching the image: {type(exc).__name__}") from None
