"""Access policy (docs/architecture.md): pure checks of what a key may do.

Each check raises the 403 that names its reason, so a client learns which rule refused
it. The client IP comes from API Gateway's request context, never from a header a client
could forge.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from gatewayz import errors

if TYPE_CHECKING:
    from gatewayz.identity.auth import Caller

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# A DNS name as browsers send it in Origin/Referer: letters, digits and hyphens, in labels
# of at most 63 that neither start nor end with a hyphen (IDNs arrive as punycode).
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def require_scope(caller: Caller, scope: str, *alternatives: str) -> None:
    """Raises ScopeDenied unless the key holds `scope` or one of `alternatives`
    (`admin` holds every scope)."""
    held = caller.scopes
    if scope in held or "admin" in held or any(other in held for other in alternatives):
        return
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
    raise errors.ModelNotAllowed(
        f"This API key may not use the model `{errors.quote(model)}`.", param="model"
    )


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

    An entry is a host (`app.example.com`) or every subdomain of one (`*.example.com`,
    which does not admit `example.com` itself), compared without regard to case.
    A key with an allowlist is a browser key: a request without either header is
    refused, and so is one whose header is not a plain http(s) URL (`_host`).
    """
    allowed = caller.allowed_referers
    if allowed is None:
        return
    header = origin or referer
    if not header:
        raise errors.RefererNotAllowed("This API key requires a Referer or Origin header.")
    host = _host(header)
    if host is None:
        raise errors.RefererNotAllowed(
            "This API key requires an http(s) Origin or Referer with a valid host."
        )
    for entry in allowed:
        entry = entry.strip().lower()
        if host == entry or (entry.startswith("*.") and host.endswith(entry[1:])):
            return
    raise errors.RefererNotAllowed(f"This API key may not be used from {host}.")


def _host(url: str) -> str | None:
    """The lower-cased host of an http(s) URL, or None for anything a browser might read
    differently than `urlsplit` does.

    Refused: other schemes; userinfo (`@`); backslashes before the query, which browsers
    read as `/` (so `https://evil.com\\@app.example.com` is evil.com to them,
    app.example.com to urlsplit; a browser's own Referer has none there, but may keep one
    in its query); whitespace and control characters, which parsers strip or keep at will;
    anything but a DNS name or an IP literal as the host; a malformed port.
    """
    before_query = url.partition("?")[0]
    if not url.isascii() or "\\" in before_query or any(c <= " " or c == "\x7f" for c in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc:
        return None
    host = parts.hostname
    if not host:
        return None
    if _HOSTNAME.fullmatch(host):
        return host
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


@lru_cache(maxsize=1024)
def _networks(cidrs: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
