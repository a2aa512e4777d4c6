"""Upstream features that cost more than their tokens (docs/architecture.md, step 5).

OpenRouter's `plugins` (web search, file parsing), server-side tools such as
`openrouter:web_search` or OpenAI's `web_search_preview`, `web_search_options`, audio or
image output, and a premium `service_tier` are billed by the provider per request or at
prices the catalog's token prices do not cover. Passed through unpriced they would be
free to the client and paid by us. So each is a named feature: an offer that prices it
(`model_offers.request_fees`) may serve the request, and the hold and the charge include
its fee; with no such offer the request is refused with a 400 naming the field.
Everything else passes through as the client sent it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import errors

if TYPE_CHECKING:
    from gatewayz.chat.routing import Attempt

WEB_SEARCH = "web_search"
# OpenRouter plugin ids, and the features they bill.
_PLUGINS = {"web": WEB_SEARCH, "file-parser": "file_parser"}
# Tool types that run on the provider's side and bill per call.
_SERVER_TOOLS = {
    "openrouter:web_search": WEB_SEARCH,
    "web_search": WEB_SEARCH,
    "web_search_preview": WEB_SEARCH,
}
_CLIENT_TOOLS = frozenset({"function", "custom"})  # the client runs them: tokens only
_PLAIN_TIERS = frozenset({"auto", "default", "flex"})  # never dearer than the list price


def requested(body: dict[str, Any]) -> dict[str, str]:
    """The fee-bearing features a request asks for, each with the parameter asking.

    Raises:
        InvalidRequest: a `plugins` entry that is not an object with an `id`.
    """
    wanted: dict[str, str] = {}
    for i, plugin in enumerate(body.get("plugins") or ()):
        plugin_id = plugin.get("id") if isinstance(plugin, dict) else None
        if not isinstance(plugin_id, str):
            raise errors.InvalidRequest(
                "Each plugin must be an object with a string `id`.", param=f"plugins[{i}]"
            )
        wanted.setdefault(_PLUGINS.get(plugin_id, f"plugin:{plugin_id}"), f"plugins[{i}]")
    for i, tool in enumerate(body.get("tools") or ()):
        kind = tool.get("type")
        if kind not in _CLIENT_TOOLS:
            feature = _SERVER_TOOLS.get(kind, f"tool:{kind}")
            wanted.setdefault(feature, f"tools[{i}].type")
    if body.get("web_search_options") is not None:
        wanted.setdefault(WEB_SEARCH, "web_search_options")
    if body.get("audio") is not None:
        wanted.setdefault("audio_output", "audio")
    for modality in body.get("modalities") or ():
        if modality != "text":
            wanted.setdefault(f"{modality}_output", "modalities")
    tier = body.get("service_tier")
    if tier is not None and tier not in _PLAIN_TIERS:
        wanted.setdefault(f"service_tier:{tier}", "service_tier")
    return wanted


def priced_attempts(attempts: list[Attempt], features: dict[str, str]) -> list[Attempt]:
    """The attempts whose offers price every feature asked for.

    Raises:
        InvalidRequest: no attempt prices them all (naming the first unpriced field).
    """
    if not features:
        return attempts
    priced = [a for a in attempts if all(a.offer.price.prices(f) for f in features)]
    if priced:
        return priced
    missing = next(
        (f for f in features if not any(a.offer.price.prices(f) for a in attempts)),
        next(iter(features)),
    )
    param = features[missing]
    raise errors.InvalidRequest(
        f"`{param}` asks the provider for `{missing}`, which is billed beyond tokens and "
        "has no price here for this model: the gateway does not pass it through.",
        param=param,
    )
