"""Generated images in Supabase Storage: with `SUPABASE_URL` set, the gateway uploads each
image with the service role key (the stand-in of tests/fakes/supabase_storage.py speaks
Supabase's REST API) and answers signed URLs that fetch it; a failed upload charges
nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

from gatewayz import db
from tests.e2e.image_models import image_models
from tests.environment import settings
from tests.fakes import supabase_storage
from tests.fakes.openai_upstream import fake_image

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.e2e.conftest import Account
    from tests.fakes.supabase_storage import FakeStorage

MODEL = "test/paint"
IMAGE_NANOS = 40_000_000
TTL_S = 3600


@pytest.fixture(scope="module", autouse=True)
def served(gateway: str) -> Iterator[None]:
    with image_models((MODEL,), (("openrouter", 10, "openrouter/dall-e-3"),), Decimal("0.04")):
        yield


@pytest.fixture
def storage(gateway: str) -> Iterator[FakeStorage]:
    """The gateway's settings point at the Supabase stand-in while the test runs."""
    with (
        supabase_storage.serve() as fake,
        settings(
            SUPABASE_URL=fake.url,
            SUPABASE_SERVICE_ROLE_KEY=supabase_storage.SERVICE_KEY,
            IMAGES_URL_TTL_S=str(TTL_S),
        ),
    ):
        yield fake


def test_images_are_uploaded_and_answered_as_signed_urls_that_fetch_them(
    client: openai.OpenAI, account: Account, storage: FakeStorage
) -> None:
    before = account.balance()
    [image] = client.images.generate(model=MODEL, prompt="a harbour").data
    assert image.url is not None
    assert image.url.startswith(f"{storage.url}/storage/v1/object/sign/images/")
    assert storage.expires_in(image.url) == TTL_S
    [key] = storage.objects
    assert key.startswith(f"images/{account.account_id}/")
    assert storage.objects[key].content_type == "image/png"
    fetched = httpx.get(image.url)
    assert fetched.status_code == 200
    assert fetched.content == fake_image("a harbour", 0, "1024x1024")
    assert httpx.get(image.url + "x").status_code == 400  # a changed token is refused
    assert before - account.balance() == IMAGE_NANOS


def test_a_failed_upload_is_a_502_and_gives_the_hold_back(
    client: openai.OpenAI, account: Account, storage: FakeStorage
) -> None:
    storage.upload_status = 500
    before = account.balance()
    with pytest.raises(openai.InternalServerError) as raised:
        client.images.generate(model=MODEL, prompt="a harbour")
    assert raised.value.status_code == 502
    assert raised.value.code == "image_storage_failed"
    assert account.balance() == before
    row = db.execute(
        "SELECT cost_nanos, status, error_code FROM usage_records WHERE account_id = %s",
        (account.account_id,),
    ).fetchone()
    assert row == (0, 502, "image_storage_failed")


def test_b64_json_needs_no_storage(
    client: openai.OpenAI, account: Account, storage: FakeStorage
) -> None:
    [image] = client.images.generate(
        model=MODEL, prompt="a harbour", response_format="b64_json"
    ).data
    assert image.b64_json is not None
    assert storage.objects == {}
    assert account.balance() > 0
