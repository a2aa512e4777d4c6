"""A Supabase Storage stand-in on a real local socket: the REST API the gateway stores
generated images with (upload, sign) and the signed URL a client then fetches.

    POST /storage/v1/object/{bucket}/{path}       raw body; Bearer service key + apikey
    POST /storage/v1/object/sign/{bucket}/{path}  {"expiresIn": N} -> {"signedURL": ...}
    GET  /storage/v1/object/sign/{bucket}/{path}?token=...   the object, until it expires

The token is an HS256 JWT of `{"url": "bucket/path", "iat", "exp"}`, as Supabase signs
it; errors are Supabase's `{"statusCode", "error", "message"}`. `upload_status` other
than 200 makes every upload fail that way (a bucket that is full, a key revoked).
"""

from __future__ import annotations

import json
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import jwt

from tests.fakes.asgi_server import serve_asgi

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, MutableMapping

    Scope = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

SERVICE_KEY = "service-role-key-for-tests"
_OBJECT = "/storage/v1/object/"
_SIGN = "/storage/v1/object/sign/"


@dataclass
class StoredObject:
    data: bytes
    content_type: str


@dataclass
class FakeStorage:
    """The project's buckets, what they hold, and the requests received."""

    url: str = ""
    buckets: set[str] = field(default_factory=lambda: {"images"})
    objects: dict[str, StoredObject] = field(default_factory=dict)  # "bucket/path" -> object
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    upload_status: int = 200
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        self.requests.append((method, path, headers))
        if method == "GET" and path.startswith(_SIGN):
            query = parse_qs(scope.get("query_string", b"").decode())
            return await self._download(send, path[len(_SIGN) :], query.get("token", [""])[0])
        if method != "POST" or not path.startswith(_OBJECT):
            return await _error(send, 404, "not_found", "Route not found")
        if (
            headers.get("authorization") != f"Bearer {SERVICE_KEY}"
            or headers.get("apikey") != SERVICE_KEY
        ):
            return await _error(send, 403, "Unauthorized", "Invalid Compact JWS")
        if path.startswith(_SIGN):
            return await self._sign(send, path[len(_SIGN) :], body)
        return await self._upload(send, path[len(_OBJECT) :], body, headers)

    async def _upload(self, send: Send, key: str, body: bytes, headers: dict[str, str]) -> None:
        bucket = key.partition("/")[0]
        if bucket not in self.buckets:
            return await _error(send, 404, "Bucket not found", "Bucket not found")
        if self.upload_status != 200:
            return await _error(send, self.upload_status, "Internal", "upload failed")
        if key in self.objects and headers.get("x-upsert") != "true":
            return await _error(send, 409, "Duplicate", "The resource already exists")
        self.objects[key] = StoredObject(body, headers.get("content-type", ""))
        await _json(send, 200, {"Key": key, "Id": secrets.token_hex(16)})

    async def _sign(self, send: Send, key: str, body: bytes) -> None:
        expires_in = json.loads(body or b"{}").get("expiresIn")
        if key not in self.objects:
            return await _error(send, 404, "not_found", "Object not found")
        if not isinstance(expires_in, int) or expires_in < 1:
            return await _error(send, 400, "InvalidRequest", "expiresIn is required")
        now = int(time.time())
        token = jwt.encode(
            {"url": key, "iat": now, "exp": now + expires_in}, self.jwt_secret, "HS256"
        )
        await _json(send, 200, {"signedURL": f"/object/sign/{key}?token={token}"})

    async def _download(self, send: Send, key: str, token: str) -> None:
        try:
            claims = jwt.decode(token, self.jwt_secret, algorithms=["HS256"])
        except jwt.PyJWTError as exc:
            return await _error(send, 400, "InvalidJWT", str(exc))
        if claims.get("url") != key or key not in self.objects:
            return await _error(send, 400, "InvalidSignature", "The signature is invalid")
        stored = self.objects[key]
        headers = [(b"content-type", stored.content_type.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": stored.data})

    def expires_in(self, signed_url: str) -> int:
        """The lifetime (seconds) a signed URL was issued for."""
        token = parse_qs(signed_url.partition("?")[2])["token"][0]
        claims = jwt.decode(token, self.jwt_secret, algorithms=["HS256"])
        return int(claims["exp"]) - int(claims["iat"])


async def _json(send: Send, status: int, payload: object) -> None:
    body = json.dumps(payload).encode()
    await send(
        {"type": "http.response.start", "status": status,
         "headers": [(b"content-type", b"application/json")]}
    )  # fmt: skip
    await send({"type": "http.response.body", "body": body})


async def _error(send: Send, status: int, error: str, message: str) -> None:
    await _json(send, status, {"statusCode": str(status), "error": error, "message": message})


@contextmanager
def serve() -> Iterator[FakeStorage]:
    """Run the stand-in on 127.0.0.1 (a free port) in a thread; yield it."""
    fake = FakeStorage()
    with serve_asgi(fake) as port:
        fake.url = f"http://127.0.0.1:{port}"
        yield fake
