"""The chat function's cold path, paid before its first request (bench/README.md).

Importing a function stays cheap (bench/coldstart.py) because the request path defers
what it can: its own modules and the libraries they use (httptools, redis, the Powertools
logger), the database connection, the catalog, the rate-limit store's connection, the
upstream connection pool. Left alone, all of that lands on the first request, a few
hundred milliseconds. Under the Lambda Web Adapter the ASGI server starts during the
function's INIT phase, before the first invocation, and runs the app's lifespan there:
`prepare` is that startup (`gatewayz dev` runs it when it starts, as the adapter would).
Nothing here runs at import, and a failure only logs: the first request does the work
again and answers with the usual error if a store is still down.
"""

from __future__ import annotations

import gc
import time


async def prepare() -> None:
    """Load the request path's modules, open the stores' connections and read the
    catalog now, so the first request finds them ready."""
    from gatewayz.logs import get_logger

    started = time.perf_counter()
    logger = get_logger()  # the Powertools logger: its import is the largest single cost
    steps = {"modules": _import_request_path, "database": _open_database,
             "rate-limit store": _open_store, "upstream pool": _open_upstream_pool}  # fmt: skip
    for step, run in steps.items():
        try:
            done = run()
            if done is not None:  # a step that awaits
                await done
        except Exception as exc:  # noqa: BLE001 - the first request retries whatever failed
            logger.warning("warm-up step failed", extra={"step": step, "error": repr(exc)[:300]})
    # What start-up built lives as long as the process (modules, the catalog, clients):
    # out of the collector's generations, a request's collections never walk it again.
    gc.freeze()
    logger.debug("warmed up", extra={"ms": round((time.perf_counter() - started) * 1000, 1)})


def _import_request_path() -> None:
    # What the first completion, stream, response or embedding imports (the modules the
    # request path loads lazily, listed by what imports them).
    from gatewayz import crypto, jsonbody, metrics  # noqa: F401
    from gatewayz.billing import spend_limit  # noqa: F401
    from gatewayz.chat import (  # noqa: F401
        answer_shape,
        completions,
        embeddings,
        idempotency,
        idempotency_store,
        relay,
        responses,
        responses_stream,
    )
    from gatewayz.identity import provider_keys  # noqa: F401


async def _open_database() -> None:
    from gatewayz import adb, config, db
    from gatewayz.chat import catalog, providers

    db.connection()
    catalog.models(providers.available(config.get_settings()))
    await adb.warm()  # the connection the holds and settlements await, on the server's loop


def _open_store() -> None:
    from gatewayz.ratelimit import get_store

    get_store().ping()


def _open_upstream_pool() -> None:
    from gatewayz.chat import upstream

    upstream.open_pool()  # this event loop's pool: the one the server's requests run on
