"""Supabase Storage over its REST API with httpx (no `supabase`/`storage3` package: the
layer has no room for it).

`POST {SUPABASE_URL}/storage/v1/object/{bucket}/{path}` uploads with the service role
key; `POST /storage/v1/object/sign/{bucket}/{path}` `{"expiresIn": N}` answers
`{"signedURL": "/object/sign/...?token=..."}`, relative to `/storage/v1`.
"""

from __future__ import annotations

from dataclasses import field

import httpx

from gatewayz import errors
from gatewayz.logs import get_logger
from gatewayz.record import record

TIMEOUT_S = 20.0


@record
class SupabaseStore:
    """One bucket of one Supabase project, reached with the service role key."""

    base_url: str
    service_key: str = field(repr=False)
    bucket: str
    ttl_s: int
    connect_s: float = 5.0

    async def put(self, name: str, data: bytes, content_type: str) -> str:
        """Upload `data` as `name`, then sign it for `ttl_s`; the signed URL.

        Raises:
            ImageStorageFailed: Supabase refused or could not be reached.
        """
        storage = self.base_url.rstrip("/") + "/storage/v1"
        headers = {"authorization": f"Bearer {self.service_key}", "apikey": self.service_key}
        timeout = httpx.Timeout(TIMEOUT_S, connect=self.connect_s)
        try:
            async with httpx.AsyncClient(timeout=timeout) as client:
                uploaded = await client.post(
                    f"{storage}/object/{self.bucket}/{name}",
                    content=data,
                    headers={**headers, "content-type": content_type, "x-upsert": "true"},
                )
                _check(uploaded, "upload")
                signed = await client.post(
                    f"{storage}/object/sign/{self.bucket}/{name}",
                    json={"expiresIn": self.ttl_s},
                    headers=headers,
                )
                _check(signed, "sign")
                path = signed.json().get("signedURL")
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            get_logger().warning("image storage failed", extra={"reason": type(exc).__name__})
            raise errors.ImageStorageFailed("Storing the generated image failed.") from None
        if not isinstance(path, str) or not path.startswith("/"):
            raise errors.ImageStorageFailed("Storing the generated image failed.")
        return storage + path


def _check(response: httpx.Response, step: str) -> None:
    if response.status_code >= 300:
        # The status only: Supabase's body may quote the request.
        get_logger().warning(
            "image storage refused", extra={"step": step, "status": response.status_code}
        )
        raise errors.ImageStorageFailed("Storing the generated image failed.")
