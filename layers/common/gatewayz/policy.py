"""Access policy (DESIGN §3 step 2, §8): pure checks of what a key may do.

Each check raises the 403 that names its reason, so a client learns which rule refused
it. The client IP comes from API Gateway's request context, never from a header a client
could forge.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from gatewayz import errors

if TYPE_CHECKING:
    from gatewayz.auth import Caller

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def require_scope(caller: Caller, scope: str) -> None:
    """Raises ScopeDenied unless the key holds `scope` (`admin` holds every scope)."""
    if scope not in caller.scopes and "admin" not in caller.scopes:
        raise errors.ScopeDenied(f"This API key lacks the `{scope}` scope.")


def require_model(caller: Caller, model: str) -> None:
    """Raises ModelNotAllowed unless the key's allowlist admits `model`.

    An entry is a model id (`openai/gpt-4o`) or a family (`openai/*`).
    """
    allowed = caller.allowed_models
    if allowed is None:
        return
    for pattern in allowed:
        if pattern == model or (pattern.endswith("/*") and model.startswith(pattern[:-1])):
            return
    raise errors.ModelNotAllowed(f"This API key may not use the model `{model}`.", param="model")


def require_ip(caller: Caller, client_ip: str | None) -> None:
    """Raises IpNotAllowed unless `client_ip` is inside one of the key's CIDRs."""
    if caller.allowed_cidrs is None:
        return
    try:
        address = ipaddress.ip_address(client_ip or "")
    except ValueError:
        raise errors.IpNotAllowed("This API key is limited to certain IP addresses.") from None
    if not any(address in network for network in _networks(caller.allowed_cidrs)):
        raise errors.IpNotAllowed(f"This API key may not be used from {address}.")


def require_origin(caller: Caller, referer: str | None, origin: str | None) -> None:
    """Raises RefererNotAllowed unless the Origin (else the Referer) host is allowed.

    An entry is a host (`app.example.com`) or every subdomain of one (`*.example.com`).
    A key with an allowlist is a browser key: a request without either header is refused.
    """
    allowed = caller.allowed_referers
    if allowed is None:
        return
    host = _host(origin) or _host(referer)
    if host is None:
        raise errors.RefererNotAllowed("This API key requires a Referer or Origin header.")
    for entry in allowed:
        entry = entry.lower()
        if host == entry or (entry.startswith("*.") and host.endswith(entry[1:])):
            return
    raise errors.RefererNotAllowed(f"This API key may not be used from {host}.")


def _host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).hostname or None
    except ValueError:
        return None


@lru_cache(maxsize=1024)
def _networks(cidrs: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
