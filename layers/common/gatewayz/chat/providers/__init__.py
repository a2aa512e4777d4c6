"""The provider registry (docs/architecture.md, step 6): which upstreams this deploy can call.

A provider is available when its API key is configured. With none configured (a local
run, a demo), the offline `mock` provider is the only one, so everything works without
a network. With `GATEWAYZ_MOCK=on` (`gatewayz dev`'s default) it is also available next
to the real ones, so a local run keeps its offline model when one key is set.
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


def available(settings: Settings, own_keys: dict[str, str] | None = None) -> dict[str, Upstream]:
    """The providers with a key, by name; `mock` too when `GATEWAYZ_MOCK=on`, and only
    `mock` when no provider has a key. Shared: read it, never change it.

    `own_keys` are the calling account's own keys by provider (bring-your-own-key): such
    a provider is called with the account's key, never with ours.
    """
    global _ours
    if not own_keys and _ours is not None and _ours[0] is settings:
        return _ours[1]  # every request without own keys asks the same of the same settings
    ready = {}
    for name, provider in REGISTRY.items():
        if own_keys and name in own_keys:
            ready[name] = Upstream(provider, provider.base_url(settings), own_keys[name], True)
        elif key := provider.api_key(settings):
            ready[name] = Upstream(provider, provider.base_url(settings), key)
    if not ready or settings.gatewayz_mock == "on":
        from gatewayz.chat.providers import mock

        offline = Upstream(mock.PROVIDER, mock.PROVIDER.default_base_url, "offline")
        ready = {**ready, mock.PROVIDER.name: offline}
    if not own_keys:
        _ours = (settings, ready)
    return ready


# The last answer without own keys, and the settings it was worked out from (settings are
# made once per process; tests that change them make new ones).
_ours: tuple[Settings, dict[str, Upstream]] | None = None
