"""A provider's refusal passed on: its message and `param`, cleaned of secrets and hosts."""

from __future__ import annotations

import json

import pytest

from gatewayz.chat.refusals import MAX_UPSTREAM_MESSAGE, upstream_refusal


def refusal(message: object, param: object = None, key: str = "") -> tuple[str, str | None]:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param}}
    return upstream_refusal(json.dumps(body).encode(), key)


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ("bad key sk-proj-AbC123456789xyz here", "bad key [redacted] here"),
        ("sent gw_live_0123456789abcdef", "sent [redacted]"),
        ("header Authorization: Bearer eyJhbGciOi.payload.sig", "header Authorization: [redacted]"),
        ("see https://internal.example:8443/v1/x?y=1 now", "see [redacted] now"),
        ("host api.upstream.internal:9000 refused", "host [redacted] refused"),
        ("from 10.1.2.3:8080", "from [redacted]"),
        ("messages[0].content must be a string", "messages[0].content must be a string"),
        ("task_description is  \n too long", "task_description is too long"),
    ],
)
def test_secrets_and_hosts_are_redacted_and_the_rest_kept(said: str, shown: str) -> None:
    assert refusal(said)[0] == shown


def test_the_providers_key_is_redacted_whatever_it_looks_like() -> None:
    assert refusal("key=plainkey42 rejected", key="plainkey42")[0] == "key=[redacted] rejected"


def test_long_messages_are_trimmed_and_the_param_kept_briefly() -> None:
    message, param = refusal("y" * 5000, param="tools")
    assert message == "y" * MAX_UPSTREAM_MESSAGE + "..."
    assert param == "tools"
    assert refusal("no", param="p" * 500)[1] == "p" * 100 + "..."
    assert refusal("no", param=7)[1] is None


def test_a_body_that_is_not_an_error_object_says_invalid_request() -> None:
    assert upstream_refusal(b"<html>oops</html>", "") == ("invalid request", None)
    assert upstream_refusal(b'{"error": "plain words"}', "") == ("plain words", None)
