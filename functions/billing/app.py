"""The billing function: credits, transactions, usage, plans, Stripe checkout and portal,
subscription and trial (docs/api.md, billing). Routes only: each parses, calls the
`gatewayz.billing` function that does the work, and shapes the answer.
"""

from fastapi import Request
from fastapi.responses import JSONResponse

from gatewayz.http import create_app, lambda_handler

app = create_app("billing")
handler = lambda_handler(app)


# --- Stripe: /v1/billing/checkout and /v1/billing/portal ------------------------------
@app.post("/v1/billing/checkout")
async def create_checkout(request: Request) -> JSONResponse:
    from gatewayz.billing import checkout

    return JSONResponse(checkout.create(request, await request.body()), status_code=201)


@app.post("/v1/billing/portal")
async def create_portal(request: Request) -> JSONResponse:
    from gatewayz.billing import portal

    return JSONResponse(portal.create(request, await request.body()), status_code=201)


# --- end of Stripe checkout and portal ---
