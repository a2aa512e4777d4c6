"""The provider registry (docs/architecture.md, step 6): which upstreams this deploy can call.

A provider is available when its API key is configured. With none configured (a local
run, a demo), the offline `mock` provider is the only one, so everything works without
a network; it is never available next to a real one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatewayz.chat.providers import chutes, featherless, openrouter, portkey
from gatewayz.chat.providers.base import Provider, Upstream

if TYPE_CHECKING:
    from gatewayz.config import Settings

__all__ = ["REGISTRY", "Provider", "Upstream", "available"]

REGISTRY: dict[str, Provider] = {
    p.name: p
    for p in (openrouter.PROVIDER, portkey.PROVIDER, featherless.PROVIDER, chutes.PROVIDER)
}


def available(settings: Settings) -> dict[str, Upstream]:
    """The providers with a key, by name; only `mock` when no provider has one."""
    ready = {}
    for name, provider in REGISTRY.items():
        key = provider.api_key(settings)
        if key:
            ready[name] = Upstream(provider, provider.base_url(settings), key)
    if ready:
        return ready
    from gatewayz.chat.providers import mock

    return {mock.PROVIDER.name: Upstream(mock.PROVIDER, mock.PROVIDER.default_base_url, "offline")}
