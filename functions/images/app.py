"""The images function: image generation (POST /v1/images/generations) (docs/api.md, images).

Served through Mangum: an image answer is one JSON body, nothing to stream.
"""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gatewayz import openapi
from gatewayz.http import create_app, lambda_handler

router = APIRouter()


@router.post(
    "/v1/images/generations",
    summary="Create images from a prompt",
    responses={
        200: {
            "description": "OpenAI's images answer (`created`, `data` with `url` or "
            "`b64_json` and `revised_prompt`) with `usage.cost` (USD), `usage.images` and "
            "`provider` added.",
            "content": {"application/json": {}},
        }
    },
    openapi_extra=openapi.body(
        "ImageGenerationRequest",
        "gatewayz.images.request:ImageBody",
        "OpenAI's image generation request plus OpenRouter's `provider`; sizes, "
        "qualities, styles and `n` depend on the model.",
    ),
)
async def generate_images(request: Request) -> Response:
    from gatewayz.chat import idempotency
    from gatewayz.images import generate

    return await idempotency.guard(request, generate.SCOPES, lambda: generate.create(request))


app = create_app("images", [router])
handler = lambda_handler(app)
