"""Where generated images are kept (docs/api.md, images; docs/operations.md, images).

With `SUPABASE_URL` set, in Supabase Storage (gatewayz/images/supabase.py), answered as
signed URLs valid `IMAGES_URL_TTL_S`, longer than a provider's own (OpenAI's last an
hour). Outside Lambda without it (`gatewayz dev`), in a directory of the local state,
served by the dev server at an HMAC-signed, expiring URL (gatewayz/images/local_files.py).
In Lambda without it, a 503 naming `SUPABASE_URL`: never an image URL that cannot work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from gatewayz import config, errors
from gatewayz.images import local_files, supabase

if TYPE_CHECKING:
    from starlette.requests import Request

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class Store(Protocol):
    """Keeps one image and answers a URL that fetches it."""

    async def put(self, name: str, data: bytes, content_type: str) -> str:
        """Store `data` as `name`; return its (signed) URL.

        Raises:
            ImageStorageFailed: the store refused it or could not be reached.
        """


def backend(request: Request) -> Store:
    """The store this deploy uses; checked before any credit is held.

    Raises:
        MissingConfiguration: a setting the store needs is unset (503 naming it).
    """
    settings = config.get_settings()
    if settings.supabase_url:
        return supabase.SupabaseStore(
            base_url=settings.supabase_url,
            service_key=config.require("supabase_service_role_key"),
            bucket=settings.images_bucket,
            ttl_s=settings.images_url_ttl_s,
            connect_s=settings.upstream_connect_timeout_s,
        )
    if config.in_lambda():
        raise errors.MissingConfiguration("SUPABASE_URL")
    return local_files.LocalStore(local_files.base_url(request), settings.images_url_ttl_s)


def object_name(account_id: str, request_id: str, index: int, content_type: str) -> str:
    """The object's path: under its account, named by the request and image index."""
    return f"{account_id}/{request_id}-{index}.{_EXTENSIONS[content_type]}"


def content_type(data: bytes) -> str | None:
    """The image type of `data` by its magic bytes; None when it is none we serve."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
