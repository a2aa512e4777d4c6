"""template.yaml: every function may read the one settings secret, and nothing else of Secrets
Manager, and only when the `SecretArn` parameter names one (docs/deployment.md)."""

from __future__ import annotations

import json
import re

import pytest

from gatewayz.config import Settings
from gatewayz.dev import samtemplate
from tests.pg import ROOT

READ_THE_SECRET = {
    "Fn::If": [
        "HasSecret",
        {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "SecretArn"}}},
        {"Ref": "AWS::NoValue"},
    ]
}
ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gatewayz/prod-AbCdEf"


@pytest.fixture(scope="module")
def template() -> samtemplate.Template:
    return samtemplate.load(ROOT / "template.yaml")


def test_the_secret_parameter_is_an_optional_secret_arn(template: samtemplate.Template) -> None:
    parameter = template.parameters["SecretArn"]
    assert parameter["Type"] == "String"
    assert parameter["Default"] == ""
    pattern = re.compile(str(parameter["AllowedPattern"]))
    assert pattern.fullmatch("")
    assert pattern.fullmatch(ARN)
    assert pattern.fullmatch(ARN.replace("arn:aws:", "arn:aws-us-gov:"))
    # The policy needs the full ARN; a bare name would grant nothing and fail every read.
    assert not pattern.fullmatch("gatewayz/prod")
    assert not pattern.fullmatch("arn:aws:ssm:eu-west-1:123456789012:parameter/gatewayz")
    conditions = template.raw["Conditions"]
    assert isinstance(conditions, dict)
    assert conditions["HasSecret"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "SecretArn"}, ""]}]}


def test_every_function_is_told_the_secret(template: samtemplate.Template) -> None:
    for group, function in template.functions.items():
        assert function.environment["GATEWAYZ_SECRET_ID"] == {"Ref": "SecretArn"}, group
    assert "gatewayz_secret_id" in Settings.model_fields


def test_every_function_may_read_that_secret_only(template: samtemplate.Template) -> None:
    for group, function in template.functions.items():
        policies = function.properties.get("Policies")
        assert policies == [READ_THE_SECRET], group
        # Nothing else in the function grants Secrets Manager (a role, a statement, a wildcard).
        assert "Role" not in function.properties, group
        text = json.dumps({k: v for k, v in function.properties.items() if k != "Policies"})
        assert "secretsmanager" not in text.lower(), group
        assert "SecretsManager" not in text, group


def test_a_deploy_without_the_secret_reads_none(
    template: samtemplate.Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The parameter's default reaches the function as `GATEWAYZ_SECRET_ID=`: unset, so no
    # AWS call is made and the plaintext parameters apply as before.
    monkeypatch.setenv("GATEWAYZ_SECRET_ID", str(template.parameters["SecretArn"]["Default"]))
    assert Settings().gatewayz_secret_id is None
