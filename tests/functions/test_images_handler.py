"""`POST /v1/images/generations` through the images function's real Lambda handler
(Mangum) with the sample API Gateway event (infra/events/images/generations.json): the
offline `mock/image` answers, the usage row and ledger say one image, and refusals come
in the error envelope naming the field or the missing setting."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import db
from gatewayz.chat.offline import png
from tests.environment import settings
from tests.factories import new_key, new_owner
from tests.functions.events import event, header, invoke, json_body, sent_with_key

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.usefixtures("database_url")
IMAGE_NANOS = 20_000_000  # mock/image: $0.02 an image


def generate(secret: str, body: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
    lambda_event = event("images", "generations")
    if body is not None:
        lambda_event["body"] = json.dumps(body)
    lambda_event = sent_with_key(lambda_event, secret)
    for name, value in headers.items():
        lambda_event["headers"][name] = value
        lambda_event["multiValueHeaders"][name] = [value]
    return invoke("images", lambda_event)


def balance(account_id: str) -> int:
    row = db.execute("SELECT balance_nanos FROM accounts WHERE id = %s", (account_id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_the_sample_event_gets_a_png_and_one_image_is_billed_and_recorded() -> None:
    owner = new_owner(plan_id="trial")
    key = new_key(owner)
    before = balance(owner.account_id)
    result = generate(key.secret)
    assert result["statusCode"] == 200, result["body"]
    body = json_body(result)
    [image] = body["data"]
    assert png.size_of(base64.b64decode(image["b64_json"])) == (256, 256)
    assert image["revised_prompt"] == "a lighthouse at dusk"
    assert body["provider"] == "mock"
    assert body["usage"] == {"images": 1, "cost": IMAGE_NANOS / 1e9}
    assert isinstance(body["created"], int)
    assert header(result, "x-request-id")
    assert header(result, "x-ratelimit-limit-requests")
    assert before - balance(owner.account_id) == IMAGE_NANOS
    rows = db.execute(
        """SELECT u.endpoint, u.model, u.provider, u.images, u.cost_nanos, t.amount_nanos
             FROM usage_records u JOIN credit_transactions t ON t.usage_record_id = u.id
            WHERE u.account_id = %s""",
        (owner.account_id,),
    ).fetchall()
    assert rows == [("images.generations", "mock/image", "mock", 1, IMAGE_NANOS, -IMAGE_NANOS)]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "a cat"}, "model"),
        ({"model": "mock/image"}, "prompt"),
        ({"model": "mock/image", "prompt": "a cat", "size": "300x300"}, "size"),
        ({"model": "mock/image", "prompt": "a cat", "n": 5}, "n"),
        ({"model": "mock/image", "prompt": "a cat", "n": True}, "n"),
        ({"model": "mock/image", "prompt": "a cat", "quality": 1}, "quality"),
        ({"model": "mock/image", "prompt": "a cat", "user": ["x"]}, "user"),
        ({"model": "mock/image", "prompt": "a cat", "background": "transparent"}, "background"),
        ({"model": "mock/image", "prompt": "a cat", "provider": {"only": []}}, "provider.only"),
    ],
)
def test_bad_input_is_an_envelope_naming_the_field(body: dict[str, Any], param: str) -> None:
    owner = new_owner(plan_id="trial")
    key = new_key(owner)
    before = balance(owner.account_id)
    result = generate(key.secret, body)
    assert result["statusCode"] == 400, result["body"]
    error = json_body(result)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert balance(owner.account_id) == before


def test_a_body_that_is_not_json_is_a_400() -> None:
    key = new_key(new_owner(plan_id="trial"))
    lambda_event = sent_with_key(event("images", "generations", body="{nope"), key.secret)
    result = invoke("images", lambda_event)
    assert result["statusCode"] == 400
    assert json_body(result)["error"]["type"] == "invalid_request_error"


@pytest.fixture
def supabase_without_key() -> Iterator[None]:
    with settings(SUPABASE_URL="http://127.0.0.1:9"):
        yield


@pytest.mark.usefixtures("supabase_without_key")
def test_urls_without_the_service_role_key_are_a_503_naming_it_and_cost_nothing() -> None:
    owner = new_owner(plan_id="trial")
    key = new_key(owner)
    before = balance(owner.account_id)
    result = generate(key.secret, {"model": "mock/image", "prompt": "a cat"})
    assert result["statusCode"] == 503
    error = json_body(result)["error"]
    assert error["code"] == "missing_configuration"
    assert "SUPABASE_SERVICE_ROLE_KEY" in error["message"]
    assert balance(owner.account_id) == before
    # b64_json stores nothing, so it needs no storage setting.
    result = generate(key.secret, {"model": "mock/image", "prompt": "a cat",
                                   "response_format": "b64_json"})  # fmt: skip
    assert result["statusCode"] == 200


def test_an_idempotency_key_replays_the_answer_through_the_handler() -> None:
    owner = new_owner(plan_id="trial")
    key = new_key(owner)
    before = balance(owner.account_id)
    first = generate(key.secret, None, **{"Idempotency-Key": "img-1"})
    again = generate(key.secret, None, **{"Idempotency-Key": "img-1"})
    assert first["statusCode"] == again["statusCode"] == 200
    assert header(again, "idempotent-replayed") == "true"
    assert json_body(again) == json_body(first)
    assert before - balance(owner.account_id) == IMAGE_NANOS
    other = generate(
        key.secret, {"model": "mock/image", "prompt": "x"}, **{"Idempotency-Key": "img-1"}
    )
    assert other["statusCode"] == 409


def test_a_key_without_the_images_scope_is_refused() -> None:
    key = new_key(new_owner(plan_id="trial"), scopes=("chat",))
    result = generate(key.secret)
    assert result["statusCode"] == 403
    assert json_body(result)["error"]["code"] == "scope_denied"


@pytest.fixture
def small_answers() -> Iterator[None]:
    with settings(IMAGES_MAX_ANSWER_BYTES="10000"):
        yield


@pytest.mark.usefixtures("small_answers")
def test_b64_images_too_large_to_answer_are_a_400_and_cost_nothing() -> None:
    owner = new_owner(plan_id="trial")
    key = new_key(owner)
    before = balance(owner.account_id)
    asked = {"model": "mock/image", "prompt": "a cat", "response_format": "b64_json"}
    result = generate(key.secret, {**asked, "size": "1024x1024", "n": 4})
    assert result["statusCode"] == 400, result["body"]
    assert json_body(result)["error"]["param"] == "response_format"
    assert balance(owner.account_id) == before
    assert generate(key.secret, {**asked, "size": "256x256"})["statusCode"] == 200
