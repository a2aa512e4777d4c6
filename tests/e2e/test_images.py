"""The `openai` SDK's `client.images.generate` against the running gateway, in front of the
fake providers' `/images/generations`: url (stored, then fetched from the gateway) and
b64_json, exact per-image billing, failover, the hold given back on failure, exact
funding, Idempotency-Key replays, and the 400s of bad input."""

from __future__ import annotations

import base64
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

from gatewayz import db
from gatewayz.chat import routing
from gatewayz.images import results
from tests.e2e.conftest import new_account
from tests.e2e.image_models import image_models
from tests.environment import settings
from tests.fakes.openai_upstream import Behaviour, FakeUpstream, fake_image, serve

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.e2e.conftest import Account, Upstreams

# Served by `openrouter` (tried first, answers with URLs) and `featherless` (a gpt-image
# model id: answers b64_json). DALL-E 2's rule: n up to 10, 1024/512/256 at x1/x0.9/x0.8.
MODEL = "openai/dall-e-2"
SINGLE = "test/draw"  # no rule: one 1024x1024 image only
IMAGE_NANOS = 40_000_000  # $0.04 an image


@pytest.fixture(scope="module", autouse=True)
def served(gateway: str) -> Iterator[None]:
    offers = (
        ("openrouter", 10, "openrouter/dall-e-2"),
        ("featherless", 20, "featherless/gpt-image-1"),
    )
    with image_models((MODEL, SINGLE), offers, Decimal("0.04")):
        yield


def image_usage(account: Account) -> list[tuple[object, ...]]:
    return db.execute(
        """SELECT endpoint, model, provider, images, cost_nanos, status
             FROM usage_records WHERE account_id = %s ORDER BY created_at""",
        (account.account_id,),
    ).fetchall()


def active_holds(account: Account) -> int:
    row = db.execute(
        "SELECT count(*) FROM credit_holds WHERE account_id = %s", (account.account_id,)
    ).fetchone()
    return int(row[0])  # type: ignore[index]


def test_urls_are_stored_by_the_gateway_and_each_image_is_billed(
    client: openai.OpenAI, account: Account, upstreams: Upstreams, gateway: str
) -> None:
    before = account.balance()
    answer = client.images.generate(model=MODEL, prompt="a red fox", n=2, size="512x512")
    assert len(answer.data) == 2
    for index, image in enumerate(answer.data):
        assert image.url is not None
        assert image.url.startswith(gateway.removesuffix("/v1") + "/_images/")
        assert image.revised_prompt == "a red fox, revised"
        fetched = httpx.get(image.url)
        assert fetched.status_code == 200
        assert fetched.headers["content-type"] == "image/png"
        assert fetched.content == fake_image("a red fox", index, "512x512")
    per_image = IMAGE_NANOS * 9 // 10  # 512x512 at 0.9 of the catalog price
    cost = round(answer.usage.cost * 1e9)  # type: ignore[union-attr, attr-defined]
    assert cost == 2 * per_image
    assert before - account.balance() == cost
    assert image_usage(account) == [("images.generations", MODEL, "openrouter", 2, cost, 200)]
    sent = upstreams.primary.requests[0]
    assert sent.path == "/v1/images/generations"
    assert sent.json["model"] == "openrouter/dall-e-2"
    assert sent.json["n"] == 2
    assert sent.json["size"] == "512x512"
    assert "response_format" not in sent.json  # the gateway stores or encodes itself


def test_b64_json_after_a_failover_is_charged_once(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(status=503))
    before = account.balance()
    answer = client.images.generate(model=MODEL, prompt="a boat", response_format="b64_json")
    [image] = answer.data
    assert image.b64_json is not None
    assert base64.b64decode(image.b64_json) == fake_image("a boat", 0, "1024x1024")
    assert answer.provider == "featherless"  # type: ignore[attr-defined]
    assert before - account.balance() == IMAGE_NANOS
    assert image_usage(account) == [
        ("images.generations", MODEL, "featherless", 1, IMAGE_NANOS, 200)
    ]


