"""The offline model behind the `mock` provider (gatewayz/chat/providers/mock.py): what it
answers (`replies`), JSON values made from a JSON schema (`json_values`), and the
log-probabilities it reports (`logprobs`). Deterministic, and no network."""
