"""`client.images.generate` against `gatewayz dev`'s local gateway with no provider key:
the offline `mock/image` draws a deterministic PNG of the requested size, served at a
signed local URL or as b64_json, and billed $0.02 an image; `GET /v1/models` lists it."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

from gatewayz.chat.providers import mock_images

if TYPE_CHECKING:
    from tests.e2e.conftest import Account

GATEWAY = "offline"  # the conftest fixtures talk to `gatewayz dev` with the mock

MODEL = "mock/image"
IMAGE_NANOS = 20_000_000  # $0.02


def pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and scanlines of an 8-bit RGB PNG, read by the format's rules."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, chunks = 8, {}
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) == crc
        chunks[kind] = chunks.get(kind, b"") + body
        at += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 2)
    return width, height, zlib.decompress(chunks[b"IDAT"])


def test_a_url_image_is_a_png_of_the_size_asked_and_costs_its_price(
    client: openai.OpenAI, account: Account
) -> None:
    before = account.balance()
    answer = client.images.generate(model=MODEL, prompt="a lighthouse", size="512x512", n=2)
    assert [d.revised_prompt for d in answer.data] == ["a lighthouse"] * 2
    images = [httpx.get(d.url or "").content for d in answer.data]
    for image in images:
        width, height, scanlines = pixels(image)
        assert (width, height) == (512, 512)
        assert len(scanlines) == height * (1 + 3 * width)
    assert images[0] != images[1]  # each image of the request is its own
    assert round(answer.usage.cost * 1e9) == 2 * IMAGE_NANOS  # type: ignore[union-attr, attr-defined]
    assert before - account.balance() == 2 * IMAGE_NANOS
    assert answer.provider == "mock"  # type: ignore[attr-defined]


def test_b64_json_is_deterministic(client: openai.OpenAI) -> None:
    asked = {"model": MODEL, "prompt": "a lighthouse", "size": "256x256", "style": "natural"}
    first = client.images.generate(**asked, response_format="b64_json").data[0].b64_json
    again = client.images.generate(**asked, response_format="b64_json").data[0].b64_json
    assert first == again
    body = {**asked, "n": 1, "quality": "standard"}  # the model's default quality is sent
    assert base64.b64decode(first or "") == mock_images.draw(body, 0)


def test_the_mock_image_model_is_listed_with_its_price(offline: str) -> None:
    listed = httpx.get(f"{offline}/models/{MODEL}").json()
    assert listed["id"] == MODEL
    assert listed["pricing"]["image"] == "0.02"
    assert listed["architecture"]["output_modalities"] == ["image"]


def test_a_chat_model_makes_no_images(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.generate(model="mock/echo", prompt="a lighthouse")
    assert raised.value.param == "model"


def test_an_image_model_on_the_chat_route_is_a_400_pointing_to_the_images_route(
    client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.param == "model"
    assert "/v1/images/generations" in raised.value.message