def test_a_failing_provider_gives_the_hold_back(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.default = Behaviour(status=500)
    upstreams.secondary.default = Behaviour(status=500)
    before = account.balance()
    with pytest.raises(openai.InternalServerError) as raised:
        client.images.generate(model=MODEL, prompt="anything")
    assert raised.value.status_code == 502
    assert account.balance() == before
    assert active_holds(account) == 0
    assert image_usage(account) == [("images.generations", MODEL, "featherless", 0, 0, 502)]


def test_an_account_funded_with_exactly_the_hold_succeeds_and_one_nano_short_gets_402(
    gateway: str,
) -> None:
    exact = new_account(credit_nanos=3 * IMAGE_NANOS)
    answer = openai.OpenAI(base_url=gateway, api_key=exact.secret, max_retries=0).images.generate(
        model=MODEL, prompt="three cats", n=3
    )
    assert len(answer.data) == 3
    assert exact.balance() == 0
    short = new_account(credit_nanos=3 * IMAGE_NANOS - 1)
    client = openai.OpenAI(base_url=gateway, api_key=short.secret, max_retries=0)
    with pytest.raises(openai.APIStatusError) as raised:
        client.images.generate(model=MODEL, prompt="three cats", n=3)
    assert raised.value.status_code == 402
    error = raised.value.body
    assert isinstance(error, dict)
    assert error["code"] == "insufficient_credits"
    assert error["metadata"] == {"limit_source": "credits"}
    assert short.balance() == 3 * IMAGE_NANOS - 1
    assert image_usage(short) == []


def test_an_idempotency_key_replay_gets_the_first_images_and_is_charged_once(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    before = account.balance()
    first = client.images.with_raw_response.generate(
        model=MODEL, prompt="a kite", response_format="b64_json", extra_headers=key
    )
    again = client.images.with_raw_response.generate(
        model=MODEL, prompt="a kite", response_format="b64_json", extra_headers=key
    )
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.parse().data[0].b64_json == first.parse().data[0].b64_json
    assert before - account.balance() == IMAGE_NANOS
    assert len(image_usage(account)) == 1
    assert [r.method for r in upstreams.primary.requests] == ["POST", "GET"]  # + the fetch


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": MODEL, "prompt": ""}, "prompt"),
        ({"model": MODEL, "prompt": "   "}, "prompt"),
        ({"model": MODEL, "prompt": "x" * 1001}, "prompt"),
        ({"model": MODEL, "prompt": "a cat", "size": "1792x1024"}, "size"),
        ({"model": MODEL, "prompt": "a cat", "n": 11}, "n"),
        ({"model": MODEL, "prompt": "a cat", "n": 0}, "n"),
        ({"model": SINGLE, "prompt": "a cat", "n": 2}, "n"),
        ({"model": MODEL, "prompt": "a cat", "quality": "hd"}, "quality"),
        ({"model": MODEL, "prompt": "a cat", "style": "vivid"}, "style"),
        ({"model": MODEL, "prompt": "a cat", "response_format": "png"}, "response_format"),
        ({"model": "test/echo", "prompt": "a cat"}, "model"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_costs_nothing(
    client: openai.OpenAI, account: Account, upstreams: Upstreams, fields: dict, param: str
) -> None:
    before = account.balance()
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.generate(**fields)
    assert raised.value.param == param
    assert account.balance() == before
    assert upstreams.primary.requests == []  # refused before any provider was asked


def test_unknown_models_are_404_and_keys_without_the_images_scope_are_403(
    client: openai.OpenAI, gateway: str
) -> None:
    with pytest.raises(openai.NotFoundError):
        client.images.generate(model="test/nothing", prompt="a cat")
    chat_only = new_account(scopes=("chat",))
    denied = openai.OpenAI(base_url=gateway, api_key=chat_only.secret, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as raised:
        denied.images.generate(model=MODEL, prompt="a cat")
    assert raised.value.code == "scope_denied"


def test_a_local_image_url_with_a_changed_signature_or_expiry_is_refused(
    client: openai.OpenAI,
) -> None:
    [image] = client.images.generate(model=MODEL, prompt="an owl", size="256x256").data
    assert image.url is not None
    assert httpx.get(image.url).status_code == 200
    forged = image.url.replace("expires=", "expires=9")
    assert httpx.get(forged).status_code == 403
    signature = image.url.rsplit("=", 1)[1]
    tampered = image.url[: -len(signature)] + ("0" if signature[0] != "0" else "1") + signature[1:]
    assert httpx.get(tampered).status_code == 403


async def test_a_provider_url_is_fetched_within_its_size_bound(upstreams: Upstreams) -> None:
    url = f"{upstreams.primary.base_url}/images/files?prompt=big&index=0&size=256x256"
    whole = fake_image("big", 0, "256x256")
    assert await results.fetch(url, len(whole), timeout_s=5) == whole
    with pytest.raises(routing.Retryable):
        await results.fetch(url, len(whole) - 1, timeout_s=5)


@pytest.fixture
def portkey(gateway: str) -> Iterator[FakeUpstream]:
    """Portkey configured, in front of a fake of its own, while the test runs."""
    with serve() as fake, settings(PORTKEY_API_KEY="pk-test", PORTKEY_BASE_URL=fake.base_url):
        yield fake


def test_the_seeded_dall_e_3_through_portkey_costs_three_times_its_price_in_hd_wide(
    client: openai.OpenAI, account: Account, portkey: FakeUpstream
) -> None:
    before = account.balance()
    answer = client.images.generate(
        model="openai/dall-e-3", prompt="a city", size="1792x1024", quality="hd", style="vivid"
    )
    [image] = answer.data
    assert httpx.get(image.url or "").content == fake_image("a city", 0, "1792x1024")
    assert answer.provider == "portkey"  # type: ignore[attr-defined]
    assert before - account.balance() == 3 * IMAGE_NANOS  # $0.12, as OpenAI charges
    sent = portkey.requests[0]  # then the fetch of its URL
    assert sent.headers["x-portkey-api-key"] == "pk-test"
    assert sent.json == {
        "model": "@openai/dall-e-3",
        "prompt": "a city",
        "n": 1,
        "size": "1792x1024",
        "quality": "hd",
        "style": "vivid",
    }
