"""The coupons function: coupon redemption and coupon admin (docs/api.md, coupons).
Routes only: each parses, calls the `gatewayz.coupons` function that does the work, and
shapes the answer; the package is imported on first use (cold start).
"""

from typing import Any

from fastapi import Request

from gatewayz import openapi
from gatewayz.http import create_app, lambda_handler

app = create_app("coupons")
handler = lambda_handler(app)
# No response models and no parameters of FastAPI's own: it would import pydantic.v1 at
# cold start to build them (bench/README.md, cold import).
COUPON = openapi.parameters(openapi.parameter("coupon_id", "path", "the coupon's id"))


@app.post("/v1/coupons/redeem", status_code=201, response_model=None)
async def redeem(request: Request) -> dict[str, Any]:
    from gatewayz import jsonbody
    from gatewayz.coupons import redemption
    from gatewayz.identity import principal

    caller = principal.from_request(request, redemption.SCOPES)
    raw = await request.body()
    body = jsonbody.loads(raw) if raw.strip() else None
    return {"data": redemption.redeem(caller, body, request=request)}


@app.get("/v1/coupons/redemptions", response_model=None)
def list_redemptions(request: Request) -> dict[str, Any]:
    from gatewayz.coupons import redemption
    from gatewayz.identity import principal

    caller = principal.from_request(request, redemption.SCOPES)
    return redemption.list_redemptions(caller, request.query_params)


@app.get("/admin/coupons", response_model=None)
def admin_list_coupons(request: Request) -> dict[str, Any]:
    from gatewayz.coupons import admin as coupons
    from gatewayz.identity import admin

    admin.operator(request)
    return coupons.list_coupons(request.query_params)


@app.post("/admin/coupons", status_code=201, response_model=None)
async def admin_create_coupon(request: Request) -> dict[str, Any]:
    from gatewayz.coupons import admin as coupons
    from gatewayz.identity import admin

    actor = admin.operator(request)
    body = admin.object_body(await request.body())
    return {"data": coupons.create(body, actor=actor, request=request)}


@app.get("/admin/coupons/{coupon_id}", response_model=None, openapi_extra=COUPON)
def admin_get_coupon(request: Request) -> dict[str, Any]:
    from gatewayz.coupons import admin as coupons
    from gatewayz.identity import admin

    admin.operator(request)
    return {"data": coupons.get(request.path_params["coupon_id"])}


@app.patch("/admin/coupons/{coupon_id}", response_model=None, openapi_extra=COUPON)
async def admin_update_coupon(request: Request) -> dict[str, Any]:
    from gatewayz.coupons import admin as coupons
    from gatewayz.identity import admin

    actor = admin.operator(request)
    body = admin.object_body(await request.body())
    coupon_id = request.path_params["coupon_id"]
    return {"data": coupons.update(coupon_id, body, actor=actor, request=request)}


@app.delete("/admin/coupons/{coupon_id}", response_model=None, openapi_extra=COUPON)
def admin_deactivate_coupon(request: Request) -> dict[str, Any]:
    from gatewayz.coupons import admin as coupons
    from gatewayz.identity import admin

    actor = admin.operator(request)
    coupon_id = request.path_params["coupon_id"]
    return {"data": coupons.deactivate(coupon_id, actor=actor, request=request)}


@app.get("/admin/coupons/{coupon_id}/analytics", response_model=None, openapi_extra=COUPON)
def admin_coupon_analytics(request: Request) -> dict[str, Any]:
    from gatewayz.coupons import admin as coupons
    from gatewayz.identity import admin

    admin.operator(request)
    return {"data": coupons.analytics(request.path_params["coupon_id"])}
