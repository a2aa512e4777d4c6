"""`gatewayz dev`: the whole API on one local port, no Docker (docs/architecture.md, local run).

One ASGI server routes each request the way template.yaml routes it in API Gateway.
A buffered function is invoked through its real Lambda handler with a real API Gateway
REST proxy event; a streaming function (chat, behind the Lambda Web Adapter in AWS) gets
the request through its ASGI app, with the request context in `x-amzn-request-context`
as the adapter passes it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import json
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette

from gatewayz import errors, http
from gatewayz.dev import gateway_responses, image_files, openapi, samtemplate
from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import ModuleType

    from starlette.types import ASGIApp, Receive, Scope, Send

STAGE = "local"
API_GATEWAY_MAX_BODY = 10 * 1024 * 1024
_ADAPTER_HEADERS = frozenset({b"x-amzn-request-context", b"x-amzn-lambda-context"})


@record
class LocalFunction:
    """A function's app and Lambda handler, loaded from its folder."""

    group: str
    streaming: bool
    app: ASGIApp
    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    timeout_s: float = 3.0  # the function's `Timeout`, as Lambda would enforce it


def import_app(path: Path, name: str) -> ModuleType:
    """Import a function's `app.py` as module `name` (every function has an app.py)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_function(root: Path, function: samtemplate.Function) -> LocalFunction:
    """Load the function whose code is at `<root>/<CodeUri>`."""
    path = root / function.code_uri / "app.py"
    module = import_app(path, f"gatewayz_function_{function.group}")
    timeout = function.properties.get("Timeout", 3)
    return LocalFunction(
        function.group,
        function.streaming,
        module.app,
        module.handler,
        float(timeout) if isinstance(timeout, int | float) else 3.0,
    )


def load_functions(root: Path, template: samtemplate.Template) -> dict[str, LocalFunction]:
    """Every function that serves HTTP routes, by group."""
    return {
        group: load_function(root, function)
        for group, function in template.functions.items()
        if function.routes
    }


def request_context(
    method: str, path: str, resource: str, source_ip: str, user_agent: str
) -> dict[str, Any]:
    """The `requestContext` API Gateway puts in a REST proxy event."""
    now = time.time()
    return {
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": "127.0.0.1",
        "httpMethod": method,
        "identity": {"sourceIp": source_ip, "userAgent": user_agent},
        "path": f"/{STAGE}{path}",
        "protocol": "HTTP/1.1",
        "requestId": str(uuid.uuid4()),
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "requestTimeEpoch": int(now * 1000),
        "resourcePath": resource,
        "stage": STAGE,
    }


def rest_event(
    *,
    method: str,
    path: str,
    resource: str,
    headers: list[tuple[str, str]],
    query: str = "",
    body: bytes = b"",
    source_ip: str = "127.0.0.1",
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST (v1) Lambda proxy event, as API Gateway builds it."""
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    pairs = parse_qsl(query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for name, value in pairs:
        multi_query.setdefault(name, []).append(value)
    try:
        text, encoded = body.decode(), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    user_agent = next((v for k, v in headers if k.lower() == "user-agent"), "")
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": dict(pairs) or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": request_context(method, path, resource, source_ip, user_agent),
        "body": text if body else None,
        "isBase64Encoded": encoded,
    }


class LambdaContext:
    """The attributes of Lambda's context object that handlers read."""

    function_name = "gatewayz-local"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:gatewayz-local"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


