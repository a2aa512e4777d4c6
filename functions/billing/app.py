"""The billing function: credits, transactions, usage, plans, Stripe checkout and portal,
subscription and trial (docs/api.md, billing). Routes only: each parses, calls the
`gatewayz.billing` function that does the work, and shapes the answer.
"""

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from gatewayz import openapi
from gatewayz.http import create_app, lambda_handler

app = create_app("billing")
handler = lambda_handler(app)
# No response models and no parameters of FastAPI's own: it would import pydantic.v1 at
# cold start to build them (bench/README.md, cold import).
PLAN = openapi.parameters(openapi.parameter("plan_id", "path", "the plan's id"))


# --- Billing reads, spending controls and plan admin: /v1/credits*, /v1/usage, /v1/plans,
# /v1/subscription, /v1/trial, /v1/billing/settings, /admin/plans*. Routes only; the
# package is imported on first use (cold start).


@app.get("/v1/credits", response_model=None)
def get_credits(request: Request) -> dict[str, Any]:
    from gatewayz.billing import account_credits
    from gatewayz.identity import principal

    owner = principal.from_request(request, account_credits.READ_SCOPES)
    return {"data": account_credits.summary(owner)}


@app.get("/v1/credits/transactions", response_model=None)
def list_transactions(request: Request) -> dict[str, Any]:
    from gatewayz.billing import transactions
    from gatewayz.identity import principal

    owner = principal.from_request(request, transactions.READ_SCOPES)
    return transactions.list_page(owner, request.query_params)


@app.get("/v1/usage", response_model=None)
def get_usage(request: Request) -> dict[str, Any] | Response:
    from gatewayz.billing import usage_report
    from gatewayz.identity import principal

    owner = principal.from_request(request, usage_report.READ_SCOPES)
    shape = usage_report.output_format(request.query_params.get("format"))
    found = usage_report.report(owner, request.query_params)
    if shape == "json":
        return usage_report.as_json(found)
    attachment = f'attachment; filename="{usage_report.filename(found)}"'
    return Response(usage_report.as_csv(found), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": attachment})  # fmt: skip


@app.get("/v1/plans", response_model=None)
def list_plans(request: Request) -> dict[str, Any]:
    from gatewayz.billing import plans
    from gatewayz.identity import principal

    principal.from_request(request, plans.READ_SCOPES)
    return plans.catalog()


@app.get("/v1/subscription", response_model=None)
def get_subscription(request: Request) -> dict[str, Any]:
    from gatewayz.billing import account_status
    from gatewayz.identity import principal

    owner = principal.from_request(request, account_status.READ_SCOPES)
    return {"data": account_status.subscription(owner)}


@app.get("/v1/trial", response_model=None)
def get_trial(request: Request) -> dict[str, Any]:
    from gatewayz.billing import account_status
    from gatewayz.identity import principal

    owner = principal.from_request(request, account_status.READ_SCOPES)
    return {"data": account_status.trial(owner)}


@app.get("/v1/billing/settings", response_model=None)
def get_billing_settings(request: Request) -> dict[str, Any]:
    from gatewayz.billing import billing_settings
    from gatewayz.identity import principal

    owner = principal.from_request(request, billing_settings.READ_SCOPES)
    return {"data": billing_settings.get(owner)}


@app.patch("/v1/billing/settings", response_model=None)
async def update_billing_settings(request: Request) -> dict[str, Any]:
    from gatewayz import jsonbody
    from gatewayz.billing import billing_settings
    from gatewayz.identity import principal

    owner = principal.from_request(request, billing_settings.WRITE_SCOPES)
    raw = await request.body()
    body = jsonbody.loads(raw) if raw.strip() else None
    return {"data": billing_settings.update(owner, body, request=request)}


@app.get("/admin/plans", response_model=None)
def admin_list_plans(request: Request) -> dict[str, Any]:
    from gatewayz.billing import plan_admin
    from gatewayz.identity import admin

    admin.operator(request)
    return plan_admin.list_plans()


@app.post("/admin/plans", status_code=201, response_model=None)
async def admin_create_plan(request: Request) -> dict[str, Any]:
    from gatewayz.billing import plan_admin
    from gatewayz.identity import admin

    actor = admin.operator(request)
    body = admin.object_body(await request.body())
    return {"data": plan_admin.create(body, actor=actor, request=request)}


@app.get("/admin/plans/{plan_id}", response_model=None, openapi_extra=PLAN)
def admin_get_plan(request: Request) -> dict[str, Any]:
    from gatewayz.billing import plan_admin
    from gatewayz.identity import admin

    admin.operator(request)
    return {"data": plan_admin.get(request.path_params["plan_id"])}


@app.patch("/admin/plans/{plan_id}", response_model=None, openapi_extra=PLAN)
async def admin_update_plan(request: Request) -> dict[str, Any]:
    from gatewayz.billing import plan_admin
    from gatewayz.identity import admin

    actor = admin.operator(request)
    body = admin.object_body(await request.body())
    plan_id = request.path_params["plan_id"]
    return {"data": plan_admin.update(plan_id, body, actor=actor, request=request)}


# --- end of billing reads, spending controls and plan admin ---


# --- Stripe: /v1/billing/checkout and /v1/billing/portal ------------------------------
@app.post("/v1/billing/checkout", response_model=None)
async def create_checkout(request: Request) -> JSONResponse:
    from gatewayz.billing import checkout

    return JSONResponse(checkout.create(request, await request.body()), status_code=201)


@app.post("/v1/billing/portal", response_model=None)
async def create_portal(request: Request) -> JSONResponse:
    from gatewayz.billing import portal

    return JSONResponse(portal.create(request, await request.body()), status_code=201)


# --- end of Stripe checkout and portal ---
