"""A chat completion stream told as the Responses API's events.

`ResponsesStream` runs the chat path's `Relay` (which relays, meters, settles and ends
the stream on time exactly as for a chat stream) and rewrites what it sends, event by
event: `response.created` and `response.in_progress` first; each assistant message and
function call as an output item (`response.output_item.added`, its content part, its
`response.output_text.delta` / `response.function_call_arguments.delta` events, their
`.done` events, `response.output_item.done`); then `response.completed` (or
`response.incomplete` when the output was cut short) with its usage and cost. An error
mid-stream (an in-band chat error chunk) becomes `error` and `response.failed`. Each event
carries its `sequence_number`; there is no `data: [DONE]`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from gatewayz import fastjson
from gatewayz.chat import responses_object as objects
from gatewayz.chat.streaming import SSEDecoder

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send

    from gatewayz.chat.relay import Relay
    from gatewayz.chat.streaming import Event


_FAILED_CODES = {"rate_limit_exceeded": "rate_limit_exceeded"}


class ResponsesStream(Response):
    """The relay of a chat stream, its events translated on their way to the client."""

    def __init__(self, relay: Relay, response: dict[str, Any]) -> None:
        super().__init__(status_code=200, media_type="text/event-stream")
        self.relay = relay
        self.events = Translator(response)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        decoder = SSEDecoder()

        async def translated(message: Message) -> None:
            if message["type"] == "http.response.body":
                events = decoder.feed(message.get("body", b""))
                if not message.get("more_body", False):
                    events += decoder.flush()
                message = {**message, "body": b"".join(self.events.on(e) for e in events)}
            await send(message)

        await self.relay(scope, receive, translated)


class Translator:
    """Chat chunks in, Responses events out (as SSE bytes)."""

    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response
        self.sequence = 0
        self.started = False
        self.ended = False
        self.output: list[dict[str, Any]] = []  # finished items
        self.message: dict[str, Any] | None = None  # the open message item
        self.part: dict[str, Any] | None = None  # its open content part
        self.calls: dict[int, dict[str, Any]] = {}  # tool call index -> its item
        self.call: dict[str, Any] | None = None  # the open function call item
        self.finish_reason: object = None
        self.usage: dict[str, Any] | None = None

    def on(self, event: Event) -> bytes:
        """What the client gets for one event of the chat stream."""
        out = self._start()
        if self.ended:
            return out
        if event.data is None:  # a comment (keep-alive): passed on
            return out + event.raw + b"\n\n"
        if event.is_done:
            return out + self._end()
        chunk = event.json()
        if chunk is None:
            return out
        if isinstance(chunk.get("error"), dict):
            return out + self._fail(chunk["error"])
        if isinstance(chunk.get("model"), str):
            self.response["model"] = chunk["model"]
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                out += self._choice(choice)
        return out

    def _start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        return self._emit("response.created", response=self.response) + self._emit(
            "response.in_progress", response=self.response
        )

    def _choice(self, choice: dict[str, Any]) -> bytes:
        out = b""
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        if isinstance(delta.get("content"), str) and delta["content"]:
            out += self._text("output_text", delta["content"])
        if isinstance(delta.get("refusal"), str) and delta["refusal"]:
            out += self._text("refusal", delta["refusal"])
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                out += self._tool_call(call)
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        return out

    def _text(self, kind: str, text: str) -> bytes:
        out = self._close_call()
        if self.message is None:
            self.message = objects.message_item(objects.new_id("msg"), [], "in_progress")
            out += self._emit(
                "response.output_item.added",
                output_index=len(self.output),
                item=self.message,
            )
        if self.part is None or self.part["type"] != kind:
            out += self._close_part()
            self.part = objects.text_part("") if kind == "output_text" else objects.refusal_part("")
            out += self._emit("response.content_part.added", **self._where(), part=self.part)
        if kind == "output_text":
            self.part["text"] += text
            return out + self._emit(
                "response.output_text.delta", **self._where(), delta=text, logprobs=[]
            )
        self.part["refusal"] += text
        return out + self._emit("response.refusal.delta", **self._where(), delta=text)

    def _tool_call(self, delta: dict[str, Any]) -> bytes:
        out = b""
        index = delta.get("index", 0)
        index = index if isinstance(index, int) else 0
        function = delta.get("function")
        function = function if isinstance(function, dict) else {}
        item = self.calls.get(index)
        if item is None:
            out += self._close_message() + self._close_call()
            given, named = delta.get("id"), function.get("name")
            call_id = given if isinstance(given, str) else objects.new_id("call")
            name = named if isinstance(named, str) else ""
            item = objects.call_item(objects.new_id("fc"), call_id, name, "", "in_progress")
            self.calls[index] = self.call = item
            out += self._emit(
                "response.output_item.added", output_index=len(self.output), item=item
            )
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item["arguments"] += arguments
            out += self._emit(
                "response.function_call_arguments.delta",
                item_id=item["id"],
                output_index=self._index_of(item),
                delta=arguments,
            )
        return out

    def _index_of(self, item: dict[str, Any]) -> int:
        for index, done in enumerate(self.output):
            if done["id"] == item["id"]:
                return index
        return len(self.output)

    def _where(self) -> dict[str, Any]:
        assert self.message is not None
        return {
            "item_id": self.message["id"],
            "output_index": len(self.output),
            "content_index": len(self.message["content"]),
        }

    def _close_part(self) -> bytes:
        if self.part is None or self.message is None:
            return b""
        part, self.part = self.part, None
        if part["type"] == "output_text":
            out = self._emit(
                "response.output_text.done", **self._where(), text=part["text"], logprobs=[]
            )
        else:
            out = self._emit("response.refusal.done", **self._where(), refusal=part["refusal"])
        out += self._emit("response.content_part.done", **self._where(), part=part)
        self.message["content"].append(part)
        return out

    def _close_message(self) -> bytes:
        if self.message is None:
            return b""
        out = self._close_part()
        item, self.message = {**self.message, "status": "completed"}, None
        out += self._emit("response.output_item.done", output_index=len(self.output), item=item)
        self.output.append(item)
        return out

    def _close_call(self) -> bytes:
        if self.call is None:
            return b""
        item, self.call = self.call, None
        item["status"] = "completed"
        out = self._emit(
            "response.function_call_arguments.done",
            item_id=item["id"],
            output_index=len(self.output),
            name=item["name"],
            arguments=item["arguments"],
        )
        out += self._emit("response.output_item.done", output_index=len(self.output), item=item)
        self.output.append(dict(item))
        return out

    def _end(self) -> bytes:
        out = self._close_message() + self._close_call()
        self.ended = True
        done = objects.finish(self.response, self.output, self.finish_reason, self.usage)
        kind = "response.completed" if done["status"] == "completed" else "response.incomplete"
        return out + self._emit(kind, response=done)

    def _fail(self, error: dict[str, Any]) -> bytes:
        self.ended = True
        out = self._emit(
            "error",
            code=error.get("code"),
            message=str(error.get("message") or "The stream failed."),
            param=error.get("param"),
        )
        failed = {
            **objects.finish(self.response, self.output, None, self.usage),
            "status": "failed",
            # OpenAI's codes for a failed response are a fixed list (the SDKs check it):
            # ours is in the `error` event.
            "error": {
                "code": _FAILED_CODES.get(str(error.get("code")), "server_error"),
                "message": str(error.get("message") or "The stream failed."),
            },
        }
        failed.pop("completed_at", None)
        return out + self._emit("response.failed", response=failed)

    def _emit(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + fastjson.dumps(payload) + b"\n\n"