class LocalGateway:
    """An ASGI app standing in for API Gateway in front of the functions."""

    def __init__(
        self,
        template: samtemplate.Template,
        functions: dict[str, LocalFunction],
        mounts: dict[str, ASGIApp] | None = None,
    ):
        self.routes = template.routes
        self.functions = functions
        # Local-only apps under a path prefix (the Stripe stand-in at /_stripe, images
        # stored without Supabase at /_images).
        self.mounts = {image_files.PREFIX: image_files.app, **(mounts or {})}
        self._matches: dict[tuple[str, str], tuple[samtemplate.Route, dict[str, str]] | None] = {}
        # The headers (CORS) API Gateway gives its own answers: no route, too large.
        self._no_route = gateway_responses.mappings(template, "MISSING_AUTHENTICATION_TOKEN")
        self._too_large = gateway_responses.mappings(template, "DEFAULT_4XX")

    def openapi_document(self) -> dict[str, Any]:
        """The OpenAPI document of every function behind this gateway."""
        apps = {group: function.app for group, function in self.functions.items()}
        return openapi.document(self.routes, apps)

    def match(self, method: str, path: str) -> tuple[samtemplate.Route, dict[str, str]] | None:
        """`samtemplate.match`, remembered: the routes never change while serving."""
        key = (method, path)
        if key not in self._matches:
            if len(self._matches) > 10_000:
                self._matches.clear()
            self._matches[key] = samtemplate.match(self.routes, method, path)
        return self._matches[key]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        for prefix, app in self.mounts.items():
            if scope["path"] == prefix or scope["path"].startswith(prefix + "/"):
                await app(
                    {**scope, "root_path": scope.get("root_path", "") + prefix}, receive, send
                )
                return
        if scope["method"] == "GET" and scope["path"] == "/":
            await _send_home(send, scope.get("query_string", b""))
            return
        if scope["method"] == "GET" and scope["path"] == openapi.PATH:
            await _send_json(send, self.openapi_document())
            return
        # API Gateway routes on the path as sent; `match` decodes the parameters itself.
        raw_path = scope.get("raw_path") or scope["path"].encode()
        matched = self.match(scope["method"], raw_path.decode("latin-1"))
        if matched is None:
            # API Gateway's answer for a path no function serves; a known path takes every
            # method (template.yaml), so its function's app answers a wrong one with a 405.
            where = f"{scope['method']} {errors.quote(raw_path.decode('latin-1'))}"
            err = errors.NotFound(f"Unknown path: {where}.")
            await _send_error(
                send, err, gateway_responses.headers_for(self._no_route, scope["headers"])
            )
            return
        route, params = matched
        function = self.functions[route.group]
        client = scope.get("client") or ("127.0.0.1", 0)
        if route.streaming:
            await self._proxy_asgi(function, route, scope, receive, send, client[0])
        else:
            await self._invoke(function, route, params, scope, receive, send, client[0])

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Start the streamed functions' apps as the Lambda Web Adapter does in INIT
        (their lifespan: the chat function's warm-up), and stop them on shutdown."""
        async with contextlib.AsyncExitStack() as started:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    for function in self.functions.values():
                        app = function.app
                        if function.streaming and isinstance(app, Starlette):
                            await started.enter_async_context(app.router.lifespan_context(app))
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    break
        await send({"type": "lifespan.shutdown.complete"})

    async def _invoke(
        self,
        function: LocalFunction,
        route: samtemplate.Route,
        params: dict[str, str],
        scope: Scope,
        receive: Receive,
        send: Send,
        source_ip: str,
    ) -> None:
        body = await _read_body(receive)
        if body is None:
            err = errors.RequestTooLarge("Request body exceeds 10 MB.")
            await _send_error(
                send, err, gateway_responses.headers_for(self._too_large, scope["headers"])
            )
            return
        event = rest_event(
            method=scope["method"],
            path=scope["path"],
            resource=route.path,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            query=scope["query_string"].decode("latin-1"),
            body=body,
            source_ip=source_ip,
            path_parameters=params,
        )
        # Mangum runs an event loop of its own, so the handler gets a thread, as in Lambda.
        result = await asyncio.to_thread(function.handler, event, LambdaContext())
        headers: list[tuple[bytes, bytes]] = []
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((name.encode(), str(v).encode()) for v in values)
        for name, value in (result.get("headers") or {}).items():
            headers.append((name.encode(), str(value).encode()))
        raw = result.get("body") or ""
        payload = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        await send(
            {"type": "http.response.start", "status": result["statusCode"], "headers": headers}
        )
        await send({"type": "http.response.body", "body": payload})

    async def _proxy_asgi(
        self,
        function: LocalFunction,
        route: samtemplate.Route,
        scope: Scope,
        receive: Receive,
        send: Send,
        source_ip: str,
    ) -> None:
        user_agent = dict(scope["headers"]).get(b"user-agent", b"").decode("latin-1")
        context = request_context(scope["method"], scope["path"], route.path, source_ip, user_agent)
        # The adapter sets these headers itself; a client's own copies must not survive.
        headers = [(k, v) for k, v in scope["headers"] if k not in _ADAPTER_HEADERS]
        headers.append((b"x-amzn-request-context", json.dumps(context).encode()))
        # The invocation's deadline, as Lambda would set it from the function's timeout.
        deadline_ms = round((time.time() + function.timeout_s) * 1000)
        lambda_context = {"request_id": str(uuid.uuid4()), "deadline": deadline_ms}
        headers.append((b"x-amzn-lambda-context", json.dumps(lambda_context).encode()))
        trusted = {**scope, "headers": headers, http.TRUSTS_CONTEXT_HEADER: True}
        await function.app(trusted, receive, send)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None past API Gateway's 10 MB limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > API_GATEWAY_MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_home(send: Send, query: bytes) -> None:
    """The dev server's front page: where a checkout or the billing portal lands the
    browser (PUBLIC_URL is this server under `gatewayz dev`)."""
    from urllib.parse import parse_qs

    outcome = parse_qs(query.decode("latin-1")).get("checkout", [""])[0]
    news = {
        "success": "Payment received: the credit appears in GET /v1/credits as soon as the"
        " webhook is in (a moment).",
        "cancel": "Checkout cancelled: nothing was charged.",
    }.get(outcome, "This is the local Gatewayz API; the README shows how to call it.")
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Gatewayz (local)</title>"
        f"<body style='font-family:system-ui;margin:3rem'><h1>Gatewayz (local)</h1><p>{news}</p>"
        "<p>API base URL: <code>/v1</code> · OpenAPI: <code>/openapi.json</code></p></body></html>"
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/html; charset=utf-8"),
                        (b"content-length", str(len(body)).encode())],
        }
    )  # fmt: skip
    await send({"type": "http.response.body", "body": body})


async def _send_error(
    send: Send, err: errors.GatewayError, extra: dict[str, str] | None = None
) -> None:
    # With a request id like every answer of a function (API Gateway's own errors carry one).
    headers = {**err.response_headers(), **(extra or {}), "x-request-id": "req_" + uuid.uuid4().hex}
    await _send_json(send, err.body(), err.status, headers)


async def _send_json(
    send: Send, payload: dict[str, Any], status: int = 200, extra: dict[str, str] | None = None
) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.extend((k.encode(), v.encode()) for k, v in (extra or {}).items())
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
