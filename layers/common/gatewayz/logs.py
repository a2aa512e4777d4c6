"""Structured JSON logs through aws-lambda-powertools, one logger per process."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools.logging import Logger


@lru_cache(maxsize=1)
def get_logger() -> Logger:
    """The process logger; its service name comes from `POWERTOOLS_SERVICE_NAME`."""
    from aws_lambda_powertools.logging import Logger

    return Logger(
        service=os.environ.get("POWERTOOLS_SERVICE_NAME", "gatewayz"),
        level=os.environ.get("LOG_LEVEL", "INFO"),
    )
