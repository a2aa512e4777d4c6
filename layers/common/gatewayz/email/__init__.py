"""E-mail notices (docs/operations.md, e-mail): queued in `email_outbox` in the same
transaction as the change they report, sent later by the `email_outbox` job."""
