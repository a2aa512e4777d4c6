"""template.yaml deploys the gateway docs/architecture.md describes; infra/events are real events.

Everything is read through `gatewayz.dev.samtemplate` (parsed, with Globals merged as SAM
merges them), never grepped. `infra/local/sam-check` runs cfn-lint and `sam build` on top.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from mangum import Mangum

from gatewayz.config import Settings
from gatewayz.dev import samtemplate
from tests.pg import ROOT

if TYPE_CHECKING:
    from pathlib import Path

    from starlette.types import Receive, Scope, Send

GROUPS = ["chat", "images", "keys", "billing", "history", "referrals", "coupons", "webhooks"]
ALL_GROUPS = [*GROUPS, "scheduled"]
JOBS = {
    "trial_expiry",
    "key_rotation",
    "hold_sweeper",
    "low_balance_alerts",
    "auto_topup",
    "email_outbox",
    "catalog_refresh",
}

# Each route group's paths, one request per documented path (several for a resource with sub-paths).
ROUTED = [
    ("POST", "/v1/chat/completions", "chat"),
    ("POST", "/v1/completions", "chat"),
    ("POST", "/v1/embeddings", "chat"),
    ("GET", "/v1/models", "chat"),
    ("GET", "/v1/models/gpt-4o", "chat"),
    ("GET", "/v1/models/openai/gpt-4o-mini", "chat"),
    ("GET", "/v1/generation", "chat"),
    ("GET", "/health", "chat"),
    ("POST", "/v1/images/generations", "images"),
    ("POST", "/v1/keys", "keys"),
    ("GET", "/v1/keys", "keys"),
    ("GET", "/v1/keys/key_123", "keys"),
    ("PATCH", "/v1/keys/key_123", "keys"),
    ("DELETE", "/v1/keys/key_123", "keys"),
    ("POST", "/v1/keys/key_123/rotate", "keys"),
    ("GET", "/v1/key", "keys"),
    ("GET", "/v1/account", "keys"),
    ("POST", "/v1/account", "keys"),
    ("PATCH", "/v1/account", "keys"),
    ("GET", "/v1/teams", "keys"),
    ("POST", "/v1/teams/team_1/members", "keys"),
    ("DELETE", "/v1/teams/team_1/members/user_2", "keys"),
    ("POST", "/v1/invitations/gwinv_abc/accept", "keys"),
    ("GET", "/v1/audit-logs", "keys"),
    ("GET", "/admin/users", "keys"),
    ("PATCH", "/admin/users/user_1", "keys"),
    ("POST", "/admin/credits", "keys"),
    ("GET", "/admin/audit-logs", "keys"),
    ("GET", "/v1/credits", "billing"),
    ("GET", "/v1/credits/transactions", "billing"),
    ("GET", "/v1/usage", "billing"),
    ("GET", "/v1/plans", "billing"),
    ("POST", "/v1/billing/checkout", "billing"),
    ("POST", "/v1/billing/portal", "billing"),
    ("GET", "/v1/subscription", "billing"),
    ("GET", "/v1/trial", "billing"),
    ("GET", "/v1/chat/sessions", "history"),
    ("POST", "/v1/chat/sessions", "history"),
    ("GET", "/v1/chat/sessions/sess_1", "history"),
    ("PATCH", "/v1/chat/sessions/sess_1", "history"),
    ("DELETE", "/v1/chat/sessions/sess_1", "history"),
    ("GET", "/v1/chat/sessions/sess_1/messages", "history"),
    ("POST", "/v1/chat/sessions/sess_1/messages", "history"),
    ("GET", "/v1/chat/sessions/search", "history"),
    ("GET", "/v1/referrals", "referrals"),
    ("POST", "/v1/referrals/apply", "referrals"),
    ("POST", "/v1/coupons/redeem", "coupons"),
    ("GET", "/v1/coupons/redemptions", "coupons"),
    ("GET", "/admin/coupons", "coupons"),
    ("POST", "/admin/coupons", "coupons"),
    ("PATCH", "/admin/coupons/cpn_1", "coupons"),
    ("POST", "/webhooks/stripe", "webhooks"),
]
# A known path with a wrong method is routed (its function answers the 405); these
# paths no function serves.
NOT_ROUTED = [
    ("GET", "/v1/chat"),
    ("POST", "/v1/chat/completions/extra"),
    ("GET", "/v1/embedding"),
    ("POST", "/webhooks/paypal"),
    ("GET", "/"),
]

DOCUMENTED_VARIABLES = {
    "DATABASE_URL",
    "REDIS_URL",
    "UPSTASH_REDIS_REST_URL",
    "UPSTASH_REDIS_REST_TOKEN",
    "OPENROUTER_API_KEY",
    "PORTKEY_API_KEY",
    "FEATHERLESS_API_KEY",
    "CHUTES_API_KEY",
    "OPENROUTER_BASE_URL",
    "PORTKEY_BASE_URL",
    "FEATHERLESS_BASE_URL",
    "CHUTES_BASE_URL",
    "KEY_HASH_SECRET",
    "ENCRYPTION_KEYS",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE",
    "RESEND_API_KEY",
    "EMAIL_FROM",
    "RESEND_BASE_URL",
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "SUPABASE_JWT_SECRET",
}
SECRETS = {
    "DATABASE_URL",
    "REDIS_URL",
    "UPSTASH_REDIS_REST_TOKEN",
    "OPENROUTER_API_KEY",
    "PORTKEY_API_KEY",
    "FEATHERLESS_API_KEY",
    "CHUTES_API_KEY",
    "KEY_HASH_SECRET",
    "ENCRYPTION_KEYS",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "RESEND_API_KEY",
    "SUPABASE_ANON_KEY",
    "SUPABASE_JWT_SECRET",
}
PROVIDERS = {
    f"{name}_{suffix}"
    for name in ("OPENROUTER", "PORTKEY", "FEATHERLESS", "CHUTES")
    for suffix in ("API_KEY", "BASE_URL")
}
# What a function cannot work without, beyond the store and the key pepper every one gets.
NEEDS = {
    "chat": PROVIDERS | {"ENCRYPTION_KEYS"},
    "images": PROVIDERS | {"ENCRYPTION_KEYS"},
    "keys": {"ENCRYPTION_KEYS", "SUPABASE_URL", "SUPABASE_JWT_SECRET"},
    "billing": {"STRIPE_SECRET_KEY", "STRIPE_API_BASE"},
    "webhooks": {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE"},
    "scheduled": PROVIDERS | {"RESEND_API_KEY", "EMAIL_FROM", "RESEND_BASE_URL"},
}
EVERY_FUNCTION_NEEDS = {
    "DATABASE_URL",
    "REDIS_URL",
    "UPSTASH_REDIS_REST_URL",
    "UPSTASH_REDIS_REST_TOKEN",
    "KEY_HASH_SECRET",
}
LWA_LAYER = re.compile(
    r"^arn:aws:lambda:\$\{AWS::Region\}:753240598075:layer:LambdaAdapterLayer(X86|Arm64):(\d+)$"
)
EVENTS = ROOT / "infra" / "events"


@pytest.fixture(scope="module")
def template() -> samtemplate.Template:
    return samtemplate.load(ROOT / "template.yaml")


def resource(template: samtemplate.Template, logical_id: str) -> dict[str, Any]:
    resources: dict[str, Any] = template.raw["Resources"]
    return resources[logical_id]


def rate_seconds(expression: str) -> int:
    found = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    assert found, f"{expression} is not a rate()"
    unit = {"minute": 60, "hour": 3600, "day": 86400}[found[2].rstrip("s")]
    return int(found[1]) * unit


# --- functions and the layer ---------------------------------------------------------------


def test_there_is_one_function_per_group_with_its_own_code(
    template: samtemplate.Template,
) -> None:
    assert sorted(template.functions) == sorted(ALL_GROUPS)
    for group, function in template.functions.items():
        assert function.logical_id == f"{group.capitalize()}Function"
        assert function.code_uri == f"functions/{group}/"
        assert (ROOT / function.code_uri / "app.py").is_file(), f"functions/{group}/app.py"
        assert function.properties["Runtime"] == "python3.13"
        assert function.environment["POWERTOOLS_SERVICE_NAME"] == f"gatewayz-{group}"


def test_every_handler_exists(template: samtemplate.Template) -> None:
    for function in template.functions.values():
        folder = ROOT / function.code_uri
        if function.handler.endswith(".sh"):
            script = folder / function.handler
            assert os.access(script, os.X_OK), f"{script} is missing or not executable"
            continue
        module, _, name = function.handler.rpartition(".")
        source = folder / f"{module.replace('.', '/')}.py"
        tree = ast.parse(source.read_text())
        defined = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        } | {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert name in defined, f"{source} defines no {name}"


def test_every_function_runs_on_the_common_layer_built_for_python_3_13(
    template: samtemplate.Template,
) -> None:
    layer = template.layers["CommonLayer"]
    assert layer["ContentUri"] == "layers/common/"
    assert "python3.13" in layer["CompatibleRuntimes"]
    assert resource(template, "CommonLayer")["Metadata"]["BuildMethod"] == "makefile"
    assert (ROOT / "layers" / "common" / "requirements.txt").is_file()
    assert (ROOT / "layers" / "common" / "gatewayz" / "__init__.py").is_file()
    for function in template.functions.values():
        layers = function.properties["Layers"]
        assert {"Ref": "CommonLayer"} in layers, function.logical_id
        architectures = function.properties["Architectures"]
        assert architectures == layer["CompatibleArchitectures"], function.logical_id


# --- routes ----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "group"), ROUTED)
def test_each_design_path_reaches_its_group(
    template: samtemplate.Template, method: str, path: str, group: str
) -> None:
    matched = samtemplate.match(template.routes, method, path)
    assert matched is not None, f"{method} {path} is not routed"
    assert matched[0].group == group


@pytest.mark.parametrize(("method", "path"), NOT_ROUTED)
def test_paths_outside_the_design_are_not_routed(
    template: samtemplate.Template, method: str, path: str
) -> None:
    assert samtemplate.match(template.routes, method, path) is None


def test_a_model_id_with_slashes_reaches_chat_whole(template: samtemplate.Template) -> None:
    matched = samtemplate.match(template.routes, "GET", "/v1/models/openai/gpt-4o-mini")
    assert matched is not None
    assert matched[1] == {"proxy": "openai/gpt-4o-mini"}


def test_no_two_routes_share_a_method_and_path(template: samtemplate.Template) -> None:
    keys = [(route.method, route.path) for route in template.routes]
    assert len(keys) == len(set(keys))


def test_api_events_all_use_the_one_rest_api(template: samtemplate.Template) -> None:
    apis = [
        name
        for name, value in template.raw["Resources"].items()
        if value["Type"] in {"AWS::Serverless::Api", "AWS::Serverless::HttpApi"}
    ]
    assert apis == ["GatewayApi"]
    for function in template.functions.values():
        for name, event in function.properties.get("Events", {}).items():
            if event["Type"] == "Api":
                assert event["Properties"]["RestApiId"] == {"Ref": "GatewayApi"}, name


# --- streaming chat behind the Lambda Web Adapter ------------------------------------------


def test_only_chat_streams_and_every_chat_route_does(template: samtemplate.Template) -> None:
    for function in template.functions.values():
        assert function.streaming == (function.group == "chat"), function.group
        # A streamed route must reach a function that writes the streaming format (the
        # adapter); a Mangum handler's buffered reply would not parse.
        assert {route.streaming for route in function.routes} <= {function.streaming}


def test_chat_runs_under_the_lambda_web_adapter(template: samtemplate.Template) -> None:
    chat = template.functions["chat"]
    assert chat.handler == "run.sh"
    env = chat.environment
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    run_sh = (ROOT / "functions" / "chat" / "run.sh").read_text()
    assert "${PORT:-" in run_sh
    assert "app:app" in run_sh
    # /health checks the database: it must not gate the adapter's readiness.
    assert env.get("AWS_LWA_READINESS_CHECK_PATH") != "/health"
    adapters = [
        found
        for layer in chat.properties["Layers"]
        if isinstance(layer, dict) and (found := LWA_LAYER.match(str(layer.get("Fn::Sub", ""))))
    ]
    assert len(adapters) == 1
    variant, version = adapters[0].groups()
    assert int(version) >= 25
    assert variant == {"x86_64": "X86", "arm64": "Arm64"}[chat.properties["Architectures"][0]]


def test_streamed_routes_may_run_as_long_as_chat(template: samtemplate.Template) -> None:
    chat = template.functions["chat"]
    timeout_ms = int(chat.properties["Timeout"]) * 1000
    events = chat.properties["Events"]
    for name, event in events.items():
        integration_ms = event["Properties"].get("TimeoutInMillis", 29_000)
        assert integration_ms <= min(timeout_ms, 900_000), name
    # API Gateway ends a buffered integration at 29 s: a longer Lambda timeout is waste.
    for group in GROUPS:
        if group != "chat":
            assert int(template.functions[group].properties["Timeout"]) <= 29, group


def test_a_credit_hold_outlives_the_longest_request(template: samtemplate.Template) -> None:
    # A hold the sweeper ends while its request is still running would be charged (or
    # returned) before the request settles; a stream ends itself before either deadline.
    chat = template.functions["chat"]
    literal = {k.lower(): v for k, v in chat.environment.items() if isinstance(v, str)}
    settings = Settings(**{k: v for k, v in literal.items() if k in Settings.model_fields})
    timeout_s = int(chat.properties["Timeout"])
    assert settings.hold_ttl_s > timeout_s
    assert settings.stream_deadline_margin_s < timeout_s
    # The sweeper runs several times per hold lifetime, so a dead stream is charged soon.
    (sweeper,) = [s for s in template.functions["scheduled"].schedules if s.job == "hold_sweeper"]
    assert sweeper.expression == "rate(5 minutes)"
    assert settings.hold_ttl_s > 5 * 60


def test_the_api_is_regional_so_streams_may_idle_five_minutes(
    template: samtemplate.Template,
) -> None:
    api = resource(template, "GatewayApi")["Properties"]
    assert api["EndpointConfiguration"]["Type"] == "REGIONAL"


# --- schedules ---------------------------------------------------------------------------


def test_every_job_has_a_schedule_with_retries_and_a_dead_letter_queue(
    template: samtemplate.Template,
) -> None:
    scheduled = template.functions["scheduled"]
    assert scheduled.routes == ()
    schedules = {schedule.job: schedule for schedule in scheduled.schedules}
    assert set(schedules) == JOBS
    assert len(scheduled.schedules) == len(JOBS)
    for name, event in scheduled.properties["Events"].items():
        assert event["Type"] == "ScheduleV2", name
        arn = event["Properties"]["DeadLetterConfig"]["Arn"]
        queue_id = arn["Fn::GetAtt"][0]
        assert resource(template, queue_id)["Type"] == "AWS::SQS::Queue"
        retry = event["Properties"]["RetryPolicy"]
        assert retry["MaximumEventAgeInSeconds"] >= 60, name
    for schedule in schedules.values():
        assert schedule.omit_name, schedule.job
        assert schedule.has_dead_letter, schedule.job
        assert schedule.retry_attempts is not None
        assert schedule.retry_attempts >= 1
    assert rate_seconds(schedules["hold_sweeper"].expression) <= 5 * 60
    assert rate_seconds(schedules["email_outbox"].expression) <= 5 * 60
    assert rate_seconds(schedules["auto_topup"].expression) <= 5 * 60
    for job in ("trial_expiry", "key_rotation", "low_balance_alerts"):
        assert rate_seconds(schedules[job].expression) <= 3600, job
    daily = re.fullmatch(
        r"cron\((\d+) (\d+) \* \* \? \*\)", schedules["catalog_refresh"].expression
    )
    assert daily, schedules["catalog_refresh"].expression


# --- configuration ---------------------------------------------------------------------------


def test_every_design_variable_reaches_the_functions(template: samtemplate.Template) -> None:
    passed = {name for f in template.functions.values() for name in f.environment}
    assert passed >= DOCUMENTED_VARIABLES, DOCUMENTED_VARIABLES - passed
    for group, function in template.functions.items():
        needed = EVERY_FUNCTION_NEEDS | NEEDS.get(group, set())
        assert needed <= set(function.environment), (group, needed - set(function.environment))


def test_secrets_come_only_from_noecho_parameters(template: samtemplate.Template) -> None:
    for function in template.functions.values():
        for name, value in function.environment.items():
            if isinstance(value, dict) and "Ref" in value:
                assert value["Ref"] in template.parameters, f"{name}: unknown {value['Ref']}"
            if name not in SECRETS:
                continue
            assert isinstance(value, dict), f"{name} is written into the template"
            assert set(value) == {"Ref"}, f"{name} is not a Ref"
            parameter = template.parameters[value["Ref"]]
            assert parameter.get("NoEcho") is True, f"{value['Ref']} is not NoEcho"
            assert parameter.get("Default", "") == "", f"{value['Ref']} has a default secret"


def test_a_deploy_with_default_parameters_starts(
    template: samtemplate.Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every function's settings load from the template's defaults (unset secrets -> 503s)."""
    for function in template.functions.values():
        for name, value in function.environment.items():
            if isinstance(value, dict):
                value = template.parameters[value["Ref"]].get("Default", "")
            monkeypatch.setenv(name, str(value))
        settings = Settings()
        assert settings.key_hash_secret is None
        assert settings.openrouter_base_url.startswith("https://")


