"""The FastAPI app factory every function uses (docs/api.md, errors).

`create_app()` gives each function the same edges: the OpenAI error envelope for every
error (validation, 404, 405, 413, 415 and masked 500s), an `x-request-id` on every
response, headers a route leaves in `request.state.response_headers` (rate limits),
one structured log line per request, `GET /health`, and CORS: preflights answered and
every answer readable by the calling page (gatewayz/cors.py). Outside Lambda it also serves
its OpenAPI document at `/openapi.json` (gatewayz/openapi.py).
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from gatewayz import cors, errors, openapi
from gatewayz.logs import get_logger, request_line

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

    from fastapi import APIRouter
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def create_app(
    name: str,
    routers: Iterable[APIRouter] = (),
    *,
    health: bool = True,
    startup: Callable[[], Awaitable[None]] | None = None,
    direct: Iterable[str] = (),
) -> FastAPI:
    """Build the app of function `name` with the shared error contract and middleware;
    `startup` runs when a server that runs lifespan starts it (uvicorn behind the Lambda
    Web Adapter: the function's INIT phase). The `POST` routes at the paths in `direct`
    are served without FastAPI's routing, dependency solving and middleware (`_App`)."""
    app = _App(
        title=f"gatewayz-{name}",
        docs_url=None,
        redoc_url=None,
        openapi_url=openapi.PATH if openapi.served() else None,
        lifespan=functools.partial(_lifespan, startup=startup),
        # FastAPI's own OpenTelemetry bridge asks three providers per request whether
        # anyone configured them (~25 µs); we log and count with Powertools and EMF.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    # Built on the first request for it, not at cold start.
    app.openapi = functools.partial(openapi.document, app)  # type: ignore[method-assign]
    app.add_exception_handler(errors.GatewayError, _gateway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    if health:
        from gatewayz.health import router as health_router

        app.include_router(health_router)
    routers = list(routers)
    for router in routers:
        app.include_router(router)
    app.add_middleware(GatewayMiddleware, function=name)
    if direct:
        endpoints = _post_endpoints(routers, direct)
        app.direct = GatewayMiddleware(DirectRoutes(endpoints), function=name)
        app.direct_paths = frozenset(endpoints)
    return app


class _App(FastAPI):
    """FastAPI, with `POST` to a few hot paths served before its middleware stack.

    The chat function's billed routes take only the `Request` and raise `GatewayError`s,
    so FastAPI's router, dependency solving, exception middleware and exit stack buy them
    nothing but some 100 µs of CPU a request (bench/README.md), and the middleware around
    ours (Starlette's 500 page, FastAPI's telemetry and body-size layers, none of which
    acts on them: `GatewayMiddleware` answers every error itself) a wrapper of every
    message sent. Everything else, other methods on these paths included, takes the
    app's usual way."""

    direct: ASGIApp | None = None  # GatewayMiddleware(DirectRoutes(...)), set by create_app
    direct_paths: frozenset[str] = frozenset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] in self.direct_paths
            and scope["method"] == "POST"
            and self.direct is not None
        ):
            scope["app"] = self
            await self.direct(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class DirectRoutes:
    """The endpoints of `_App`'s hot paths, each called with the `Request` alone; inside
    `GatewayMiddleware`, which still gives these requests their id, headers, body limit,
    log line and 500s."""

    def __init__(self, endpoints: dict[str, Callable[[Request], Awaitable[Response]]]) -> None:
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self.endpoints[scope["path"]](_Request(scope, receive, send))
        except errors.GatewayError as exc:
            response = error_response(exc)
        await response(scope, receive, send)


class _Request(Request):
    """Starlette's `Request`, its body read straight from `receive`: Starlette's reads it
    through an async generator, which the event loop registers and finalizes (~1 % of a
    completion's instructions). It sets what Starlette's `stream()`, `json()` and
    `is_disconnected()` then read, as Starlette's own `body()` does (tests/unit/test_http.py
    pins that)."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            if self._stream_consumed:
                raise RuntimeError("Stream consumed")
            chunks: list[bytes] = []
            while not self._stream_consumed:
                message = await self.receive()
                if message["type"] == "http.request":
                    chunks.append(message.get("body", b""))
                    self._stream_consumed = not message.get("more_body", False)
                elif message["type"] == "http.disconnect":
                    self._is_disconnected = True
                    raise ClientDisconnect
            self._body = b"".join(chunks)
        return self._body


def _post_endpoints(
    routers: Iterable[APIRouter], paths: Iterable[str]
) -> dict[str, Callable[[Request], Awaitable[Response]]]:
    """The endpoint of the `POST` route at each of `paths`; each must take only the
    request, since nothing solves its dependencies on the direct path."""
    import inspect

    from fastapi.routing import APIRoute

    found = {}
    for path in paths:
        route = next(
            r
            for router in routers
            for r in router.routes
            if isinstance(r, APIRoute) and r.path == path and "POST" in (r.methods or ())
        )
        if list(inspect.signature(route.endpoint).parameters) != ["request"]:
            raise TypeError(f"{path}: a direct route's endpoint takes only `request`")
        found[path] = route.endpoint
    return found


@asynccontextmanager
async def _lifespan(
    app: FastAPI, *, startup: Callable[[], Awaitable[None]] | None
) -> AsyncIterator[None]:
    """Under a server that runs lifespan (uvicorn behind the adapter): `startup` first;
    close the upstream connection pool on shutdown."""
    if startup is not None:
        await startup()
    yield
    if "gatewayz.chat.upstream" in sys.modules:
        from gatewayz.chat.upstream import close_pool

        await close_pool()


def error_response(err: errors.GatewayError) -> JSONResponse:
    """The envelope of `err` as a response (the middleware adds `x-request-id`)."""
    return JSONResponse(err.body(), status_code=err.status, headers=err.response_headers())


# Set by a server that put `x-amzn-request-context` there itself (the local gateway).
TRUSTS_CONTEXT_HEADER = "gatewayz.trusts_context_header"
_CONTEXT = "gatewayz.request_context"


def request_context(scope: Scope) -> dict[str, Any] | None:
    """API Gateway's `requestContext` for this request, if it came through API Gateway.

    Under Mangum it is in the event. Under the Lambda Web Adapter it arrives as the
    `x-amzn-request-context` header, which the adapter sets itself; anywhere else a
    client could send that header, so it is only believed inside Lambda or when the
    local gateway vouches for it.
    """
    if _CONTEXT in scope:
        cached: dict[str, Any] | None = scope[_CONTEXT]
        return cached
    context: Any = None
    event = scope.get("aws.event")
    if isinstance(event, dict):
        context = event.get("requestContext")
    else:
        context = _adapter_header(scope, "x-amzn-request-context")
    scope[_CONTEXT] = context if isinstance(context, dict) else None
    return scope[_CONTEXT]  # type: ignore[no-any-return]


def lambda_deadline(scope: Scope) -> float | None:
    """When this invocation's Lambda time runs out (epoch seconds), if it runs in Lambda.

    The Lambda Web Adapter passes the invocation's context as `x-amzn-lambda-context`,
    its `deadline` in epoch milliseconds; believed only where `request_context` believes
    the adapter's headers.
    """
    context = _adapter_header(scope, "x-amzn-lambda-context")
    deadline = context.get("deadline") if isinstance(context, dict) else None
    if isinstance(deadline, int | float) and not isinstance(deadline, bool) and deadline > 0:
        return float(deadline) / 1000
    return None


def _adapter_header(scope: Scope, header: str) -> Any:
    """A JSON header the Lambda Web Adapter sets, when it can be believed: inside Lambda
    (the adapter replaces any client copy) or when the local gateway vouches for it."""
    value = request_headers(scope).get(header)
    if value is None or not (
        scope.get(TRUSTS_CONTEXT_HEADER) or "AWS_LAMBDA_FUNCTION_NAME" in os.environ
    ):
        return None
    from gatewayz import fastjson  # orjson: loaded by the first log line anyway

    try:
        return fastjson.loads(value.encode("latin-1"))  # the bytes as they came (UTF-8)
    except ValueError:
        return None


_HEADERS = "gatewayz.headers"


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers by (lower-case) name, the first of each as Starlette's
    `Headers` gives it; built once a request. Starlette's scans the whole list on every
    lookup, and raises and catches a KeyError in `get` for each header that is absent."""
    found: dict[str, str] | None = scope.get(_HEADERS)
    if found is None:
        found = scope[_HEADERS] = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in reversed(scope["headers"])
        }
    return found


def client_ip(request: Request) -> str | None:
    """The caller's IP as API Gateway saw it; the socket peer when there is no gateway.

    Never a client header such as X-Forwarded-For: IP allowlists would mean nothing.
    """
    context = request_context(request.scope)
    if context is not None:
        identity = context.get("identity")
        source = identity.get("sourceIp") if isinstance(identity, dict) else None
        return source if isinstance(source, str) else None
    return request.client.host if request.client else None


def request_id_of(scope: Scope) -> str:
    """Our id for this request: API Gateway's when there is one, else a fresh one.

    A client's own `x-request-id` is never trusted: usage rows are unique by this id.
    """
    context = request_context(scope)
    gateway_id = context.get("requestId") if context else None
    if isinstance(gateway_id, str) and gateway_id:
        return "req_" + gateway_id.replace("-", "")
    return "req_" + os.urandom(16).hex()  # 128 random bits; a uuid4 object cost more than its hex


class GatewayMiddleware:
    """Pure ASGI (no response buffering, so SSE streams pass through untouched)."""

    def __init__(self, app: ASGIApp, function: str) -> None:
        self.app = app
        self.function = function

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        exchange = _Exchange(scope, send)
        try:
            if cors.is_preflight(scope):
                await exchange.preflight()
                return
            refusal = _refuse_body(scope)
            if refusal is not None:
                await exchange.respond(refusal)
                return
            await self.app(scope, exchange.limit(receive), exchange.send)
        except Exception:  # noqa: BLE001 - the last line of defence: log, mask, never a bare 500
            get_logger().exception("unhandled error", extra={"request_id": exchange.request_id})
            internal = errors.InternalError(f"Internal error (request {exchange.request_id}).")
            await exchange.respond(internal)
        finally:
            request_line(
                {
                    "function": self.function,
                    "request_id": exchange.request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": exchange.status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                }
            )


class _Exchange:
    """One request/response: its id, its extra headers, and who answered first."""

    def __init__(self, scope: Scope, send: Send) -> None:
        self.request_id = request_id_of(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = self.request_id
        self.headers: dict[str, str] = state.setdefault("response_headers", {})
        self.cors = cors.response_headers(cors.origin_of(scope))
        self.status = 500
        self.started = False
        self.closed = False  # we answered for the app; whatever it sends later is dropped
        self._scope = scope
        self._send = send

    async def send(self, message: Message) -> None:
        if self.closed:
            return
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            headers = list(message.get("headers", []))
            headers.append((b"x-request-id", self.request_id.encode()))
            headers.extend((k.encode(), v.encode()) for k, v in self.headers.items())
            headers.extend((k.encode(), v.encode()) for k, v in self.cors.items())
            message = {**message, "headers": headers}
        await self._send(message)

    async def respond(self, err: errors.GatewayError) -> None:
        """Answer with `err` unless a response already began (then the stream just ends)."""
        if not self.started and not self.closed:
            await error_response(err)(self._scope, _no_body, self.send)
        self.closed = True

    async def preflight(self) -> None:
        """Answer a browser's preflight: 204, no body, nothing behind the path runs."""
        headers = [(k.encode(), v.encode()) for k, v in cors.preflight_headers().items()]
        await self.send({"type": "http.response.start", "status": 204, "headers": headers})
        await self.send({"type": "http.response.body", "body": b""})

    def limit(self, receive: Receive) -> Receive:
        """Count body bytes as they arrive (bodies without a Content-Length)."""
        limit = _max_body()
        seen = 0

        async def receive_limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # The app may turn any error raised while parsing into a 400, so answer
                    # here and tell it the client left.
                    await self.respond(
                        errors.RequestTooLarge(f"Request body exceeds {limit} bytes.")
                    )
                    return {"type": "http.disconnect"}
            return message

        return receive_limited


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _refuse_body(scope: Scope) -> errors.GatewayError | None:
    """Refuse, from the headers alone, a body that is too large or not JSON."""
    if scope["method"] not in BODY_METHODS:
        return None
    headers = request_headers(scope)
    length = headers.get("content-length")
    if length is not None and length.isascii() and length.isdigit() and int(length) > _max_body():
        return errors.RequestTooLarge(f"Request body exceeds {_max_body()} bytes.")
    has_body = (length is not None and length != "0") or "transfer-encoding" in headers
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if has_body and not (content_type == "application/json" or content_type.endswith("+json")):
        shown = errors.quote(content_type) or "none"
        return errors.UnsupportedMediaType(
            f"Content-Type must be application/json, got {shown}.", param="content-type"
        )
    return None


def _max_body() -> int:
    from gatewayz.config import get_settings

    try:
        return get_settings().max_request_bytes
    except errors.MissingConfiguration:
        return 10 * 1024 * 1024  # the API Gateway limit, whatever else is misconfigured


async def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.GatewayError)
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(validation_to_error(exc.errors()))


def validation_to_error(problems: Any) -> errors.InvalidRequest:
    """The first pydantic problem as a 400 naming the parameter (`messages[0].content`)."""
    first = problems[0] if problems else {"loc": (), "msg": "Invalid request", "type": ""}
    loc = [part for part in first.get("loc", ()) if part != "body"]
    param = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or None
    if first.get("type") == "json_invalid":
        return errors.InvalidJSON(f"Request body is not valid JSON: {first.get('msg')}.")
    if first.get("type") == "missing" and param is None:
        return errors.InvalidRequest("Request body is required.")
    message = str(first.get("msg", "Invalid value"))
    return errors.InvalidRequest(f"{message}: {param}" if param else message, param=param)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    where = f"{request.method} {errors.quote(request.url.path)}"
    err: errors.GatewayError
    if exc.status_code == 404:
        err = errors.NotFound(f"Unknown path: {where}.")
    elif exc.status_code == 405:
        err = errors.MethodNotAllowed(f"Method not allowed: {where}.")
    elif exc.status_code == 413:
        err = errors.RequestTooLarge(str(exc.detail))
    elif exc.status_code == 415:
        err = errors.UnsupportedMediaType(str(exc.detail))
    elif exc.status_code < 500:
        err = errors.InvalidRequest(str(exc.detail))
    else:
        err = errors.InternalError(f"Internal error (request {request.state.request_id}).")
    response = error_response(err)
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:
        response.headers["allow"] = _allowed(request)
    return response


def _allowed(request: Request) -> str:
    """Every method some route of this app takes on the path (Starlette's own `Allow`
    names only the first route whose path matched), and `OPTIONS`: the app answers
    browsers' preflights on every path (gatewayz/cors.py)."""
    from starlette.routing import Match

    routes = request.app.router.routes
    allowed = [
        method
        for method in ("DELETE", "GET", "PATCH", "POST", "PUT")
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]
    return ", ".join([*allowed, "OPTIONS"])


def lambda_handler(app: FastAPI) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point of a buffered function: Mangum over `app`.

    Mangum runs each invocation on the thread's current event loop; this makes sure there
    is one (a thread of the local gateway, or a process where `asyncio.run` already came
    and went, has none).
    """
    from mangum import Mangum

    mangum = Mangum(app, lifespan="off")

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            loop = asyncio.get_event_loop()
        except RuntimeError:
            loop = None
        if loop is None or loop.is_closed():
            asyncio.set_event_loop(asyncio.new_event_loop())
        result: dict[str, Any] = mangum(event, context)
        return result

    return handler
