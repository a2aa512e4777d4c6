"""Clients of the offline `mock` provider with no network: a small httpx transport hands
their requests to the mock's in-process handler, as `gatewayz.chat.upstream.post` does."""

from __future__ import annotations

import httpx
import openai

from gatewayz.chat.providers.mock import PROVIDER
from gatewayz.chat.upstream import LocalReply


class Bridge(httpx.AsyncBaseTransport):
    """Hands a POST under the base URL to the mock's handler and its reply back to httpx."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        serve = PROVIDER.serve_locally()
        assert serve is not None
        path = request.url.path.removeprefix(httpx.URL(PROVIDER.default_base_url).path)
        reply = await serve(path, await request.aread())
        assert isinstance(reply, LocalReply)
        return httpx.Response(
            reply.status, headers={"content-type": reply.content_type}, content=reply.chunks()
        )


def client(transport: httpx.AsyncBaseTransport | None = None) -> openai.AsyncOpenAI:
    """The official SDK, talking to the mock."""
    http = httpx.AsyncClient(transport=transport or Bridge())
    return openai.AsyncOpenAI(
        base_url=PROVIDER.default_base_url, api_key="x", http_client=http, max_retries=0
    )


def http() -> httpx.AsyncClient:
    """A plain HTTP client of the mock, for the raw wire format."""
    return httpx.AsyncClient(transport=Bridge(), base_url=PROVIDER.default_base_url)
