"""Chat history (docs/api.md, chat history): sessions of a user within an account, their
messages as threads with branches, full-text search, and the injection of a session's
history into a chat request that names it."""
