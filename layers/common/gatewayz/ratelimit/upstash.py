"""The Upstash rate-limit store (`UPSTASH_REDIS_REST_*`; docs/architecture.md, step 3):
one HTTPS call per hit.

Uses the official `upstash-redis` sync client, imported only when Upstash is configured.
"""

from __future__ import annotations

from typing import ClassVar

import httpx
from upstash_redis import Redis
from upstash_redis.errors import UpstashError

from gatewayz.ratelimit.base import StoreUnavailable
from gatewayz.ratelimit.script import NoScript, ScriptStore


class UpstashStore(ScriptStore):
    """Counters on an Upstash Redis database, over its REST API.

    A wrong token is reported like an unreachable database (`StoreUnavailable`, with
    Upstash's message, e.g. "WRONGPASS invalid or missing auth token"): either way the
    store cannot count, and the caller's fail-open/closed policy applies. `ping()` at
    start-up tells the two apart in the logs.
    """

    name: ClassVar[str] = "upstash"

    def __init__(self, url: str, token: str, *, timeout_s: float = 2.0) -> None:
        # No client retries (the default waits 3 s and sends again, which may count twice);
        # no telemetry headers; no sync token: every call is one self-contained script, and
        # the client would mutate its shared header dict from concurrent threads.
        # base64 (the client's default) keeps any string reply intact; ours are integers.
        self._client = Redis(
            url=url,
            token=token,
            rest_encoding="base64",
            rest_retries=0,
            allow_telemetry=False,
            read_your_writes=False,
        )
        # The client builds its httpx.Client without a timeout and has no option for it.
        self._client._http._client.timeout = httpx.Timeout(timeout_s)

    def ping(self) -> None:
        """Raise `StoreUnavailable` unless Upstash answers PING with this token."""
        self._execute(["PING"])

    def _call(self, command: str, script: str, keys: list[str], args: list[str | int]) -> object:
        return self._execute([command, script, len(keys), *keys, *args])

    def _execute(self, command: list[str | int]) -> object:
        try:
            return self._client.execute(command)
        except UpstashError as exc:
            if str(exc).startswith("NOSCRIPT"):
                raise NoScript from None
            raise StoreUnavailable(f"upstash: {exc}") from exc
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"upstash: {type(exc).__name__}: {exc}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            # Not a JSON envelope: a proxy's error page, a 5xx, a wrong URL.
            raise StoreUnavailable(f"upstash: unexpected response: {exc!r:.120}") from exc
