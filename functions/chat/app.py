"""The chat function: completions, responses, embeddings, models and generations
(docs/architecture.md).

Deployed behind the AWS Lambda Web Adapter (`run.sh` serves `app` with uvicorn) so SSE
streams through API Gateway unbuffered; `handler` serves the same app through Mangum
for `sam local` and the API Gateway event tests.
"""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from gatewayz import openapi
from gatewayz.chat import warmup
from gatewayz.http import create_app, lambda_handler

router = APIRouter()
PUBLIC = {"security": []}
COMPLETION = {
    "description": "OpenAI's answer with `usage.cost` (USD) and `provider` added; with "
    "`stream: true`, server-sent events ending with `data: [DONE]`.",
    "content": {"application/json": {}, "text/event-stream": {}},
}


@router.post(
    "/v1/chat/completions",
    summary="Create a chat completion",
    responses={200: COMPLETION},
    openapi_extra=openapi.body(
        "ChatCompletionRequest",
        "gatewayz.chat.request:ChatBody",
        "OpenAI's chat completion request plus OpenRouter's `models` and `provider`; "
        "fields not listed pass through to the provider.",
    ),
)
async def chat_completions(request: Request) -> Response:
    from gatewayz.chat import completions, idempotency

    return await idempotency.guard(
        request, ("chat",), lambda: completions.complete(request, chat=True)
    )


@router.post(
    "/v1/completions",
    summary="Create a text completion (legacy)",
    responses={200: COMPLETION},
    openapi_extra=openapi.body(
        "CompletionRequest",
        "gatewayz.chat.request:CompletionBody",
        "OpenAI's legacy completion request; fields not listed pass through.",
    ),
)
async def legacy_completions(request: Request) -> Response:
    from gatewayz.chat import completions, idempotency

    return await idempotency.guard(
        request, ("chat",), lambda: completions.complete(request, chat=False)
    )


@router.post(
    "/v1/embeddings",
    summary="Create embeddings",
    responses={
        200: {
            "description": "OpenAI's embeddings list with `usage.cost` (USD) and `provider` "
            "added; each vector as floats, or base64 little-endian float32.",
            "content": {"application/json": {}},
        }
    },
    openapi_extra=openapi.body(
        "EmbeddingRequest",
        "gatewayz.chat.embedding_request:EmbeddingBody",
        "OpenAI's embeddings request plus OpenRouter's `models` and `provider`; "
        "fields not listed pass through to the provider.",
    ),
)
async def create_embeddings(request: Request) -> Response:
    from gatewayz.chat import embeddings, idempotency

    return await idempotency.guard(request, embeddings.SCOPES, lambda: embeddings.create(request))


@router.post(
    "/v1/responses",
    summary="Create a model response (the Responses API)",
    responses={
        200: {
            "description": "OpenAI's Response object with `usage.cost` (USD) and `provider` "
            "added; with `stream: true`, the Responses API's server-sent events ending with "
            "`response.completed`. Stateless: nothing is stored.",
            "content": {"application/json": {}, "text/event-stream": {}},
        }
    },
    openapi_extra=openapi.body(
        "ResponseRequest",
        "gatewayz.chat.responses_request:ResponsesBody",
        "OpenAI's Responses API request (stateless), served over the providers' chat "
        "completions, plus OpenRouter's `models` and `provider`.",
    ),
)
async def create_response(request: Request) -> Response:
    from gatewayz.chat import idempotency, responses

    return await idempotency.guard(request, ("chat",), lambda: responses.create(request))


@router.get(
    "/v1/models",
    summary="List the models this gateway serves",
    openapi_extra={
        **PUBLIC,
        "parameters": [
            openapi.parameter(
                "supported_parameters", "query", "comma list: models supporting every one"
            ),
            openapi.parameter(
                "input_modalities", "query", "comma list: models accepting every one"
            ),
            openapi.parameter(
                "output_modalities", "query", "comma list: models producing any one; `all`: any"
            ),
        ],
    },
)
async def list_models(request: Request) -> JSONResponse:
    from gatewayz.chat import listing

    query = request.query_params
    served = listing.list_served(
        supported_parameters=query.get("supported_parameters"),
        input_modalities=query.get("input_modalities"),
        output_modalities=query.get("output_modalities"),
    )
    return JSONResponse(served, headers={"cache-control": "public, max-age=60"})


@router.get(
    "/v1/models/{model_id:path}",
    summary="Describe one model",
    openapi_extra={
        **PUBLIC,
        "parameters": [openapi.parameter("model_id", "path", "the model's catalog id")],
    },
)
async def get_model(request: Request) -> JSONResponse:
    from gatewayz.chat import listing

    described = listing.describe(request.path_params["model_id"])
    return JSONResponse(described, headers={"cache-control": "public, max-age=60"})


@router.get(
    "/v1/generation",
    summary="One request of this account: tokens, cost, timing",
    openapi_extra={
        "parameters": [
            openapi.parameter(
                "id", "query", "the request id (`x-request-id`, a usage row's)", required=True
            )
        ]
    },
)
async def generation(request: Request) -> JSONResponse:
    from gatewayz import errors
    from gatewayz.chat import generations
    from gatewayz.identity import access

    # No rate-limit call here carries news of a changed key, so the key is looked up
    # fresh: the route reads the database anyway, and a revoked key must read nothing.
    caller = access.authorize(request, generations.SCOPES, fresh=True)
    request_id = request.query_params.get("id")
    if request_id is None:
        raise errors.InvalidRequest("The query parameter `id` is required.", param="id")
    return JSONResponse(generations.lookup(caller, request_id))


# Behind the Lambda Web Adapter the app starts during INIT: the cold path is paid there.
# The billed routes skip FastAPI's routing and dependency solving (gatewayz/http.py).
DIRECT = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")
app = create_app("chat", [router], startup=warmup.prepare, direct=DIRECT)
handler = lambda_handler(app)
