"""Settings from one AWS Secrets Manager secret (docs/deployment.md).

When `GATEWAYZ_SECRET_ID` names a secret (its ARN or name), `get_settings()` reads it once
per process, on its first call (cold start), never at import. The secret is a JSON object
whose keys are the variable names (`DATABASE_URL`, `STRIPE_SECRET_KEY`, ...). It ranks
below the environment: a variable that is set wins, so local runs and one-off overrides
need no change to the secret. Powertools parameters (boto3 underneath, which the Lambda
runtime ships) are imported only when the setting is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from pydantic_settings import PydanticBaseSettingsSource

from gatewayz.errors import MissingConfiguration
from gatewayz.logs import get_logger

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

__all__ = ["SECRET_SETTING", "SecretsManagerSource", "read"]

SECRET_SETTING = "GATEWAYZ_SECRET_ID"  # noqa: S105 (a variable's name, not a secret)
_FIELD = SECRET_SETTING.lower()


class SecretsManagerSource(PydanticBaseSettingsSource):
    """The secret's keys as settings; empty when no secret is named."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Unused: __call__ reads the whole secret at once.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        # The sources ranked above this one (init, environment) have run: the secret's
        # name is itself a setting, so a local override can point elsewhere.
        secret_id = self.current_state.get(_FIELD)
        if not secret_id:
            return {}
        fields = self.settings_cls.model_fields
        values: dict[str, Any] = {}
        for key, value in read(str(secret_id)).items():
            name = key.lower()
            # Like an empty variable, an empty value means "not configured".
            if name in fields and value not in ("", None):
                values[name] = value
        return values


def read(secret_id: str) -> dict[str, Any]:
    """The secret `secret_id` as a JSON object, fetched from Secrets Manager now.

    Raises:
        MissingConfiguration: it cannot be read or is not a JSON object (503 naming
            `GATEWAYZ_SECRET_ID`); the log says why, never with the value.
    """
    from aws_lambda_powertools.utilities.parameters import (
        GetParameterError,
        TransformParameterError,
        get_secret,
    )
    from botocore.exceptions import BotoCoreError

    try:
        # force_fetch: get_settings() is the one cache; Powertools' own (5 s) would only
        # hide a changed secret from a fresh read.
        document: object = get_secret(secret_id, transform="json", force_fetch=True)
    except (GetParameterError, BotoCoreError) as exc:
        # Their messages carry the AWS error (not found, access denied), never the value.
        _refuse(secret_id, f"{type(exc).__name__}: {exc}")
    except TransformParameterError:
        _refuse(secret_id, "not JSON")
    if not isinstance(document, dict):
        _refuse(secret_id, f"not a JSON object (a {type(document).__name__})")
    return document


def _refuse(secret_id: str, reason: str) -> NoReturn:
    get_logger().error(
        "settings: the secret cannot be used",
        extra={"setting": SECRET_SETTING, "secret_id": secret_id, "error": reason},
    )
    raise MissingConfiguration(SECRET_SETTING, invalid=True)
