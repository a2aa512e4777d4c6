"""`GET /_images/...` on the dev server: generated images kept on local disk when
`SUPABASE_URL` is unset (gatewayz/images/local_files.py signs the URLs it answers).

A URL whose signature is wrong, or that has expired, is a 403, as a Supabase signed URL
past its time is refused; an unknown file is a 404.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from gatewayz.images import local_files

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

PREFIX = local_files.PREFIX
_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one signed image URL (mounted at `PREFIX`: the path is the image's name)."""
    if scope["method"] not in ("GET", "HEAD"):
        return await _send(send, 405, "Only GET serves images.")
    name = scope["path"][len(PREFIX) + 1 :]
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    expires = query.get("expires", [""])[0]
    given = query.get("signature", [""])[0]
    path = local_files.verified(name, expires, given)
    if path is None:
        return await _send(send, 403, "This image URL is not valid or has expired.")
    data = path.read_bytes()
    headers = [
        (b"content-type", _TYPES[path.suffix.lstrip(".")].encode()),
        (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"private, max-age=3600"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else data})
    return None


async def _send(send: Send, status: int, message: str) -> None:
    kind = "invalid_request_error" if status < 500 else "api_error"
    body = json.dumps({"error": {"message": message, "type": kind, "param": None,
                                 "code": "image_url_invalid"}}).encode()  # fmt: skip
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
