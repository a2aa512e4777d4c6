"""A provider's answer the database cannot store as sent, on a request naming a chat
session, through the `openai` SDK against the running gateway (fake providers): a lone
UTF-16 surrogate (a token that split an emoji, which providers send) is delivered,
charged once with its usage record, and saved as U+FFFD, never a failed settlement that
leaves the answer unpaid. A stream without a session meters it too (the meter that
estimates delivered output once crashed on it, breaking the stream)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from tests.e2e.conftest import MODEL, ledger_usage
from tests.fakes.openai_upstream import Behaviour

if TYPE_CHECKING:
    import openai

    from tests.e2e.conftest import Account, Upstreams

SPLIT_EMOJI = "smile \ud83d"  # the first half of 😀 without its second


def session_of(gateway: str, account: Account) -> str:
    headers = {"authorization": f"Bearer {account.secret}"}
    with httpx.Client(base_url=gateway, headers=headers, timeout=10) as http:
        return str(http.post("/chat/sessions", json={}).json()["data"]["id"])


def saved(gateway: str, account: Account, sid: str) -> list[tuple[str, object]]:
    headers = {"authorization": f"Bearer {account.secret}"}
    with httpx.Client(base_url=gateway, headers=headers, timeout=10) as http:
        reply = http.get(f"/chat/sessions/{sid}/messages")
    assert reply.status_code == 200
    return [(m["role"], m["content"]) for m in reply.json()["data"]]


@pytest.mark.parametrize("stream", [False, True])
def test_a_lone_surrogate_in_the_answer_is_charged_and_saved(
    gateway: str, client: openai.OpenAI, account: Account, upstreams: Upstreams, stream: bool
) -> None:
    sid = session_of(gateway, account)
    upstreams.primary.enqueue(Behaviour(content=SPLIT_EMOJI))
    before = account.balance()
    asked = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        chunks = list(
            client.chat.completions.create(
                **asked,  # type: ignore[call-overload]
                stream=True,
                extra_body={"session_id": sid},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        answer = client.chat.completions.create(
            **asked,  # type: ignore[call-overload]
            extra_body={"session_id": sid},
        )
        text = answer.choices[0].message.content
    assert text == SPLIT_EMOJI
    (charged,) = ledger_usage(account.account_id)
    assert charged[0] < 0
    assert before - account.balance() == -charged[0]
    assert saved(gateway, account, sid) == [("user", "hi"), ("assistant", "smile \ufffd")]


def test_a_lone_surrogate_in_a_stream_without_a_session_is_metered_and_charged(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(content=SPLIT_EMOJI, usage_in_stream=False))
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == SPLIT_EMOJI
    (charged,) = ledger_usage(account.account_id)
    assert charged[0] < 0  # no usage from the provider: the meter's estimate is charged
