"""The stand-in's own pages and controls (not Stripe's API): the checkout page with its Pay
and Decline buttons, the billing portal page, and `/_local/…` controls for what only a
customer, a card network or time does in Stripe (paying, renewals, disputes, declines)."""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from gatewayz.dev.stripe_standin import checkout, forms, payments, subscriptions
from gatewayz.dev.stripe_standin.objects import Host, Obj, Reply, State, StripeError, integer

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request


TITLE = "Local Stripe stand-in (test mode)"
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
.note{{color:#8a5a00;background:#fff6e0;padding:.5rem .75rem;border-radius:6px}}
button{{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}}</style></head>
<body><h1>{title}</h1>
<p class="note">No real payment happens here: this page stands in for Stripe Checkout while
<code>STRIPE_SECRET_KEY</code> is unset.</p>
{content}</body></html>"""


def page(content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=TITLE, content=content), status)


def money(amount: int, currency: str) -> str:
    return f"{amount / 100:,.2f} {currency.upper()}"


def routes(standin: Host) -> list[Route]:
    def control(action: Callable[[State, Obj, dict[str, str]], Obj]) -> Callable[..., Any]:
        async def endpoint(request: Request) -> Response:
            params = forms.parse(await request.body())
            path = dict(request.path_params)
            reply = await _run(standin, request, lambda s: action(s, params, path))
            return Response(reply.body, reply.status, media_type="application/json")

        return endpoint

    async def pay_page(request: Request) -> Response:
        reply = await _run(
            standin, request, lambda s: s.get(request.path_params["id"], "checkout.session")
        )
        if reply.status != 200:
            return page(f"<p>{html.escape(reply.json()['error']['message'])}</p>", reply.status)
        return page(_pay_form(reply.json()))

    async def pay(request: Request) -> Response:
        params = forms.parse(await request.body())
        decline = params.get("card") == "decline"
        number = params.get("card_number")
        reply = await _run(
            standin,
            request,
            lambda s: checkout.pay(
                s,
                request.path_params["id"],
                decline=decline,
                card_number=number if isinstance(number, str) else None,
            ),
        )
        if "application/json" in request.headers.get("accept", ""):
            return Response(reply.body, reply.status, media_type="application/json")
        if reply.status != 200:
            message = html.escape(reply.json()["error"]["message"])
            return page(f"<p><strong>Not paid:</strong> {message}</p>", reply.status)
        session = reply.json()
        if session["success_url"]:
            target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])
            return RedirectResponse(target, 303)
        return page(
            f"<p><strong>Paid</strong> {money(session['amount_total'], session['currency'])}.</p>"
        )

    async def portal(request: Request) -> Response:
        ident = request.path_params["id"]
        reply = await _run(standin, request, lambda s: _portal_view(s, ident))
        if reply.status != 200:
            return page(f"<p>{html.escape(reply.json()['error']['message'])}</p>", reply.status)
        return page(_portal_html(reply.json()))

    async def portal_cancel(request: Request) -> Response:
        ident, sub_id = request.path_params["id"], request.path_params["sub"]
        reply = await _run(standin, request, lambda s: _portal_cancel(s, ident, sub_id))
        if reply.status != 200:
            return page(f"<p>{html.escape(reply.json()['error']['message'])}</p>", reply.status)
        return RedirectResponse(str(request.url_for("portal", id=ident)), 303)

    return [
        Route("/pay/{id}", pay_page, methods=["GET"]),
        Route("/_local/checkout/{id}/pay", pay, methods=["POST"]),
        Route("/portal/{id}", portal, methods=["GET"], name="portal"),
        Route("/_local/portal/{id}/subscriptions/{sub}/cancel", portal_cancel, methods=["POST"]),
        Route(
            "/_local/subscriptions/{id}/renew",
            control(lambda s, p, a: subscriptions.renew(s, a["id"], fail=p.get("fail") == "1")),
            methods=["POST"],
        ),
        Route(
            "/_local/charges/{id}/dispute",
            control(lambda s, p, a: payments.dispute(s, a["id"], integer(p, "amount", minimum=1))),
            methods=["POST"],
        ),
        Route("/_local/customers/{id}/decline", control(_decline), methods=["POST"]),
        Route("/_local/events/{id}/redeliver", _redeliver(standin), methods=["POST"]),
    ]


def base_url(request: Request) -> str:
    """Where the stand-in is served (its pages' URLs start here)."""
    return str(request.base_url).rstrip("/")


async def _run(standin: Host, request: Request, action: Callable[[State], Obj]) -> Reply:
    return await run_in_threadpool(standin.run, action, base_url=base_url(request))


def _decline(state: State, params: Obj, path: dict[str, str]) -> Obj:
    customer = state.get(path["id"], "customer")
    state.declining.add(customer["id"])
    return customer


def _redeliver(standin: Host) -> Callable[..., Any]:
    async def endpoint(request: Request) -> Response:
        ident = request.path_params["id"]
        try:
            delivered = await run_in_threadpool(standin.redeliver, ident)
        except StripeError as err:
            return Response(json.dumps(err.body()), err.status, media_type="application/json")
        body = {"id": ident, "delivered": delivered}
        return Response(json.dumps(body), 200, media_type="application/json")

    return endpoint


def _pay_form(session: Obj) -> str:
    amount = money(session["amount_total"], session["currency"])
    if session["status"] != "open":
        return f"<p>This checkout is {html.escape(session['status'])} ({amount}).</p>"
    what = "Subscribe" if session["mode"] == "subscription" else "Pay"
    action = f"../_local/checkout/{html.escape(session['id'])}/pay"
    off = session["total_details"]["amount_discount"]
    discount = f"<p>Discount: {money(off, session['currency'])}</p>" if off else ""
    return f"""<p>Checkout <code>{html.escape(session["id"])}</code></p>{discount}
<p style="font-size:1.5rem">{amount}</p>
<form method="post" action="{action}">
<button name="card" value="success">{what} {amount}</button>
<button name="card" value="decline">Decline (test card 4000 0000 0000 0002)</button>
</form>"""


def _portal_view(state: State, ident: str) -> Obj:
    session = state.get(ident, "billing_portal.session")
    subs = [
        obj
        for obj in state.objects.values()
        if obj["object"] == "subscription" and obj["customer"] == session["customer"]
    ]
    return {**session, "subscriptions": subs}


def _portal_cancel(state: State, ident: str, sub_id: str) -> Obj:
    session = state.get(ident, "billing_portal.session")
    sub = state.get(sub_id, "subscription")
    if sub["customer"] != session["customer"]:
        raise StripeError(404, f"No such subscription: '{sub_id}'", code="resource_missing")
    return subscriptions.update(state, sub_id, {"cancel_at_period_end": "true"})


def _portal_html(view: Obj) -> str:
    rows = []
    for sub in view["subscriptions"]:
        price = sub["items"]["data"][0]["price"]
        state = "cancels at period end" if sub["cancel_at_period_end"] else sub["status"]
        button = ""
        if sub["status"] != "canceled" and not sub["cancel_at_period_end"]:
            action = f"../_local/portal/{html.escape(view['id'])}/subscriptions/{sub['id']}/cancel"
            button = (
                f'<form method="post" action="{action}">'
                "<button>Cancel at period end</button></form>"
            )
        rows.append(
            f"<li><code>{html.escape(sub['id'])}</code>: "
            f"{money(price['unit_amount'], price['currency'])} / {price['recurring']['interval']},"
            f" {html.escape(state)}{button}</li>"
        )
    listed = "".join(rows) or "<li>No subscriptions.</li>"
    back = view["return_url"]
    link = f'<p><a href="{html.escape(back)}">Return</a></p>' if back else ""
    return f"<h2>Billing portal</h2><ul>{listed}</ul>{link}"