# --- sample events -------------------------------------------------------------------------


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    seen = {
        "method": scope["method"],
        "path": scope["path"],
        "client": scope["client"][0],
        "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
        "body": body.decode(),
    }
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(seen).encode()})


def test_every_http_group_has_a_health_event_and_chat_a_completion() -> None:
    for group in GROUPS:
        assert (EVENTS / group / "health.json").is_file(), group
    assert (EVENTS / "chat" / "chat-completions.json").is_file()


@pytest.mark.parametrize(
    "path", sorted(EVENTS.glob("*/*.json")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_each_event_is_what_its_source_sends(template: samtemplate.Template, path: Path) -> None:
    event = json.loads(path.read_text())
    if path.parent.name == "scheduled":
        job = path.stem
        assert event == {"job": job}
        assert job in {s.job for s in template.functions["scheduled"].schedules}
        return
    context = event["requestContext"]
    assert event["httpMethod"] == context["httpMethod"]
    assert context["resourcePath"] == event["resource"]
    assert context["path"] == f"/{context['stage']}{event['path']}"
    assert context["requestId"]
    assert context["identity"]["sourceIp"]
    assert {k: [v] for k, v in event["headers"].items()} == event["multiValueHeaders"]
    assert event["isBase64Encoded"] is False
    matched = samtemplate.match(template.routes, event["httpMethod"], event["path"])
    assert matched is not None
    assert matched[0].path == event["resource"]

    result = Mangum(_echo, lifespan="off")(event, SimpleNamespace())
    seen = json.loads(result["body"])
    assert seen["method"] == event["httpMethod"]
    assert seen["path"] == event["path"]
    assert seen["client"] == context["identity"]["sourceIp"]
    assert seen["body"] == (event["body"] or "")
    assert seen["headers"]["host"] == context["domainName"]


def test_the_completion_event_carries_a_test_key_and_a_mock_request() -> None:
    event = json.loads((EVENTS / "chat" / "chat-completions.json").read_text())
    assert (event["httpMethod"], event["path"]) == ("POST", "/v1/chat/completions")
    assert event["headers"]["Authorization"] == "Bearer gw_test_x"
    assert json.loads(event["body"]) == {
        "model": "mock/echo",
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_every_scheduled_job_has_an_event() -> None:
    assert {p.stem for p in (EVENTS / "scheduled").glob("*.json")} == JOBS


def test_the_layer_build_leaves_out_the_local_tooling(tmp_path: Path) -> None:
    # What `sam build` runs for CommonLayer, with pip replaced by a no-op (make-template-check
    # runs the real one): the package goes in whole, except gatewayz/dev.
    layer = ROOT / "layers" / "common"
    subprocess.run(
        ["make", "--silent", "-C", str(layer), "build-CommonLayer",
         f"ARTIFACTS_DIR={tmp_path}", "PIP=true"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    built = tmp_path / "python" / "gatewayz"
    source = layer / "gatewayz"
    expected = {
        p.relative_to(source)
        for p in source.rglob("*.py")
        if p.relative_to(source).parts[0] != "dev" and "__pycache__" not in p.parts
    }
    assert {p.relative_to(built) for p in built.rglob("*") if p.is_file()} == expected
    assert (built / "chat" / "completions.py").is_file()
    assert not (built / "dev").exists()


# --- architecture ----------------------------------------------------------------------------

WHEEL_ARCH = {"arm64": "aarch64", "x86_64": "x86_64"}


def test_the_layer_is_built_for_the_architecture_its_functions_run_on(
    template: samtemplate.Template,
) -> None:
    (architecture,) = template.layers["CommonLayer"]["CompatibleArchitectures"]
    metadata = resource(template, "CommonLayer")["Metadata"]
    assert metadata["BuildArchitecture"] == architecture
    for function in template.functions.values():
        assert function.properties["Architectures"] == [architecture], function.logical_id
    # sam build passes no architecture to a makefile build: the layer's Makefile names it,
    # and its pip install must ask for that architecture's wheels (a dry run shows it).
    planned = subprocess.run(
        ["make", "--silent", "--dry-run", "-C", str(ROOT / "layers" / "common"),
         "build-CommonLayer", "ARTIFACTS_DIR=/nonexistent"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    wheel = WHEEL_ARCH[architecture]
    platforms = set(re.findall(r"--platform (\S+)", planned))
    assert platforms == {f"manylinux2014_{wheel}", f"manylinux_2_28_{wheel}"}
