"""A stream is paid even when the function dies, the client stops reading, or the
Lambda deadline comes. Each test runs the chat function in its own
process (tests/e2e/processes.py) in front of the fake providers, on real PostgreSQL."""

from __future__ import annotations

import json
import socket
import time
from typing import TYPE_CHECKING, Any

import httpx

from gatewayz import config, db, jobs
from tests import ledger
from tests.e2e.conftest import INPUT_NANOS, MODEL, OUTPUT_NANOS, new_account, prompt_bound
from tests.e2e.processes import chat_process
from tests.factories import expire_hold
from tests.fakes.openai_upstream import Behaviour

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.conftest import Account, Upstreams

HELLO = [{"role": "user", "content": "tell me a long story"}]
WORDS = " ".join(f"w{i}" for i in range(400))


def eventually[T](probe: Callable[[], T | None], *, within_s: float = 30) -> T:
    """The first truthy result of `probe`, polled until `within_s` runs out."""
    deadline = time.monotonic() + within_s
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.02)


def usage_row(account: Account) -> tuple[Any, ...] | None:
    return db.execute(
        """SELECT request_id, status, error_code, input_tokens, output_tokens, cost_nanos,
                  uncollected_nanos, usage_estimated
             FROM usage_records WHERE account_id = %s""",
        (account.account_id,),
    ).fetchone()


def holds(account: Account) -> int:
    row = db.execute(
        "SELECT count(*) FROM credit_holds WHERE account_id = %s", (account.account_id,)
    )
    return int(row.fetchone()[0])  # type: ignore[index]


