"""The history function: chat sessions and their messages, with search (docs/architecture.md).

Until its issue lands this function serves only `GET /health`; its other paths are
routed here by template.yaml and answer 404 in the error envelope.
"""

from gatewayz.http import create_app, lambda_handler

app = create_app("history")
handler = lambda_handler(app)
