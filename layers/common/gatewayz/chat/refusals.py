"""A provider's refusal of the client's request (its 400/413/422), as the client sees it.

The provider's words are about the client's request, so they are passed on, with its
`param`; but trimmed, and stripped of anything that looks like a key, a bearer token, a
URL or a host name (a provider may quote what it was sent, or where it runs).
"""

from __future__ import annotations

import json
import re

from gatewayz import errors

MAX_UPSTREAM_MESSAGE = 300
# What must never reach a client from a provider's words: keys (ours or anyone's), bearer
# tokens, and URLs or host names that reveal where we call.
_SECRETS = re.compile(
    r"(?i)\bbearer\s+\S+|\b(?:sk|gw_live|gw_test|pk|rk)[-_][A-Za-z0-9_\-*.]{6,}"
    r"|\b[a-z][a-z0-9+.\-]*://\S+"
    r"|\b(?:[a-z0-9\-]+\.)+(?:internal|local|localhost|com|net|io|ai|org|dev|cloud)(?::\d+)?\b"
    r"|\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"
)


def upstream_refusal(body: bytes, api_key: str) -> tuple[str, str | None]:
    """The provider's own message for a refused request (about the client's request, so
    it is passed on), trimmed and stripped of anything like a key or an internal host,
    and the `param` it named."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    param = error.get("param") if isinstance(error, dict) else None
    text = str(message) if message else "invalid request"
    if api_key:
        text = text.replace(api_key, "[redacted]")
    text = " ".join(_SECRETS.sub("[redacted]", text).split())
    if len(text) > MAX_UPSTREAM_MESSAGE:
        text = text[:MAX_UPSTREAM_MESSAGE] + "..."
    return text, errors.quote(param) if isinstance(param, str) and param else None
