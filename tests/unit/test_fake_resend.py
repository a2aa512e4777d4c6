"""The fake Resend API answers the official `resend` package as Resend does: bearer key,
idempotency keys (same body: the first e-mail's id and nothing sent; another body:
409), validation and injected failures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import resend

from tests.fakes import resend as fake_resend

if TYPE_CHECKING:
    from collections.abc import Iterator

MAIL: Any = {"from": "a@example.com", "to": ["b@example.com"], "subject": "Hi", "text": "x"}


@pytest.fixture
def fake() -> Iterator[fake_resend.FakeResend]:
    before = (resend.api_key, resend.api_url)
    with fake_resend.serve() as served:
        resend.api_key, resend.api_url = served.api_key, served.url
        yield served
    resend.api_key, resend.api_url = before


def test_an_idempotency_key_sends_once_and_answers_the_same_id(
    fake: fake_resend.FakeResend,
) -> None:
    first = resend.Emails.send(MAIL, {"idempotency_key": "k1"})
    again = resend.Emails.send(MAIL, {"idempotency_key": "k1"})
    assert first["id"] == again["id"]
    assert len(fake.sent_to("b@example.com")) == 1
    other = resend.Emails.send(MAIL)
    assert other["id"] != first["id"]
    assert len(fake.sent_to("b@example.com")) == 2


def test_the_same_key_with_another_body_is_a_409(fake: fake_resend.FakeResend) -> None:
    resend.Emails.send(MAIL, {"idempotency_key": "k2"})
    with pytest.raises(resend.exceptions.ResendError) as raised:
        resend.Emails.send({**MAIL, "subject": "Other"}, {"idempotency_key": "k2"})
    assert str(raised.value.code) == "409"


def test_a_wrong_key_and_a_missing_field_are_refused(fake: fake_resend.FakeResend) -> None:
    resend.api_key = "re_wrong"
    with pytest.raises(resend.exceptions.ResendError) as wrong:
        resend.Emails.send(MAIL)
    assert str(wrong.value.code) == "403"
    resend.api_key = fake.api_key
    with pytest.raises(resend.exceptions.ResendError) as invalid:
        resend.Emails.send({**MAIL, "subject": ""})
    assert str(invalid.value.code) == "422"
    assert fake.sent == []


@pytest.mark.parametrize("status", [500, 429])
def test_injected_failures_then_success(fake: fake_resend.FakeResend, status: int) -> None:
    fake.fail_next(2, status)
    for _ in range(2):
        with pytest.raises(resend.exceptions.ResendError) as failed:
            resend.Emails.send(MAIL, {"idempotency_key": "k3"})
        assert str(failed.value.code) == str(status)
    assert fake.sent == []
    resend.Emails.send(MAIL, {"idempotency_key": "k3"})
    assert len(fake.sent) == 1
