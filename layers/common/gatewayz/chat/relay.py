"""Streaming a completion (docs/architecture.md, steps 6-8): the provider's SSE relayed event by
event, with no buffering, then the request settled.

The stream is opened and read up to its first event with content (for at most
`STREAM_KEEPALIVE_S`) before the client gets a byte, so a provider that fails that early
is failed over like any other; one silent longer gets the client's stream going with
`: keep-alive` comments until it speaks. Events pass on in order, each chunk in OpenAI's
shape (answer_shape.py: the catalog model id, OpenAI's finish reasons, no `usage` unless
the client asked); the usage chunk gets `usage.cost` (and is made up, estimated, when the
client asked and the provider sent none), a provider error or a broken stream becomes
one in-band error chunk, and `data: [DONE]` always ends the stream.

Every delivered token is paid for:
- a client that leaves, or stops reading for `STREAM_SEND_TIMEOUT_S`, is disconnected and
  still charged what the provider reports (the relay keeps reading, at most
  `STREAM_DRAIN_S`, for it);
- every `STREAM_PROGRESS_S` the stream notes on its hold what it delivered so far, so if
  the function dies the sweeper charges that instead of returning the hold;
- before the Lambda deadline (and before the hold expires) the relay ends the stream
  itself: it settles, then sends one in-band error chunk and `[DONE]`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from gatewayz import config, errors
from gatewayz.billing import credits
from gatewayz.billing.pricing import Usage
from gatewayz.chat import answer_shape, routing, upstream
from gatewayz.chat.call import limits
from gatewayz.chat.output_meter import OutputMeter
from gatewayz.chat.streaming import DONE, SSEDecoder, encode, error_chunk
from gatewayz.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from starlette.types import Message, Receive, Scope, Send

    from gatewayz.chat.call import Call
    from gatewayz.chat.streaming import Event
    from gatewayz.chat.upstream import Reply

# The reply, its chunks, the decoder, the events read so far, and a read still waiting
# (the provider was silent past STREAM_KEEPALIVE_S: the relay goes on waiting, saying so).
Opened = tuple[
    "Reply", "AsyncGenerator[bytes]", SSEDecoder, "list[Event]", "asyncio.Task[bytes | None] | None"
]
KEEPALIVE = b": keep-alive\n\n"


async def open_stream(attempt: routing.Attempt, call: Call) -> Opened:
    """Open a stream and read it up to its first event, or for STREAM_KEEPALIVE_S if
    the provider is silent that long: then the client's stream begins with keep-alive
    comments, and a failure before the first event is no longer failed over.

    Raises:
        Retryable: the provider failed before that first event (the client saw nothing).
    """
    body = call.begin(attempt)
    path = "/chat/completions" if call.request.chat else "/completions"
    response = await routing.open_response(attempt, path, body, stream=True, limits=limits())
    chunks: AsyncGenerator[bytes] = response.chunks()  # type: ignore[assignment]
    decoder = SSEDecoder()
    events: list[Event] = []
    failure: routing.Retryable | None = None
    pending: asyncio.Task[bytes | None] | None = None
    give_up = time.monotonic() + config.get_settings().stream_keepalive_s
    loop = asyncio.get_running_loop()
    try:
        while not any(_substantive(e) for e in events):
            # Eager: what has arrived already is read at once, with no loop round or timer.
            pending = asyncio.eager_task_factory(loop, _next(chunks))
            if not pending.done():
                await asyncio.wait({pending}, timeout=max(0.0, give_up - time.monotonic()))
                if not pending.done():
                    break
            chunk, pending = pending.result(), None
            if chunk is None:
                failure = routing.Retryable("the stream ended before its first event")
                break
            events += decoder.feed(chunk)
    except upstream.Timeout:
        failure = routing.Retryable("timeout before the first event", timeout=True)
    except upstream.Broken as exc:
        failure = routing.Retryable(f"stream broke before its first event: {exc}")
    except BaseException:  # cancelled: no read left running
        if pending is not None:
            pending.cancel()
        raise
    if failure is None and any((e.json() or {}).get("error") for e in events):
        failure = routing.Retryable("the stream began with an error")
    if failure is not None:
        await _close(response, chunks)
        raise failure
    return response, chunks, decoder, events, pending


async def _next(chunks: AsyncGenerator[bytes]) -> bytes | None:
    """The next chunk; None: the stream ended."""
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return None


async def _close(response: Reply, chunks: AsyncGenerator[bytes]) -> None:
    await chunks.aclose()
    await response.close()


def _substantive(event: Event) -> bool:
    """Whether the event says more than "the assistant is about to speak": until one does,
    the client has seen nothing and a failure can still move to the next provider."""
    if event.data is None:
        return False
    chunk = event.json()
    if chunk is None:
        return True
    if "error" in chunk or chunk.get("usage"):
        return True
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            return True
        delta = choice.get("delta")
        said = (
            {k: v for k, v in delta.items() if k != "role" and v} if isinstance(delta, dict) else {}
        )
        if said or choice.get("finish_reason") or choice.get("text"):
            return True
    return False


class Relay(Response):
    """A response that pumps one open upstream stream to the client, then settles."""

    def __init__(
        self,
        call: Call,
        response: Reply,
        chunks: AsyncGenerator[bytes],
        decoder: SSEDecoder,
        primed: list[Event],
        pending: asyncio.Task[bytes | None] | None = None,
    ) -> None:
        super().__init__(status_code=200, media_type="text/event-stream")
        self.call, self.response, self.chunks, self.decoder = call, response, chunks, decoder
        self.primed, self.pending = primed, pending
        self.spoke = False  # whether the provider has said anything yet (keep-alives till then)
        self.settings = config.get_settings()
        self.send: Send | None = None
        self.gone_at: float | None = None  # when the client left (time.monotonic())
        self.timer: asyncio.Timeout | None = None
        self.error: errors.GatewayError | None = None
        self.done = False
        self.usage: dict[str, Any] | None = None
        self.usage_sent = False
        self.finish_reason: str | None = None
        self.meter = OutputMeter()
        self.next_progress = time.monotonic() + self.settings.stream_progress_s
        self.progress_pieces = 0  # what the meter had at the last progress note
        self.out: list[bytes] = []  # events waiting for the next send
        self.task: asyncio.Task[Any] | None = None
        self.sending_since: float | None = None  # time.monotonic() of a send in progress
        self.send_stuck = False
        self.send_watch: asyncio.TimerHandle | None = None
        # The catalog id it is served as, never the provider's own (docs/api.md, answers).
        route = call.route
        self.chunk_id = call.request_id
        self.model = route.attempt.offer.model_id if route else call.request.model

    def init_headers(self, headers: Any = None) -> None:
        """None to work out: `__call__` sends the stream's own (Response would make a
        content-type and a content-length of 0 that nothing reads)."""
        self.raw_headers = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.send = send
        watcher = asyncio.create_task(self._watch(receive))
        self.task = asyncio.current_task()
        self._watch_sends()
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )
            await self._pump()
            await self._write(b"", more=False)
        finally:
            watcher.cancel()
            if self.pending is not None:  # a read still waiting: ended before closing
                self.pending.cancel()
                await asyncio.wait({self.pending})
            if self.send_watch is not None:
                self.send_watch.cancel()
            await _close(self.response, self.chunks)
            if not self.call.settled:  # ended early (an error, cancelled): settled blocking
                self._settle_blocking()
        if self.background is not None:
            await self.background()

    async def _pump(self) -> None:
        # Up to the first event that says something: the client's first token goes out
        # before the rest of the read that brought it is worked through.
        primed = iter(self.primed)
        for event in primed:
            self._on(event)
            if self.spoke:
                break
        if self.pending is not None:
            # Silent for STREAM_KEEPALIVE_S already: the stream begins with a keep-alive
            # now, not one period later (from here a failure is in-band, not failed over).
            self._emit(KEEPALIVE)
        try:
            # One timer for the whole stream: the deadline, or the drain bound once the
            # client has left (`_left` moves it).
            async with asyncio.timeout(self._remaining()) as self.timer:
                await self._flush()
                for event in primed:
                    self._on(event)
                await self._flush()
                await self._relay()
        except TimeoutError:
            if self.gone_at is None or self._past_deadline():
                self.error = errors.UpstreamTimeout(
                    "The stream reached the gateway's time limit and was ended; "
                    "what was sent is billed."
                )
        if self.error is None and not self.done and self.finish_reason is None:
            self.error = errors.UpstreamError("The provider's stream ended early.")
        ending = b""
        if self.error is not None:
            ending = error_chunk(
                self.error, chunk_id=self.chunk_id, model=self.model, chat=self.call.request.chat
            )
        elif self.call.request.include_usage and not self.usage_sent:
            # The provider put usage on a content chunk only, or sent none: OpenAI's usage
            # chunk still ends the stream (estimated from what was relayed, and marked so).
            ending = encode(self._usage_chunk(self.usage or self._estimated()))
        # Settled before the end reaches the client: once it has seen the last chunk, its
        # charge and usage record exist.
        await self._settle()
        self._emit(ending + DONE)
        await self._flush()

    async def _relay(self) -> None:
        while not self.done and self.error is None:
            try:
                chunk = await self._read()
            except upstream.Timeout:
                self.error = errors.UpstreamTimeout("The provider stopped answering mid-stream.")
                break
            except upstream.Broken:
                self.error = errors.UpstreamError("The provider's stream broke off.")
                break
            if chunk is None:
                break
            for event in self.decoder.feed(chunk):
                self._on(event)
                if self.done or self.error:
                    break
            await self._flush()  # what one read brought goes out in one send
            if time.monotonic() >= self.next_progress:
                self._progress()
        if not self.done and self.error is None:
            for event in self.decoder.flush():
                self._on(event)

    async def _read(self) -> bytes | None:
        """The next chunk (None: the stream ended). Until the provider says something, a
        `: keep-alive` comment goes out every STREAM_KEEPALIVE_S it stays silent, so
        proxies and API Gateway keep the connection; clients ignore comments."""
        if self.spoke and self.pending is None:
            return await _next(self.chunks)
        task = self.pending or asyncio.ensure_future(_next(self.chunks))
        self.pending = task  # cancelled on the way out if the stream ends meanwhile
        while not task.done():
            await asyncio.wait({task}, timeout=self.settings.stream_keepalive_s)
            if not task.done():
                self._emit(KEEPALIVE)
                await self._flush()
        self.pending = None
        return task.result()

    def _end(self) -> float:
        """When reading must stop (time.monotonic())."""
        deadline = self.call.deadline if self.call.deadline is not None else float("inf")
        if self.gone_at is None:
            return deadline
        return min(deadline, self.gone_at + self.settings.stream_drain_s)

    def _past_deadline(self) -> bool:
        return self.call.deadline is not None and time.monotonic() >= self.call.deadline

    def _on(self, event: Event) -> None:
        if event.data is None:  # a comment (keep-alive): pass it on
            self._emit(event.raw + b"\n\n")
            return
        if event.is_done:
            self.done = True
            return
        chunk = event.json()
        if chunk is None:
            self._emit(event.raw + b"\n\n")
            return
        if "error" in chunk:
            # Never the provider's own words: they may hold internals.
            self.error = errors.UpstreamError("The provider reported an error mid-stream.")
            return
        self.spoke = self.spoke or _substantive(event)
        answer_shape.shape(chunk, self.model)
        self._observe(chunk)
        if chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict):
            if self.call.request.include_usage:
                self._emit(encode(self._usage_chunk(chunk["usage"], chunk)))
                self.usage_sent = True
            return
        if not self.call.request.include_usage:
            # The gateway asks every provider for usage, to bill it; a client that did
            # not ask sees none (not even OpenAI's `"usage": null`).
            chunk.pop("usage", None)
        self._emit(encode(chunk))

    def _observe(self, chunk: dict[str, Any]) -> None:
        if self.call.upstream_id is None and isinstance(chunk.get("id"), str):
            self.call.upstream_id = self.chunk_id = chunk["id"]
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            if self.call.first_token is None:
                self.call.first_token = time.perf_counter()
            self.meter.choice(choice)
            if self.call.transcript is not None:  # a chat session's answer, to save
                self.call.transcript.observe(choice)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def _usage_chunk(
        self, usage: dict[str, Any], chunk: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        costs = self.call.usage_costs(Usage.from_openai(usage))
        base = chunk or {
            "id": self.chunk_id,
            "object": "chat.completion.chunk" if self.call.request.chat else "text_completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [],
        }
        return {**base, "usage": {**usage, **costs}}

    def _estimated(self) -> dict[str, Any]:
        """OpenAI's usage fields for what was relayed, marked estimated."""
        usage, _ = self._usage()
        prompt, completion = usage.prompt_tokens, usage.completion_tokens
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "estimated": True,
        }

    def _emit(self, data: bytes) -> None:
        self.out.append(data)

    async def _flush(self) -> None:
        if self.out:
            data, self.out = b"".join(self.out), []
            await self._write(data)

    async def _write(self, data: bytes, *, more: bool = True) -> None:
        if self.gone_at is not None or self.send is None:
            return
        message = {"type": "http.response.body", "body": data, "more_body": more}
        self.sending_since = time.monotonic()
        try:
            await self.send(message)
        except OSError:
            self._left()
        except asyncio.CancelledError:
            if not self.send_stuck:
                raise
            # `_watch_sends` ended the send of a client that stopped reading.
            assert self.task is not None
            self.task.uncancel()
            self._left()
        finally:
            self.sending_since = None

    def _watch_sends(self) -> None:
        """A client that stops reading makes a send wait: one stuck for
        `STREAM_SEND_TIMEOUT_S` ends, and the client counts as gone (charged what the
        provider reports). One timer per stream, checking a few times per timeout, costs
        less than a timeout around every send."""
        limit = self.settings.stream_send_timeout_s
        since = self.sending_since
        if since is not None and time.monotonic() - since >= limit and self.task is not None:
            self.send_stuck = True
            self.task.cancel()  # the task waits in that send: that is where it lands
            return
        self.send_watch = asyncio.get_running_loop().call_later(limit / 4, self._watch_sends)

    async def _watch(self, receive: Receive) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                self._left()
                return

    def _left(self) -> None:
        if self.gone_at is None:
            self.gone_at = time.monotonic()
            remaining = self._remaining()
            if self.timer is not None and remaining is not None:
                self.timer.reschedule(asyncio.get_running_loop().time() + remaining)

    def _remaining(self) -> float | None:
        """Seconds until reading must stop; None: no limit."""
        end = self._end()
        return None if end == float("inf") else max(0.0, end - time.monotonic())

    def _usage(self) -> tuple[Usage, bool]:
        """What the stream cost so far: the provider's count, else an estimate of what it
        delivered (marked estimated), else nothing."""
        if self.usage is not None:
            return Usage.from_openai(self.usage), False
        if self.meter.pieces:
            return self.call.estimated_usage(self.meter), True
        return Usage(), False

    def _progress(self) -> None:
        """Note on the hold what has been delivered, if anything new was."""
        self.next_progress = time.monotonic() + self.settings.stream_progress_s
        if self.meter.pieces == self.progress_pieces or self.call.settled:
            return
        self.progress_pieces = self.meter.pieces
        try:
            usage, _ = self._usage()
            credits.record_progress(self.call.hold, self.call.record(usage, status=200))
        except Exception:  # noqa: BLE001 - the stream goes on; the hold still bounds the loss
            get_logger().exception(
                "recording a stream's progress failed", extra={"request_id": self.call.request_id}
            )

    async def _settle(self) -> None:
        try:
            await self.call.settle(**self._settlement())
        except Exception:  # noqa: BLE001 - the stream is over; the sweeper ends the hold
            get_logger().exception(
                "settling a stream failed", extra={"request_id": self.call.request_id}
            )

    def _settle_blocking(self) -> None:
        try:
            self.call.settle_blocking(**self._settlement())
        except Exception:  # noqa: BLE001 - the stream is over; the sweeper ends the hold
            get_logger().exception(
                "settling a stream failed", extra={"request_id": self.call.request_id}
            )

    def _settlement(self) -> dict[str, Any]:
        """`Call.settle`'s arguments for what the stream delivered and how it ended."""
        usage, estimated = self._usage()
        return {
            "usage": usage,
            "status": 200,
            "finish_reason": self.finish_reason or ("error" if self.error else None),
            "error_code": self.error.code if self.error else None,
            "estimated": estimated,
        }
