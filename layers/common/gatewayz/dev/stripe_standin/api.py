"""The Stripe stand-in's ASGI app: Stripe's REST API subset, its pages and local controls.

Requests are form-encoded as Stripe's clients send them, authenticated with a test-mode
secret key; answers are Stripe-shaped JSON with `Request-Id` and `Stripe-Version` headers.
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route

from gatewayz.dev.stripe_standin import catalog, checkout, forms, pages, payments, subscriptions
from gatewayz.dev.stripe_standin.objects import (
    API_VERSION,
    Host,
    Obj,
    Reply,
    State,
    StripeError,
    listing,
    text,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request
    from starlette.types import ASGIApp, Receive, Scope, Send

    Action = Callable[[State, Obj, dict[str, str]], Obj]


def _get(kind: str) -> Action:
    return lambda state, params, path: state.get(path["id"], kind)


def _listed(state: State, kind: str, url: str, params: Obj, **match: Any) -> Obj:
    found = [
        obj
        for obj in state.objects.values()
        if obj["object"] == kind and all(obj.get(k) == v for k, v in match.items() if v)
    ]
    found.sort(key=lambda obj: obj["created"], reverse=True)  # newest first, as Stripe lists
    return listing(url, found, params)


def _cards(state: State, params: Obj, path: dict[str, str]) -> Obj:
    customer = path.get("id") or text(params, "customer", required=True) or ""
    return listing("/v1/payment_methods", catalog.customer_cards(state, customer), params)


def _events(state: State, params: Obj, path: dict[str, str]) -> Obj:
    found = [e for e in reversed(state.events) if e["type"] == (params.get("type") or e["type"])]
    return listing("/v1/events", found, params)


ROUTES: list[tuple[str, str, Action]] = [
    ("POST", "/v1/customers", lambda s, p, _: catalog.create_customer(s, p)),
    (
        "GET",
        "/v1/customers",
        lambda s, p, _: _listed(s, "customer", "/v1/customers", p, email=p.get("email")),
    ),
    ("GET", "/v1/customers/{id}", _get("customer")),
    ("POST", "/v1/customers/{id}", lambda s, p, a: catalog.update_customer(s, a["id"], p)),
    ("GET", "/v1/customers/{id}/payment_methods", _cards),
    ("GET", "/v1/payment_methods", _cards),
    ("GET", "/v1/payment_methods/{id}", _get("payment_method")),
    ("POST", "/v1/products", lambda s, p, _: catalog.create_product(s, p)),
    ("GET", "/v1/products/{id}", _get("product")),
    ("POST", "/v1/prices", lambda s, p, _: catalog.create_price(s, p)),
    ("GET", "/v1/prices/{id}", _get("price")),
    ("POST", "/v1/coupons", lambda s, p, _: catalog.create_coupon(s, p)),
    ("GET", "/v1/coupons/{id}", _get("coupon")),
    ("POST", "/v1/checkout/sessions", lambda s, p, _: checkout.create_session(s, p)),
    ("GET", "/v1/checkout/sessions/{id}", _get("checkout.session")),
    (
        "GET",
        "/v1/checkout/sessions/{id}/line_items",
        lambda s, p, a: listing(
            f"/v1/checkout/sessions/{a['id']}/line_items", checkout.line_items(s, a["id"]), p
        ),
    ),
    ("POST", "/v1/checkout/sessions/{id}/expire", lambda s, p, a: checkout.expire(s, a["id"])),
    ("POST", "/v1/payment_intents", lambda s, p, _: payments.create_payment_intent(s, p)),
    ("GET", "/v1/payment_intents/{id}", _get("payment_intent")),
    ("GET", "/v1/charges/{id}", _get("charge")),
    ("POST", "/v1/refunds", lambda s, p, _: payments.create_refund(s, p)),
    ("GET", "/v1/refunds/{id}", _get("refund")),
    ("GET", "/v1/disputes/{id}", _get("dispute")),
    ("GET", "/v1/subscriptions/{id}", _get("subscription")),
    ("POST", "/v1/subscriptions/{id}", lambda s, p, a: subscriptions.update(s, a["id"], p)),
    ("DELETE", "/v1/subscriptions/{id}", lambda s, p, a: subscriptions.cancel(s, a["id"])),
    ("GET", "/v1/invoices/{id}", _get("invoice")),
    ("POST", "/v1/billing_portal/sessions", lambda s, p, _: subscriptions.create_portal(s, p)),
    ("GET", "/v1/events", _events),
    ("GET", "/v1/events/{id}", _get("event")),
]


def build(standin: Host) -> ASGIApp:
    """The ASGI app serving `standin` (HTTP only: it has nothing to start or stop)."""
    routes = [
        Route(path, _endpoint(standin, action), methods=[method]) for method, path, action in ROUTES
    ]
    routes.extend(pages.routes(standin))
    app = Starlette(routes=routes, exception_handlers={404: _unrecognized, 405: _unrecognized})

    async def http_only(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await app(scope, receive, send)

    return http_only


def _endpoint(standin: Host, action: Action) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        body = await request.body()
        denied = _authenticate(standin, request.headers.get("authorization", ""))
        if denied is not None:
            return _error(denied)
        raw = body if request.method != "GET" else request.url.query.encode()
        try:
            params = forms.parse(raw)
        except UnicodeDecodeError:
            return _error(StripeError(400, "The request body is not form-encoded text."))
        key = request.headers.get("idempotency-key") if request.method == "POST" else None
        path = dict(request.path_params)

        def act(state: State) -> Obj:
            return _expand(state, action(state, params, path), params.get("expand") or [])

        fingerprint = hashlib.sha256(request.url.path.encode() + b"?" + raw).hexdigest()
        reply = await run_in_threadpool(
            standin.run,
            act,
            base_url=pages.base_url(request),
            idempotency_key=key,
            fingerprint=fingerprint,
        )
        return _respond(reply, key)

    return endpoint


def _authenticate(standin: Host, header: str) -> StripeError | None:
    key = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    if not key:
        return StripeError(
            401,
            "You did not provide an API key. You need to provide your API key in the"
            " Authorization header, using Bearer auth"
            " (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        )
    expected = standin.api_key
    good = (
        secrets.compare_digest(key, expected)
        if expected
        else key.startswith(("sk_test_", "rk_test_"))
    )
    if not good:
        return StripeError(
            401,
            f"Invalid API Key provided: {key[:8]}{'*' * 8}{key[-4:]} (the local Stripe"
            " stand-in is test mode only: use an sk_test_ key)",
            code="api_key_invalid" if expected else "secret_key_required",
        )
    return None


def _expand(state: State, obj: Obj, paths: Any) -> Obj:
    """A copy of `obj` with the `expand[]` paths' ids replaced by their objects."""
    result = copy.deepcopy(obj)
    for path in paths if isinstance(paths, list) else [paths]:
        if isinstance(path, str):
            _expand_path(state, result, path.split("."))
    return result


