"""A chat request's new turn in its session: the client's new messages and the answer,
saved in the statement that settles the request (docs/api.md, chat history).

Why there: on Lambda, work after a response's last byte may never run (the environment
freezes), so the save can neither be fire-and-forget after the answer nor a statement of
its own before the last byte (one more round trip on every session request). The relay
and the non-streamed path settle before the answer's end reaches the client
(chat/relay.py, chat/completions.py); `credits.settle(also=...)` evaluates
`chat_history_save(...)` in that same SELECT: no extra round trip, and the turn commits
exactly when the charge does. `chat_history_save` catches its own failures (the session
deleted meanwhile, say) so saving can never fail or undo a settlement; it returns -1 and
the gateway logs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gatewayz.history import records
from gatewayz.logs import get_logger

SAVE = "chat_history_save(%s::uuid, %s::uuid, %s::uuid, %s::bigint, %s::jsonb)"


@dataclass
class Transcript:
    """What a chat request adds to its session, and the answer as it arrives."""

    session_id: str
    account_id: str
    user_id: str
    parent_id: int | None  # the thread's newest message when the history was read
    new_messages: list[dict[str, Any]]  # the client's, to save before the answer
    request_id: str
    injected_messages: int = 0
    injected_tokens: int = 0
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)

    def observe(self, choice: dict[str, Any]) -> None:
        """One streamed choice chunk: the first choice's delta is the answer so far."""
        if choice.get("index", 0) != 0 or not isinstance(delta := choice.get("delta"), dict):
            return
        if isinstance(content := delta.get("content"), str):
            self.text.append(content)
        if isinstance(refusal := delta.get("refusal"), str):
            self.refusal.append(refusal)
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._tool_call_piece(call)

    def answered(self, choices: list[dict[str, Any]]) -> None:
        """A non-streamed answer: its first choice's message."""
        message = choices[0].get("message") if choices else None
        if not isinstance(message, dict):
            return
        if isinstance(message.get("content"), str):
            self.text.append(message["content"])
        if isinstance(message.get("refusal"), str):
            self.refusal.append(message["refusal"])
        for i, call in enumerate(message.get("tool_calls") or ()):
            if isinstance(call, dict):
                self.tool_calls[i] = call

    def statement(self, model: str) -> tuple[str, tuple[Any, ...]]:
        """The save, as an expression for `credits.settle(also=...)`."""
        from psycopg.types.json import Jsonb

        turn = [records.stored(m, request_id=self.request_id) for m in self.new_messages]
        answer = self._answer()
        if answer is not None:
            turn.append(records.stored(answer, model=model, request_id=self.request_id))
        params = (self.session_id, self.account_id, self.user_id, self.parent_id, Jsonb(turn))
        return SAVE, params

    def saved(self, result: Any) -> None:
        """Log a save the database refused (the answer itself was delivered and billed)."""
        if result == -1:
            get_logger().error(
                "chat history not saved",
                extra={"request_id": self.request_id, "session_id": self.session_id},
            )

    def _answer(self) -> dict[str, Any] | None:
        calls = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        if not self.text and not calls and not self.refusal:
            return None
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.text) or None}
        if calls:
            message["tool_calls"] = calls
        if self.refusal:
            message["refusal"] = "".join(self.refusal)
        return message

    def _tool_call_piece(self, piece: dict[str, Any]) -> None:
        """Streamed tool calls arrive in pieces by index: the id, name, then arguments."""
        index = piece.get("index", 0)
        index = index if isinstance(index, int) else 0
        call = self.tool_calls.setdefault(
            index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
        )
        if isinstance(piece.get("id"), str):
            call["id"] = piece["id"]
        function = piece.get("function")
        if isinstance(function, dict):
            for key in ("name", "arguments"):
                if isinstance(function.get(key), str):
                    call["function"][key] += function[key]
