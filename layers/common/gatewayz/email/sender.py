"""Where e-mail goes (docs/operations.md, e-mail): Resend, or the local outbox.

With `RESEND_API_KEY` set, each e-mail is sent through Resend's API with the official
`resend` package, from `EMAIL_FROM`, to `RESEND_BASE_URL` when set. Its idempotency key
is the outbox row's id, so a retry after a lost answer never sends it twice.

Unset outside Lambda, e-mails are written to the local outbox instead: an `.html` and a
`.txt` file per e-mail under `<GATEWAYZ_HOME>/outbox/`, named
`<created>-<template>-<id>`, the `.txt` starting with its headers. Unset in Lambda,
`from_settings()` raises `MissingConfiguration` (the job reports it).
"""

from __future__ import annotations

import os
from datetime import UTC
from typing import TYPE_CHECKING, Any, Protocol

from gatewayz import config
from gatewayz.errors import MissingConfiguration
from gatewayz.record import record

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

RESEND_API_URL = "https://api.resend.com"
RESEND_TIMEOUT_S = 10  # a batch of sends must fit in the outbox job's lease
LOCAL_FROM = "Gatewayz (local) <noreply@gatewayz.local>"
ERROR_MAX = 300  # characters of a provider's error kept on the row
# Resend refuses these for good: the e-mail itself is wrong, a retry cannot help.
PERMANENT_STATUSES = frozenset({400, 422})


@record
class Message:
    """One rendered e-mail from the outbox."""

    id: str
    to: str
    subject: str
    html: str
    text: str
    template: str
    created_at: datetime


class SendFailed(Exception):
    """The e-mail was not accepted; `retryable` says whether trying later may work."""

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason[:ERROR_MAX])
        self.retryable = retryable


class Sender(Protocol):
    """Delivers one e-mail; returns the provider's message id."""

    name: str

    def send(self, message: Message) -> str:
        """Raises SendFailed."""
        ...


class ResendSender:
    """Resend's `POST /emails`, through the official package."""

    name = "resend"

    def __init__(self, api_key: str, from_address: str, base_url: str | None = None) -> None:
        self._api_key = api_key
        self.from_address = from_address
        self.base_url = (base_url or RESEND_API_URL).rstrip("/")

    def send(self, message: Message) -> str:
        import resend

        # The package is configured through module globals; this process has one Resend.
        resend.api_key = self._api_key
        resend.api_url = self.base_url
        if not getattr(resend.default_http_client, "_gatewayz", False):
            client = resend.RequestsClient(timeout=RESEND_TIMEOUT_S)
            client._gatewayz = True  # type: ignore[attr-defined]
            resend.default_http_client = client
        params: resend.Emails.SendParams = {
            "from": self.from_address,
            "to": [message.to],
            "subject": message.subject,
            "html": message.html,
            "text": message.text,
            "tags": [{"name": "template", "value": message.template}],
        }
        try:
            sent = resend.Emails.send(params, {"idempotency_key": message.id})
        except resend.exceptions.ResendError as exc:
            status = int(exc.code) if str(exc.code).isdigit() else 0
            raise SendFailed(
                f"Resend {exc.code} {exc.error_type}: {exc.message}",
                retryable=status not in PERMANENT_STATUSES,
            ) from None
        return str(sent["id"])


class LocalOutbox:
    """Files instead of e-mail, for a machine with no Resend account."""

    name = "local"

    def __init__(self, directory: Path, from_address: str = LOCAL_FROM) -> None:
        self.directory = directory
        self.from_address = from_address

    def send(self, message: Message) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        # UTC to the microsecond first, so names sort oldest to newest.
        created = message.created_at.astimezone(UTC)
        stem = f"{created:%Y%m%dT%H%M%S%fZ}-{message.template}-{message.id}"
        headers = (
            f"From: {self.from_address}\nTo: {message.to}\nSubject: {message.subject}\n"
            f"Date: {created.isoformat()}\nTemplate: {message.template}\n"
            f"Id: {message.id}\n\n"
        )
        # Written aside, then renamed: a reader never sees half an e-mail.
        for suffix, body in ((".html", message.html), (".txt", headers + message.text)):
            path = self.directory / (stem + suffix)
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(body, encoding="utf-8")
            tmp.replace(path)
        return f"local-{message.id}"


def outbox_dir() -> Path:
    """The local outbox directory (which may not exist yet)."""
    return config.home() / "outbox"


def from_settings() -> Sender:
    """Resend when `RESEND_API_KEY` is set, else (outside Lambda) the local outbox.

    Raises:
        MissingConfiguration: RESEND_API_KEY unset in Lambda, or EMAIL_FROM unset with it.
    """
    settings = config.get_settings()
    if settings.resend_api_key is None:
        if config.in_lambda():
            raise MissingConfiguration("RESEND_API_KEY")
        return LocalOutbox(outbox_dir(), settings.email_from or LOCAL_FROM)
    if not settings.email_from:
        raise MissingConfiguration("EMAIL_FROM")
    return ResendSender(
        settings.resend_api_key.get_secret_value(), settings.email_from, settings.resend_base_url
    )


def local_messages(directory: Path, limit: int = 20) -> list[dict[str, Any]]:
    """The local outbox, newest first: each e-mail's headers and its two files."""
    if not directory.is_dir():
        return []
    found = sorted(directory.glob("*.txt"), key=lambda p: p.name, reverse=True)[:limit]
    messages = []
    for path in found:
        head = path.read_text(encoding="utf-8").split("\n\n", 1)[0]
        fields = dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)
        messages.append(
            {
                "date": fields.get("Date"),
                "template": fields.get("Template"),
                "to": fields.get("To"),
                "subject": fields.get("Subject"),
                "text": str(path),
                "html": str(path.with_suffix(".html")),
            }
        )
    return messages
