"""Two chat requests on one session at once, through the `openai` SDK against the running
gateway (fake providers): both read the same history, both are charged, and both turns
are saved whole, each a branch after the message both read (never interleaved)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import httpx

from tests.e2e.conftest import MODEL, ledger_usage
from tests.fakes.openai_upstream import Behaviour

if TYPE_CHECKING:
    import openai

    from tests.e2e.conftest import Account, Upstreams


def test_two_requests_on_one_session_each_save_a_whole_branch(
    gateway: str, client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    headers = {"authorization": f"Bearer {account.secret}"}
    with httpx.Client(base_url=gateway, headers=headers, timeout=10) as http:
        sid = http.post("/chat/sessions", json={}).json()["data"]["id"]
        head = http.post(
            f"/chat/sessions/{sid}/messages", json={"role": "user", "content": "start"}
        ).json()["data"][0]["id"]
    arrived = [threading.Event(), threading.Event()]
    release = threading.Event()
    upstreams.primary.enqueue(*(Behaviour(received=e, release=release) for e in arrived))
    answers: list[Any] = []

    def ask(words: str) -> None:
        answers.append(
            client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": words}],
                extra_body={"session_id": sid},
            )
        )

    threads = [threading.Thread(target=ask, args=(w,)) for w in ("left turn", "right turn")]
    for thread in threads:
        thread.start()
    try:
        assert all(event.wait(30) for event in arrived)  # both read the history first
    finally:
        release.set()
        for thread in threads:
            thread.join()
    assert len(answers) == 2
    assert len(ledger_usage(account.account_id)) == 2
    with httpx.Client(base_url=gateway, headers=headers, timeout=10) as http:
        saved = http.get(f"/chat/sessions/{sid}/messages").json()["data"]
    by_id = {m["id"]: m for m in saved}
    answers_saved = [m for m in saved if m["role"] == "assistant"]
    assert sorted(m["content"] for m in answers_saved) == ["left turn", "right turn"]
    for answer in answers_saved:
        asked = by_id[answer["parent_id"]]
        assert (asked["role"], asked["content"]) == ("user", answer["content"])
        assert asked["parent_id"] == head
    assert len(saved) == 5
