"""The `gatewayz` command: `dev`, `migrate`, `seed`, `session`, `reencrypt`, `openapi`,
`admin`, `jobs`, `catalog`, `outbox`."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from gatewayz.dev import admin_commands
from gatewayz.jobs import JOB_NAMES

PYTHON = ".venv/bin/python"  # where `make dev` installed the SDK

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gatewayz.dev.bootstrap import DevKeys


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gatewayz", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="run the whole API locally")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    migrate = commands.add_parser("migrate", help="apply pending database migrations")
    migrate.add_argument("--seed", action="store_true", help="also load plans and the catalog")
    commands.add_parser("seed", help="upsert plans and the model catalog")
    session = commands.add_parser(
        "session", help="print a local Supabase-style session token (sign up with it)"
    )
    session.add_argument("email")
    session.add_argument(
        "--unverified", action="store_true", help="an e-mail not yet confirmed (no trial)"
    )
    session.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    commands.add_parser(
        "reencrypt", help="re-encrypt stored provider keys with the newest ENCRYPTION_KEYS key"
    )
    spec = commands.add_parser("openapi", help="write the API's OpenAPI document")
    spec.add_argument("--output", help="where to write it; docs/openapi.json")
    admin_commands.add_parser(commands)
    job = commands.add_parser("jobs", help="run a scheduled job now")
    job_commands = job.add_subparsers(dest="action", required=True)
    job_commands.add_parser("run", help="run one job, as its schedule would").add_argument(
        "name", help="the job: " + ", ".join(JOB_NAMES)
    )
    catalog = commands.add_parser("catalog", help="the model catalog")
    catalog.add_subparsers(dest="action", required=True).add_parser(
        "refresh", help="read the configured providers' model lists and prices now"
    )
    outbox = commands.add_parser("outbox", help="list the local outbox's e-mails, newest first")
    outbox.add_argument("--limit", type=int, default=20)
    args = parser.parse_args(argv)
    if args.command == "admin":
        return admin_commands.run(args)
    if args.command == "jobs":
        return _run_job(args.name)
    if args.command == "catalog":
        return _run_job("catalog_refresh")
    if args.command == "outbox":
        return _outbox(args.limit)
    if args.command == "dev":
        return _dev(args.host, args.port)
    if args.command == "openapi":
        return _openapi(args.output)
    if args.command == "migrate":
        return _migrate(seed=args.seed)
    if args.command == "session":
        return _session(args.email, verified=not args.unverified, ttl_s=args.ttl)
    if args.command == "reencrypt":
        return _reencrypt()
    return _seed()


def _session(email: str, *, verified: bool, ttl_s: int) -> int:
    from gatewayz.dev import bootstrap

    if "@" not in email or ttl_s <= 0:
        print("gatewayz session: give an e-mail address and a positive --ttl", file=sys.stderr)
        return 2
    print(bootstrap.session_token(email, verified=verified, ttl_s=ttl_s))
    return 0


def _run_job(name: str) -> int:
    """Run job `name` through `jobs.run`, the scheduled function's own entry point."""
    import json

    from gatewayz import jobs

    try:
        report = jobs.run({"job": name})
    except jobs.UnknownJob as exc:
        print(f"gatewayz jobs run: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, default=str))
    return 0 if report.get("status") in ("ok", "not_implemented") else 1


def _outbox(limit: int) -> int:
    from gatewayz.email import sender

    directory = sender.outbox_dir()
    messages = sender.local_messages(directory, limit=max(limit, 1))
    if not messages:
        print(f"the local outbox ({directory}) is empty")
        return 0
    for message in messages:
        print(f"{message['date']}  {message['template']}  to {message['to']}")
        print(f"  {message['subject']}")
        print(f"  {message['text']}\n  {message['html']}")
    return 0


def _migrate(*, seed: bool) -> int:
    from gatewayz import config, db, migrate

    root = config.project_root()
    applied = migrate.apply(db.connection(), root / "infra" / "migrations")
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return _seed() if seed else 0


def _seed() -> int:
    from gatewayz import config, db, seed

    counts = seed.apply(db.connection(), config.project_root() / "infra" / "seed")
    print("seeded " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    return 0


def _reencrypt() -> int:
    """Every stored provider key under the newest key, so older keys can be dropped from
    ENCRYPTION_KEYS; a second run re-encrypts nothing."""
    from gatewayz import crypto, errors
    from gatewayz.identity import provider_keys

    try:
        rotated, total = provider_keys.reencrypt()
    except errors.MissingConfiguration as exc:
        print(f"gatewayz reencrypt: {exc.message}", file=sys.stderr)
        return 1
    except crypto.Undecryptable:
        print(
            "gatewayz reencrypt: a stored provider key opens with none of ENCRYPTION_KEYS;"
            " nothing was changed (add back the key that sealed it)",
            file=sys.stderr,
        )
        return 1
    print(f"re-encrypted {rotated} of {total} provider key(s) with the newest key")
    return 0


def _openapi(output: str | None) -> int:
    from pathlib import Path

    from gatewayz import config
    from gatewayz.dev import local, openapi, samtemplate

    root = config.project_root()
    template = samtemplate.load(root / "template.yaml")
    gateway = local.LocalGateway(template, local.load_functions(root, template))
    path = Path(output) if output else root / openapi.DOCUMENT
    path.write_text(openapi.dumps(gateway.openapi_document()))
    print(f"wrote {path}")
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    if signum != signal.SIGTERM:
        # As SIGTERM, which uvicorn, while it serves, answers by shutting down cleanly.
        signal.raise_signal(signal.SIGTERM)
        return
    raise SystemExit(128 + signum)


def _dev(host: str, port: int) -> int:
    import uvicorn

    from gatewayz import config
    from gatewayz.dev import bootstrap, job_timer, local, samtemplate
    from gatewayz.dev.stripe_standin import local_run

    # EMF metric lines are for CloudWatch; locally they would only bury the request log.
    os.environ.setdefault("GATEWAYZ_METRICS", "off")
    # The offline model stays beside real providers, so the printed snippet works as printed.
    os.environ.setdefault("GATEWAYZ_MOCK", "on")
    # Checkout and the billing portal send the browser back to PUBLIC_URL: this server.
    reach = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - a comparison
    os.environ.setdefault("PUBLIC_URL", f"http://{reach}:{port}")
    # Python dies of SIGTERM and SIGHUP without running its exit hooks, one of which stops
    # the embedded PostgreSQL: exit normally instead. (uvicorn handles SIGTERM while it
    # serves, then raises it again once it has shut down, which lands here; an exception
    # raised into a request in flight would not end the process.)
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, _exit_on_signal)
    root = config.project_root()
    home = config.home()
    print("gatewayz dev: preparing the database (embedded PostgreSQL unless DATABASE_URL)...")
    done = bootstrap.prepare_database(root)
    keys = bootstrap.dev_keys(home)
    config.session_jwt_secret()  # what `gatewayz session` signs with, made now if missing
    standin = local_run.start(host, port)  # before the functions read their settings
    done.update(_served())
    template = samtemplate.load(root / "template.yaml")
    functions = local.load_functions(root, template)
    _banner(host, port, keys, home, done, sorted(functions))
    if standin is not None:
        print(local_run.describe(standin, home), flush=True)
    mounts = {local_run.PREFIX: standin.app} if standin is not None else None
    scheduled = template.functions.get("scheduled")
    # GATEWAYZ_DEV_JOBS=off: no timer (bench/overhead.py counts the request path's own
    # database round trips, which a job running meanwhile would add to).
    jobs_on = os.environ.get("GATEWAYZ_DEV_JOBS", "on") != "off"
    intervals = job_timer.intervals(scheduled.schedules if scheduled else ()) if jobs_on else {}
    timer = job_timer.JobTimer(intervals)
    timer.start()
    try:
        uvicorn.run(
            local.LocalGateway(template, functions, mounts),
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            # The client IP is the socket's: X-Forwarded-For from a local client is not
            # believed.
            proxy_headers=False,
        )
    finally:
        timer.stop()
    return 0


def _served() -> dict[str, Any]:
    """The providers this run calls, and a model to show in the example."""
    from gatewayz.chat import catalog, providers
    from gatewayz.config import get_settings

    upstreams = providers.available(get_settings())
    served = sorted(catalog.models(upstreams))
    model = "mock/echo" if "mock/echo" in served else (served[0] if served else "mock/echo")
    names = [name + (" (offline, mock/echo)" if name == "mock" else "") for name in upstreams]
    return {"providers": names, "model": model}


def _banner(
    host: str,
    port: int,
    keys: DevKeys,
    home: object,
    done: dict[str, Any],
    functions: list[str],
) -> None:
    base = f"http://{host}:{port}"
    print(
        f"""
Gatewayz is running at {base}  (functions: {", ".join(functions)})
database: {done["plans"]} plans, {done["models"]} models, {done["offers"]} offers; \
migrations applied now: {", ".join(done["migrations_applied"]) or "none pending"}
providers: {", ".join(done["providers"])}

  admin key: {keys.admin_key}
  demo key:  {keys.demo_key}   ($10 trial credit)
  (saved to {home}/dev-keys.json)

scheduled jobs: on a timer here (GATEWAYZ_DEV_JOBS=off: none); `gatewayz jobs run NAME` runs one.
e-mails: {_mail_destination()}

Sign up as a new user (a local Supabase-style session; `--unverified` gets no trial):

  TOKEN=$(.venv/bin/gatewayz session me@example.com)
  curl -s -X POST {base}/v1/account -H "Authorization: Bearer $TOKEN"

Try it with the OpenAI SDK (paste into a shell in this folder):

{snippet(base + "/v1", keys.demo_key, done["model"])}
""",
        flush=True,
    )


def _mail_destination() -> str:
    from gatewayz.config import get_settings
    from gatewayz.email import sender

    if get_settings().resend_api_key is not None:
        return "sent through Resend (RESEND_API_KEY is set)"
    return f"kept in the local outbox, {sender.outbox_dir()} (list them: gatewayz outbox)"


def snippet(base_url: str, key: str, model: str) -> str:
    """A shell command that calls the gateway with the official SDK, streamed and not."""
    return f"""{PYTHON} - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="{base_url}", api_key="{key}")
messages = [{{"role": "user", "content": "Hello from the OpenAI SDK"}}]
reply = client.chat.completions.create(model="{model}", messages=messages)
print(reply.choices[0].message.content, f"(cost ${{reply.usage.cost:.9f}})")
stream = client.chat.completions.create(
    model="{model}", messages=messages, stream=True, stream_options={{"include_usage": True}}
)
for chunk in stream:
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="", flush=True)
    elif chunk.usage:
        print(f" (streamed; cost ${{chunk.usage.cost:.9f}})")
PY"""


if __name__ == "__main__":
    sys.exit(main())
