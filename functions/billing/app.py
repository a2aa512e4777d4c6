"""The billing function: credits, transactions, usage, plans, Stripe checkout and portal,
subscription and trial (docs/architecture.md).

Until its issue lands this function serves only `GET /health`; its other paths are
routed here by template.yaml and answer 404 in the error envelope.
"""

from gatewayz.http import create_app, lambda_handler

app = create_app("billing")
handler = lambda_handler(app)