def _expand_path(state: State, node: Any, parts: list[str]) -> None:
    if not parts or not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    if head == "data" and isinstance(node.get("data"), list):
        for item in node["data"]:
            _expand_path(state, item, rest)
        return
    if head == "line_items" and node.get("object") == "checkout.session":
        items = copy.deepcopy(state.private[node["id"]]["line_items"])
        node["line_items"] = listing(f"/v1/checkout/sessions/{node['id']}/line_items", items, {})
    value = node.get(head)
    if isinstance(value, str) and value in state.objects:
        node[head] = copy.deepcopy(state.objects[value])
    _expand_path(state, node.get(head), rest)


def _respond(reply: Reply, key: str | None) -> Response:
    headers = {"Request-Id": reply.request_id, "Stripe-Version": API_VERSION}
    if key is not None:
        headers["Idempotency-Key"] = key
        if reply.replayed:
            headers["Idempotent-Replayed"] = "true"
    return Response(reply.body, reply.status, headers, media_type="application/json")


async def _unrecognized(request: Request, exc: Exception) -> Response:
    """Stripe's answer for a path or method it does not serve (here: outside the subset)."""
    message = f"Unrecognized request URL ({request.method}: {request.url.path})."
    return _error(StripeError(404, message))


def _error(err: StripeError) -> Response:
    return Response(json.dumps(err.body()), err.status, media_type="application/json")
