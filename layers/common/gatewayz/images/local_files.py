"""Generated images on local disk, for `gatewayz dev` without Supabase (docs/api.md, images).

Each image is a file under `<GATEWAYZ_HOME>/images/<account>/`, served by the dev server
at `/_images/<account>/<name>?expires=<unix time>&signature=<hex>`: an HMAC-SHA256 of the
path and expiry with a key derived from the API key pepper, so a URL works until it
expires, for whoever holds it (as a signed Supabase URL does), and cannot be forged
or extended.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import TYPE_CHECKING

from gatewayz import config
from gatewayz.record import record

if TYPE_CHECKING:
    from pathlib import Path

    from starlette.requests import Request

PREFIX = "/_images"
_NAME = re.compile(r"[0-9a-f-]{36}/[0-9A-Za-z_-]{1,80}-[0-9]{1,2}\.(png|jpg|webp)")


def directory() -> Path:
    """Where local images live (created on demand)."""
    path = config.home() / "images"
    path.mkdir(parents=True, exist_ok=True)
    return path


def base_url(request: Request) -> str:
    """This server as the client reached it: the dev server serves the images itself."""
    host = request.headers.get("host") or "127.0.0.1:8000"
    scheme = request.headers.get("x-forwarded-proto", "http")
    return f"{scheme}://{host}"


def signature(name: str, expires: int) -> str:
    """The URL's signature of `name` until `expires`."""
    key = hmac.new(config.key_hash_secret(), b"gatewayz local images", hashlib.sha256).digest()
    return hmac.new(key, f"{name}\n{expires}".encode(), hashlib.sha256).hexdigest()


def verified(name: str, expires: str, given: str, now: float | None = None) -> Path | None:
    """The file a URL names when its signature is right and it has not expired."""
    if not _NAME.fullmatch(name) or not expires.isdigit():
        return None
    if int(expires) < (time.time() if now is None else now):
        return None
    if not hmac.compare_digest(signature(name, int(expires)), given):
        return None
    path = directory() / name
    return path if path.is_file() else None


@record
class LocalStore:
    """Writes images under `directory()`; URLs on `base` (this dev server)."""

    base: str
    ttl_s: int

    async def put(self, name: str, data: bytes, content_type: str) -> str:
        path = directory() / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expires = int(time.time()) + self.ttl_s
        return f"{self.base}{PREFIX}/{name}?expires={expires}&signature={signature(name, expires)}"