def headers(account: Account, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {account.secret}", **extra}


def test_a_killed_functions_stream_is_charged_what_it_recorded(
    gateway: str, upstreams: Upstreams
) -> None:
    account = new_account()
    funded = account.balance()
    upstreams.primary.enqueue(Behaviour(content=WORDS, chunk_delay_s=0.02))
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    with (
        chat_process(upstreams, STREAM_PROGRESS_S="0.2") as process,
        httpx.stream(
            "POST", f"{process.base_url}/chat/completions", json=body, headers=headers(account)
        ) as response,
    ):
        request_id = response.headers["x-request-id"]
        lines = response.iter_lines()

        def progress() -> tuple[Any, ...] | None:
            next(lines)  # keep reading, as a client does
            return db.execute(
                """SELECT charge_nanos, input_tokens, output_tokens FROM credit_holds
                        WHERE request_id = %s AND charge_nanos > 0""",
                (request_id,),
            ).fetchone()

        charge, prompt, output = eventually(progress)
        process.kill()  # as Lambda kills a function at its timeout, or out of memory
    # What the hold recorded: a typical count of the prompt and the output delivered.
    assert 0 < output < 400
    assert charge == prompt * INPUT_NANOS + output * OUTPUT_NANOS
    assert usage_row(account) is None  # nobody settled it
    expire_hold(request_id)  # its hold outlives the function; now it is past expiry

    report = jobs.run({"job": "hold_sweeper"})

    assert report["holds_charged"] >= 1
    row = usage_row(account)
    assert row is not None
    assert row[1:] == (200, "interrupted", prompt, output, charge, 0, True)
    assert account.balance() == funded - charge
    assert holds(account) == 0


def test_the_stream_ends_itself_before_the_lambda_deadline_and_bills_what_it_sent(
    gateway: str, upstreams: Upstreams, redis_url: str
) -> None:
    account = new_account()
    upstreams.primary.enqueue(Behaviour(content=WORDS, chunk_delay_s=0.02, usage_every_chunk=True))
    lambda_settings = {
        "AWS_LAMBDA_FUNCTION_NAME": "gatewayz-chat",
        "KEY_HASH_SECRET": config.key_hash_secret().decode(),
        "REDIS_URL": redis_url,
        "STREAM_DEADLINE_MARGIN_S": "1",
    }
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    with chat_process(upstreams, **lambda_settings) as process:
        # The adapter passes the invocation's deadline: 3 s from now, so the stream (8 s
        # of words) must end itself after about 2.
        context = {"request_id": "r1", "deadline": round((time.time() + 3) * 1000)}
        response = httpx.post(
            f"{process.base_url}/chat/completions",
            json=body,
            headers=headers(account, **{"x-amzn-lambda-context": json.dumps(context)}),
            timeout=30,
        )
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    last = json.loads(events[-2])
    assert last["error"]["code"] == "upstream_timeout"
    assert last["choices"][0]["finish_reason"] == "error"
    words = [
        json.loads(e)["choices"][0]["delta"].get("content")
        for e in events[:-2]
        if json.loads(e).get("choices")
    ]
    sent = len([w for w in words if w])
    assert 0 < sent < 400
    row = usage_row(account)
    assert row is not None
    # Settled before the error chunk went out, at the provider's running count.
    (_, status, error, prompt, output, cost, uncollected, estimated) = row
    assert (status, error, output, uncollected, estimated) == (
        200,
        "upstream_timeout",
        sent,
        0,
        False,
    )
    assert cost == prompt * INPUT_NANOS + output * OUTPUT_NANOS
    assert holds(account) == 0


def test_a_client_that_stops_reading_is_disconnected_and_charged(
    gateway: str, upstreams: Upstreams
) -> None:
    account = new_account()
    # 10 MB of output (1,024 tokens, test/echo's cap, of 10 kB each): more than the socket
    # buffers between the gateway and a client that reads nothing, so its sends must wait.
    upstreams.primary.enqueue(Behaviour(content=" ".join(["x" * 10_000] * 1_024)))
    body = json.dumps({"model": MODEL, "messages": HELLO, "stream": True}).encode()
    with chat_process(upstreams, STREAM_SEND_TIMEOUT_S="1") as process:
        port = int(process.base_url.rsplit(":", 1)[1].split("/")[0])
        with socket.socket() as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4_096)
            client.connect(("127.0.0.1", port))
            request = (
                f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                f"authorization: Bearer {account.secret}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\n\r\n"
            )
            client.sendall(request.encode() + body)
            # Never read. The gateway gives up on this client and settles while it is
            # still connected: charged the provider's own count of everything.
            row = eventually(lambda: usage_row(account), within_s=60)
    (_, status, error, prompt, output, cost, uncollected, estimated) = row
    assert (status, error, output, uncollected, estimated) == (200, None, 1_024, 0, False)
    assert cost == prompt * INPUT_NANOS + output * OUTPUT_NANOS
    assert holds(account) == 0


def test_a_provider_that_ignores_the_cap_is_charged_the_hold_and_the_rest_is_visible(
    gateway: str, upstreams: Upstreams
) -> None:
    hold = prompt_bound(HELLO) * INPUT_NANOS + 5 * OUTPUT_NANOS
    account = new_account(credit_nanos=hold)
    ledger.expect_overrun(account.account_id)
    upstreams.primary.enqueue(Behaviour(content=WORDS, ignore_max_tokens=True))
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 5}
    with chat_process(upstreams, GATEWAYZ_METRICS="on", LOG_LEVEL="INFO") as process:
        response = httpx.post(
            f"{process.base_url}/chat/completions", json=body, headers=headers(account)
        )
        logged = process.logged()
    assert response.status_code == 200
    usage = response.json()["usage"]
    cost = usage["prompt_tokens"] * INPUT_NANOS + usage["completion_tokens"] * OUTPUT_NANOS
    assert cost > hold
    assert round(usage["cost"] * 1e9) == hold  # what was charged: all there was
    assert account.balance() == 0
    row = usage_row(account)
    assert row is not None
    assert (row[5], row[6]) == (cost, cost - hold)
    # Visible: an error log line and a metric an alarm can watch.
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    (error,) = [line for line in lines if line.get("message") == "uncollected cost"]
    assert error["level"] == "ERROR"
    assert error["uncollected_nanos"] == cost - hold
    (metric,) = [line for line in lines if "UncollectedNanos" in line]
    assert metric["UncollectedNanos"] == cost - hold
