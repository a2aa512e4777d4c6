"""`POST /v1/responses`: the OpenAI Responses API over the providers' chat completions.

The request is translated into a chat completion request (`responses_request`) and
served by the chat path itself (`completions.complete`: authenticate, rate limit,
reserve, route, relay, settle), so it is billed, failed over and recorded exactly as a
chat completion is; only the answer is translated back: a whole chat completion into one
Response object (`responses_object`), a chat stream into the Responses API's events
(`responses_stream`). Stateless: nothing is stored.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gatewayz import errors, fastjson, jsonbody
from gatewayz.chat import completions, responses_object, responses_request
from gatewayz.chat.relay import Relay
from gatewayz.chat.responses_stream import ResponsesStream

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from gatewayz.chat.request import CompletionRequest

ENDPOINT = "responses"  # usage records' `endpoint`


async def create(request: Request) -> Response:
    """Serve one Responses API request.

    Raises:
        GatewayError: any refusal before the answer began (docs/api.md, errors).
    """
    read: list[responses_request.ResponsesRequest] = []

    def parse(raw: bytes) -> CompletionRequest:
        try:
            parsed = responses_request.parse(jsonbody.loads(raw))
        except RecursionError:
            raise errors.InvalidJSON("Request body is nested too deeply.") from None
        read.append(parsed)
        return parsed.chat

    try:
        answer = await completions.complete(request, chat=True, parse=parse, endpoint=ENDPOINT)
    except errors.GatewayError as exc:
        _rename_param(exc)
        raise
    parsed = read[0]
    response = responses_object.skeleton(
        responses_object.new_id("resp"), parsed.chat.model, parsed.echo
    )
    if isinstance(answer, Relay):
        return ResponsesStream(answer, response)
    return _translated(answer, response)


# Chat fields the chat path may name in a refusal, as the Responses request calls them.
_PARAMS = {
    "messages": "input",
    "response_format": "text.format",
    "max_completion_tokens": "max_output_tokens",
    "reasoning_effort": "reasoning.effort",
    "verbosity": "text.verbosity",
}


def _rename_param(exc: errors.GatewayError) -> None:
    """Name the field the client sent: `input`, not the `messages` it became (a message's
    index is not its input item's, so only `input`)."""
    if exc.param is None:
        return
    field = re.split(r"[.\[]", exc.param, maxsplit=1)[0]
    if field == "messages":
        exc.param = "input"
    elif field in _PARAMS:
        exc.param = _PARAMS[field] + exc.param[len(field) :]


def _translated(answer: Response, response: dict[str, Any]) -> Response:
    from starlette.responses import Response

    payload = fastjson.loads(bytes(answer.body))
    done = responses_object.from_chat(payload, response)
    return Response(fastjson.dumps(done), media_type="application/json")
