"""Send mail through SMTP when PAPERTIDE_SMTP_URL is set, else write .eml files to the outbox."""

from __future__ import annotations

import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlparse

from papertide.config import Settings


class MailFailure(StrEnum):
    """What a failed hand-off means for the delivery (RFC 5321 §4.2.1: 4yz transient, 5yz permanent)."""

    SERVER = "server"  # no usable server: refused, timed out, dropped, TLS or login failed; temporary
    TEMPORARY = "temporary"  # a 4xx for this message: try the same message again later
    PERMANENT = "permanent"  # a 5xx for this message (MAIL or DATA): it will never be accepted
    RECIPIENT = "recipient"  # a 5xx at RCPT: the address does not take mail; suppress it


class MailError(Exception):
    """The message could not be handed over; the text says to whom and why, `kind` what to do next."""

    def __init__(
        self,
        text: str,
        *,
        kind: MailFailure = MailFailure.TEMPORARY,
        code: int | None = None,
        reply: str | None = None,
    ) -> None:
        super().__init__(text)
        self.kind = kind
        self.code = code
        self.reply = reply  # the server's own words (code and text), when it answered

    @property
    def temporary(self) -> bool:
        return self.kind in (MailFailure.SERVER, MailFailure.TEMPORARY)

    @property
    def permanent(self) -> bool:
        return not self.temporary


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


def classify(error: smtplib.SMTPException | OSError) -> MailError:
    """Read the reply code smtplib carries; anything without one is the server, not the message."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        replies = list(error.recipients.values())
        code, text = replies[0] if replies else (0, b"")
        kind = MailFailure.RECIPIENT if 500 <= code < 600 else MailFailure.TEMPORARY
        return MailError(str(error), kind=kind, code=code, reply=_reply(code, text))
    if isinstance(error, smtplib.SMTPResponseException):
        code, reply = error.smtp_code, _reply(error.smtp_code, error.smtp_error)
        if isinstance(error, _SERVER_REPLIES) or code == 421:  # 421: "closing channel"
            return MailError(str(error), kind=MailFailure.SERVER, code=code, reply=reply)
        kind = MailFailure.PERMANENT if 500 <= code < 600 else MailFailure.TEMPORARY
        return MailError(str(error), kind=kind, code=code, reply=reply)
    # SMTPServerDisconnected (a timeout waiting for a reply ends there), ConnectionRefusedError,
    # socket timeouts, TLS errors, unresolvable hosts: the server, whatever the message.
    return MailError(str(error), kind=MailFailure.SERVER)


# The greeting, our login, the connection itself: failures of the server, not of this message.
_SERVER_REPLIES = (smtplib.SMTPConnectError, smtplib.SMTPHeloError, smtplib.SMTPAuthenticationError)


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {words}".strip()


class SmtpMailer:
    """`smtp://user:pass@host:587?starttls=true` or `smtps://user:pass@host:465`."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise ValueError(f"PAPERTIDE_SMTP_URL must look like smtp://user:pass@host:587, got {url!r}")
        self.implicit_tls = parsed.scheme == "smtps"
        self.host = parsed.hostname
        self.port = parsed.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        options = parse_qs(parsed.query)
        self.starttls = options.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        # Per socket operation: a server that accepts and never answers costs this, not minutes.
        self.timeout = timeout

    def send(self, message: EmailMessage) -> None:
        try:
            with self._connect() as client:
                if self.starttls:
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message)
        except (smtplib.SMTPException, OSError) as error:
            found = classify(error)
            raise MailError(
                f"SMTP {self.host}:{self.port} refused mail to {message['To']}: {found.reply or error}",
                kind=found.kind,
                code=found.code,
                reply=found.reply,
            ) from error

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)


class OutboxMailer:
    """Writes each message as `<time>-<recipient>.eml`; /dev/outbox lists them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        recipient = "".join(c if c.isalnum() or c in "@.-" else "_" for c in str(message["To"]))
        path = self.directory / f"{stamp}-{recipient}.eml"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bytes(message))
        except OSError as error:
            raise MailError(f"cannot write {path}: {error}", kind=MailFailure.SERVER) from error


def mailer_from_settings(settings: Settings) -> Mailer:
    if settings.smtp_url:
        return SmtpMailer(settings.smtp_url, timeout=settings.smtp_timeout_seconds)
    return OutboxMailer(settings.outbox_dir)


def list_outbox(directory: Path) -> list[Path]:
    """Outbox files, newest first."""
    if not directory.exists():
        return []
    return sorted(directory.glob("*.eml"), reverse=True)
