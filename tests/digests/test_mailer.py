"""What a failed hand-off means: smtplib's exceptions read into temporary or permanent, and whose."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest

from papertide.digests.mailer import MailError, MailFailure, OutboxMailer, classify


@pytest.mark.parametrize(
    ("error", "kind", "reply"),
    [
        (
            smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"5.1.1 no such user")}),
            MailFailure.RECIPIENT,
            "550 5.1.1 no such user",
        ),
        (
            smtplib.SMTPRecipientsRefused({"a@example.org": (450, b"4.2.1 mailbox busy")}),
            MailFailure.TEMPORARY,
            "450 4.2.1 mailbox busy",
        ),
        (
            smtplib.SMTPDataError(451, b"4.3.0 try again later"),
            MailFailure.TEMPORARY,
            "451 4.3.0 try again later",
        ),
        (
            smtplib.SMTPDataError(554, b"5.7.1 rejected as spam"),
            MailFailure.PERMANENT,
            "554 5.7.1 rejected as spam",
        ),
        (smtplib.SMTPSenderRefused(553, b"5.7.1 sender refused", "d@localhost"), MailFailure.PERMANENT, None),
        (smtplib.SMTPResponseException(421, b"4.3.2 closing channel"), MailFailure.SERVER, None),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"), MailFailure.SERVER, None),
        (
            smtplib.SMTPServerDisconnected("Connection unexpectedly closed: timed out"),
            MailFailure.SERVER,
            None,
        ),
        (ConnectionRefusedError(111, "Connection refused"), MailFailure.SERVER, None),
        (TimeoutError("timed out"), MailFailure.SERVER, None),
    ],
)
def test_smtp_failures_are_read_by_their_reply_code(
    error: smtplib.SMTPException | OSError, kind: MailFailure, reply: str | None
) -> None:
    found = classify(error)
    assert found.kind == kind
    assert found.temporary == (kind in (MailFailure.SERVER, MailFailure.TEMPORARY))
    if reply is not None:
        assert found.reply == reply


def test_an_outbox_that_cannot_be_written_is_a_mail_error(tmp_path: Path) -> None:
    blocked = tmp_path / "outbox"
    blocked.write_text("a file where the directory should be")
    message = EmailMessage()
    message["To"] = "a@example.org"

    with pytest.raises(MailError) as raised:
        OutboxMailer(blocked).send(message)
    assert raised.value.kind == MailFailure.SERVER
