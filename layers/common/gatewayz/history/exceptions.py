"""The errors of chat history; each carries its status, type and code (gatewayz.errors)."""

from __future__ import annotations

from gatewayz import errors


class SessionNotFound(errors.NotFound):
    """No such session for this user in this account (another's, deleted, or never)."""

    code = "session_not_found"


class MessageNotFound(errors.NotFound):
    """A `parent_id` that is not a message of the session."""

    code = "message_not_found"


def session_not_found(session_id: str, *, param: str | None = None) -> SessionNotFound:
    """The 404 for `session_id`, whichever way it is missing: existence never leaks."""
    return SessionNotFound(f"No chat session `{errors.quote(session_id)}` found.", param=param)
