"""Rate limiting (docs/architecture.md, step 3): the store that counts, chosen from configuration.

`get_store()` picks the backend once per process: Redis (`REDIS_URL`), Upstash REST
(`UPSTASH_REDIS_REST_URL` + `UPSTASH_REDIS_REST_TOKEN`), else, outside Lambda, an
in-process store that is only correct within one process (local runs). In Lambda every
sandbox is its own process, so an in-process store would multiply each limit by the
number of warm sandboxes and never hear of a revoked key: there, no store is a 503.
"""

from __future__ import annotations

from functools import lru_cache

from gatewayz.ratelimit.base import Decision, Store, StoreUnavailable, Window, WindowState

__all__ = ["Decision", "Store", "StoreUnavailable", "Window", "WindowState", "get_store"]


@lru_cache(maxsize=1)
def get_store() -> Store:
    """The configured store (built on first use).

    Raises:
        MissingConfiguration: only one of the two Upstash variables is set, or inside
            Lambda, no shared store is configured (named as `REDIS_URL`).
    """
    from gatewayz.config import get_settings, in_lambda
    from gatewayz.errors import MissingConfiguration

    settings = get_settings()
    if settings.redis_url:
        from gatewayz.ratelimit.redis import RedisStore

        return RedisStore.from_url(settings.redis_url)
    url, token = settings.upstash_redis_rest_url, settings.upstash_redis_rest_token
    if url and token:
        from gatewayz.ratelimit.upstash import UpstashStore

        return UpstashStore(url, token.get_secret_value())
    if url or token:
        raise MissingConfiguration("UPSTASH_REDIS_REST_TOKEN" if url else "UPSTASH_REDIS_REST_URL")
    if in_lambda():
        raise MissingConfiguration("REDIS_URL")
    from gatewayz.ratelimit.memory import MemoryStore

    return MemoryStore()
