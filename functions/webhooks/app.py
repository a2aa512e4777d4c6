"""The webhooks function: Stripe webhooks, `POST /webhooks/stripe` (docs/api.md, webhooks).

The body is read raw: the signature covers its exact bytes.
"""

from fastapi import Request

from gatewayz.http import create_app, lambda_handler

app = create_app("webhooks")
handler = lambda_handler(app)


# Stripe signs the body instead of sending a bearer key. No response model: FastAPI
# would import pydantic.v1 to build one (bench/README.md, cold import).
@app.post("/webhooks/stripe", response_model=None, openapi_extra={"security": []})
async def stripe_webhook(request: Request) -> dict[str, object]:
    from gatewayz.billing import stripe_events

    signature = request.headers.get(stripe_events.SIGNATURE_HEADER)
    return stripe_events.receive(await request.body(), signature)
