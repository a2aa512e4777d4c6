"""The referrals function: my referral code and stats, and applying a code (docs/api.md,
referrals). Routes only: each parses, calls `gatewayz.referrals`, and shapes the answer.
"""

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from gatewayz.http import create_app, lambda_handler

app = create_app("referrals")
handler = lambda_handler(app)


# No response model: FastAPI would import pydantic.v1 to build one (bench/README.md).
@app.get("/v1/referrals", response_model=None)
def get_referrals(request: Request) -> dict[str, Any]:
    from gatewayz.identity import principal
    from gatewayz.referrals import applying, summary

    caller = principal.from_request(request, applying.SCOPES)
    return summary.overview(caller, request.query_params)


@app.post("/v1/referrals/apply")
async def apply_code(request: Request) -> JSONResponse:
    from gatewayz import jsonbody
    from gatewayz.identity import principal
    from gatewayz.referrals import applying

    caller = principal.from_request(request, applying.SCOPES)
    raw = await request.body()
    body = jsonbody.loads(raw) if raw.strip() else None
    referral = applying.apply(caller, body, request=request)
    return JSONResponse({"data": referral}, status_code=201)
