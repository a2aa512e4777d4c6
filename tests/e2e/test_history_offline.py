"""`make dev` style: the local gateway with no provider key (the offline `mock/echo`)
serves a chat request naming a session through the official `openai` SDK, injecting its
history and saving the turn (separate module: the gateway fixture sets provider keys)."""

from __future__ import annotations

import openai

from tests.e2e.conftest import new_account
from tests.e2e.test_history_injection import SYSTEM, fake_prompt_tokens, session_with, stored, turn


def test_offline_mock_echo_works_with_a_session(offline: str) -> None:
    account = new_account()
    sid = session_with(offline, account, SYSTEM, *turn(1))
    client = openai.OpenAI(base_url=offline, api_key=account.secret, max_retries=0)
    answer = client.chat.completions.create(
        model="mock/echo",
        messages=[{"role": "user", "content": "echo this"}],
        extra_body={"session_id": sid},
    )
    assert answer.choices[0].message.content == "echo this"
    saved = stored(offline, account, sid)
    assert [m["content"] for m in saved[-2:]] == ["echo this", "echo this"]
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > fake_prompt_tokens([{"content": "echo this"}])
