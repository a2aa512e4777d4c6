"""Gatewayz: an OpenAI-compatible AI gateway; the shared package of every Lambda function.

Importing this package loads nothing: each module is imported where it is used, so a
function pays at cold start only for what it needs (docs/architecture.md; bench/README.md).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
