"""What the gateway refuses before any provider is called:
mistyped fields, hostile JSON, inputs no hold can bound, unpriced fees. Each is a 400 in
the OpenAI envelope naming the field, reaches no provider, and costs nothing."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from gatewayz import db
from tests.e2e.conftest import MODEL, new_account

if TYPE_CHECKING:
    from tests.e2e.conftest import Account, Upstreams

HELLO = [{"role": "user", "content": "hello"}]


def post(
    gateway: str, account: Account, body: bytes | dict[str, Any], path: str = "chat"
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{gateway}/{'chat/completions' if path == 'chat' else 'completions'}",
        content=raw,
        headers={"authorization": f"Bearer {account.secret}", "content-type": "application/json"},
        timeout=30,
    )


def assert_refused_for_free(
    response: httpx.Response, account: Account, upstreams: Upstreams, param: str | None
) -> dict[str, Any]:
    """A 400 naming `param`; no provider saw it; no hold, no usage row, no charge."""
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert isinstance(error["code"], str)
    assert error["param"] == param
    assert upstreams.primary.requests == []
    assert upstreams.secondary.requests == []
    assert account.balance() == 5_000_000_000
    counts = db.execute(
        """SELECT (SELECT count(*) FROM credit_holds WHERE account_id = %(a)s),
                  (SELECT count(*) FROM usage_records WHERE account_id = %(a)s)""",
        {"a": account.account_id},
    ).fetchone()
    assert counts == (0, 0)
    return dict(error)


@pytest.mark.parametrize("value", ['"5"', "5.0", "true", "-3", str(2**62)])
@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_a_mistyped_output_cap_is_a_400_and_reaches_no_provider(
    gateway: str, account: Account, upstreams: Upstreams, field: str, value: str
) -> None:
    body = f'{{"model": "{MODEL}", "messages": {json.dumps(HELLO)}, "{field}": {value}}}'
    assert_refused_for_free(post(gateway, account, body.encode()), account, upstreams, field)


@pytest.mark.parametrize("value", ['"true"', "1", '"yes"'])
def test_a_mistyped_stream_flag_is_a_400_and_reaches_no_provider(
    gateway: str, account: Account, upstreams: Upstreams, value: str
) -> None:
    body = f'{{"model": "{MODEL}", "messages": {json.dumps(HELLO)}, "stream": {value}}}'
    assert_refused_for_free(post(gateway, account, body.encode()), account, upstreams, "stream")


def test_legacy_completions_check_their_fields_too(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    response = post(gateway, account, {"model": MODEL, "prompt": "hi", "best_of": "3"}, "legacy")
    assert_refused_for_free(response, account, upstreams, "best_of")
    response = post(gateway, account, {"model": MODEL, "prompt": [1, 2.5]}, "legacy")
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b'"messages": [{"role": "user", "content": "a\\ud800"}]', "messages[0].content"),
        (b'"messages": [{"role": "user", "name": "\\udc00", "content": "x"}]', "messages[0].name"),
        (
            b'"messages": [{"role": "user", "content": "x"}], '
            b'"tools": [{"type": "function", "function": {"name": "\\ud800"}}]',
            "tools[0].function.name",
        ),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_where(
    gateway: str, account: Account, upstreams: Upstreams, raw: bytes, param: str
) -> None:
    body = b'{"model": "' + MODEL.encode() + b'", ' + raw + b"}"
    assert_refused_for_free(post(gateway, account, body), account, upstreams, param)


def test_a_lone_surrogate_in_a_legacy_prompt_is_a_400(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    body = b'{"model": "' + MODEL.encode() + b'", "prompt": "\\ud800"}'
    assert_refused_for_free(post(gateway, account, body, "legacy"), account, upstreams, "prompt")


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_400s_and_never_forwarded(
    gateway: str, account: Account, upstreams: Upstreams, constant: bytes
) -> None:
    body = b'{"model": "' + MODEL.encode() + b'", "messages": [{"role": "user", "content": "x"}],'
    body += b' "temperature": ' + constant + b"}"
    error = assert_refused_for_free(post(gateway, account, body), account, upstreams, None)
    assert error["code"] == "invalid_json"


@pytest.mark.parametrize("depth", [10_000, 990])
def test_deep_nesting_is_a_400_not_a_500(
    gateway: str, account: Account, upstreams: Upstreams, depth: int
) -> None:
    nested = b"[" * depth + b"]" * depth
    for where in (b'"metadata_x": ' + nested, b'"response_format": {"x": ' + nested + b"}"):
        body = b'{"model": "' + MODEL.encode() + b'", "messages": [{"role": "user", '
        body += b'"content": "x"}], ' + where + b"}"
        response = post(gateway, account, body)
        assert response.status_code in (200, 400), response.text
        if response.status_code == 400:
            assert response.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("kind", ["input_audio", "file", "video_url"])
def test_inputs_the_hold_cannot_bound_are_refused(
    gateway: str, account: Account, upstreams: Upstreams, kind: str
) -> None:
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": kind, kind: {"url": "https://x"}},
    ]
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
    error = assert_refused_for_free(
        post(gateway, account, body), account, upstreams, "messages[0].content[1].type"
    )
    assert "cannot bound" in error["message"]


def test_an_image_for_a_model_without_eyes_is_refused(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
    assert_refused_for_free(post(gateway, account, body), account, upstreams, "messages")


def test_a_prompt_that_cannot_fit_is_a_400_without_a_call(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    # test/echo has 8,192 tokens of context; 40,000 bytes are typically 10,000 tokens.
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 40_000}]}
    error = assert_refused_for_free(post(gateway, account, body), account, upstreams, "messages")
    assert error["code"] == "context_length_exceeded"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"plugins": [{"id": "web", "max_results": 5}]}, "plugins[0]"),
        ({"plugins": [{"id": "file-parser"}]}, "plugins[0]"),
        ({"tools": [{"type": "openrouter:web_search"}]}, "tools[0].type"),
        (
            {
                "tools": [
                    {"type": "function", "function": {"name": "f"}},
                    {"type": "web_search_preview"},
                ]
            },
            "tools[1].type",
        ),
        ({"web_search_options": {"search_context_size": "high"}}, "web_search_options"),
        ({"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"service_tier": "priority"}, "service_tier"),
    ],
)
def test_fees_beyond_tokens_are_refused_unless_priced(
    gateway: str, account: Account, upstreams: Upstreams, extra: dict[str, Any], param: str
) -> None:
    body = {"model": MODEL, "messages": HELLO, **extra}
    error = assert_refused_for_free(post(gateway, account, body), account, upstreams, param)
    assert "billed beyond tokens" in error["message"]


def test_a_bad_key_is_a_401_before_the_body_is_read(gateway: str, upstreams: Upstreams) -> None:
    nobody = new_account()
    forged = type(nobody)(nobody.account_id, nobody.user_id, nobody.key_id, "gw_live_" + "x" * 32)
    for body in (b"{not json", b'{"model": "x", "stream": "yes"}', b'{"temperature": NaN}'):
        response = post(gateway, forged, body)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert upstreams.primary.requests == []
