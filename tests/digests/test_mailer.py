"""What a failed hand-off means: smtplib's exceptions read into temporary or permanent, and whose."""

from __future__ import annotations

import asyncio
import re
import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from papertide.digests.mailer import (
    Envelope,
    MailError,
    MailFailure,
    OutboxMailer,
    SmtpMailer,
    classify,
)
from tests.helpers import Inbox, free_port, smtp_server


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
            smtplib.SMTPDataError(554, b"5.6.0 message content refused"),
            MailFailure.PERMANENT,
            "554 5.6.0 message content refused",
        ),
        # Policy and credentials (5.7.x, 530): about our server settings, so every recipient would
        # fail alike. The run stops and leaves them for later; nobody is failed or suppressed.
        (smtplib.SMTPDataError(554, b"5.7.1 rejected as spam"), MailFailure.SERVER, None),
        (smtplib.SMTPSenderRefused(553, b"5.7.1 sender refused", "d@localhost"), MailFailure.SERVER, None),
        (
            smtplib.SMTPRecipientsRefused(
                {"a@example.org": (554, b"5.7.1 <a@example.org>: Relay access denied")}
            ),
            MailFailure.SERVER,
            None,
        ),
        (smtplib.SMTPSenderRefused(530, b"Authentication required", "d@localhost"), MailFailure.SERVER, None),
        (
            smtplib.SMTPRecipientsRefused({"a@example.org": (530, b"5.7.0 Authentication required")}),
            MailFailure.SERVER,
            None,
        ),
        # Only a bad address is suppressed, as its enhanced code says (5.1.x, 5.2.1). A 5xx with no
        # enhanced code is also a relay's refusal of everyone (Exim's default words): retried
        # within the window (then failed), nobody suppressed, not the whole list failed at once.
        (
            smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"User unknown")}),
            MailFailure.TEMPORARY,
            None,
        ),
        (
            smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"relay not permitted")}),
            MailFailure.TEMPORARY,
            None,
        ),
        (
            smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"5.2.1 mailbox disabled")}),
            MailFailure.RECIPIENT,
            None,
        ),
        # qmail writes its enhanced code at the end: relaying refused, about us.
        (
            smtplib.SMTPRecipientsRefused(
                {"a@example.org": (553, b"sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)")}
            ),
            MailFailure.SERVER,
            None,
        ),
        # 421 "closing channel" at RCPT, as at MAIL: the server's failure.
        (
            smtplib.SMTPRecipientsRefused({"a@example.org": (421, b"4.3.2 Service shutting down")}),
            MailFailure.SERVER,
            None,
        ),
        # Our own sender address refused: every message alike. But for one too big for the server.
        (
            smtplib.SMTPSenderRefused(553, b"5.1.8 <d@localhost>: Sender address rejected", "d@localhost"),
            MailFailure.SERVER,
            None,
        ),
        (
            smtplib.SMTPSenderRefused(552, b"5.3.4 Message size exceeds fixed limit", "d@localhost"),
            MailFailure.PERMANENT,
            None,
        ),
        (
            smtplib.SMTPSenderRefused(451, b"4.3.0 try again later", "d@localhost"),
            MailFailure.TEMPORARY,
            None,
        ),
        (
            smtplib.SMTPRecipientsRefused({"a@example.org": (552, b"5.2.2 mailbox full")}),
            MailFailure.PERMANENT,
            None,
        ),
        (smtplib.SMTPRecipientsRefused({"a@example.org": (554, b"refused")}), MailFailure.TEMPORARY, None),
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


class RudeAtQuit:
    """Accepts the message, then answers QUIT with an error (as some servers do under load)."""

    def __init__(self) -> None:
        self.accepted = 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.accepted += 1
        return "250 OK"

    async def handle_QUIT(self, server: object, session: object, envelope: object) -> str:
        return "421 4.3.2 going down"


def test_a_message_the_server_accepted_is_sent_whatever_it_answers_to_quit() -> None:
    handler = RudeAtQuit()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "d@localhost", "a@example.org", "digest"
        message.set_content("papers")
        SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=5).send(message)  # no MailError: it was accepted
    finally:
        controller.stop()
    assert handler.accepted == 1


class Sessions(Inbox):
    """Keeps every message with the connection it came on; refuses RCPT for `refuse`."""

    def __init__(self, refuse: str = "") -> None:
        super().__init__()
        self.refuse = refuse
        self.sessions: list[int] = []

    async def handle_RCPT(
        self, server: object, session: object, envelope: object, address: str, options: list[str]
    ) -> str:
        if address == self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.sessions.append(id(session))
        return await super().handle_DATA(server, session, envelope)


def envelope(to: str) -> Envelope:
    """A stored message as the ledger keeps it: LF line ends, a line that starts with a dot."""
    data = (
        f"From: papertide <d@localhost>\nTo: {to}\nSubject: digest\nMessage-ID: <{to}>\n\n"
        "papers\n.hidden dot line\nend\n"
    )
    return Envelope("d@localhost", to, data.encode())


def test_a_session_sends_many_messages_on_one_connection_as_the_stored_bytes() -> None:
    inbox = Sessions()
    with smtp_server(inbox) as port:
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=5)
        with mailer.session() as post:
            for n in range(3):
                post.send(envelope(f"r{n}@example.org"))

    assert len(set(inbox.sessions)) == 1
    assert [m["To"] for m in inbox.messages] == ["r0@example.org", "r1@example.org", "r2@example.org"]
    assert inbox.raw[0] == envelope("r0@example.org").data.replace(b"\n", b"\r\n"), (
        "byte for byte what was stored, with SMTP's line ends"
    )


class MailOptions(Inbox):
    """Keeps each message's MAIL FROM parameters (SMTPUTF8, BODY=8BITMIME)."""

    def __init__(self) -> None:
        super().__init__()
        self.options: list[list[str]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.options.append(list(envelope.mail_options))  # type: ignore[attr-defined]
        return await super().handle_DATA(server, session, envelope)


def test_a_stored_message_with_utf8_headers_asks_for_smtputf8_though_its_recipient_is_ascii() -> None:
    """A digest an earlier release stored for reader@bücher.example carries that address in UTF-8
    in its To header; it is resent to reader@xn--bcher-kva.example, and its headers still need
    SMTPUTF8 (RFC 6532). An ordinary message asks for nothing."""
    stored = envelope("reader@bücher.example")
    resend = Envelope(stored.sender, "reader@xn--bcher-kva.example", stored.data)
    inbox = MailOptions()
    with smtp_server(inbox) as port, SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=5).session() as post:
        post.send(resend)
        post.send(envelope("reader@example.org"))

    assert inbox.recipients == [["reader@xn--bcher-kva.example"], ["reader@example.org"]]
    assert "SMTPUTF8" in inbox.options[0]
    assert "SMTPUTF8" not in inbox.options[1]


def test_a_refused_recipient_fails_alone_and_the_connection_goes_on() -> None:
    inbox = Sessions(refuse="gone@example.org")
    with smtp_server(inbox) as port, SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=5).session() as post:
        post.send(envelope("a@example.org"))
        with pytest.raises(MailError) as refused:
            post.send(envelope("gone@example.org"))
        post.send(envelope("b@example.org"))

    assert (refused.value.kind, refused.value.reply) == (MailFailure.RECIPIENT, "550 5.1.1 no such user")
    assert f"127.0.0.1:{port} refused mail to gone@example.org" in str(refused.value)
    assert [m["To"] for m in inbox.messages] == ["a@example.org", "b@example.org"]
    assert len(set(inbox.sessions)) == 1, "RSET, then the next message on the same connection"


def test_without_reuse_each_message_has_a_connection_of_its_own() -> None:
    inbox = Sessions()
    with (
        smtp_server(inbox) as port,
        SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=5, reuse=False).session() as post,
    ):
        for n in range(3):
            post.send(envelope(f"r{n}@example.org"))

    assert len(set(inbox.sessions)) == 3


class AnswersOnce(Sessions):
    """Takes the first message; from then on never answers MAIL (a server hung mid-run)."""

    def __init__(self) -> None:
        super().__init__()
        self.mail_commands: list[int] = []  # the connection each MAIL came on

    async def handle_MAIL(
        self, server: object, session: object, envelope: object, address: str, options: list[str]
    ) -> str:
        self.mail_commands.append(id(session))
        if len(self.mail_commands) > 1:
            await asyncio.sleep(5)  # past the client's timeout; it has gone by then
        envelope.mail_from = address  # type: ignore[attr-defined]
        return "250 OK"


def test_a_server_that_stops_answering_mid_session_costs_one_timeout_not_a_second_connection() -> None:
    """A reply that does not come in time is a hung server, not a connection closed while idle:
    the message is not tried again on a fresh connection, which would wait as long again."""
    inbox = AnswersOnce()
    with smtp_server(inbox) as port, SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=0.3).session() as post:
        post.send(envelope("a@example.org"))
        with pytest.raises(MailError) as hung:
            post.send(envelope("b@example.org"))

        assert hung.value.kind == MailFailure.SERVER
        assert "timed out" in str(hung.value)
        assert post.connections == 1, "no second connection for the hung message"
    assert len(set(inbox.mail_commands)) == 1
    assert [m["To"] for m in inbox.messages] == ["a@example.org"]


def test_a_session_with_no_server_fails_each_message_as_the_server() -> None:
    with SmtpMailer(f"smtp://127.0.0.1:{free_port()}", timeout=5).session() as post:
        for _ in range(2):
            with pytest.raises(MailError) as down:
                post.send(envelope("a@example.org"))
            assert down.value.kind == MailFailure.SERVER


@pytest.mark.parametrize(
    "data",
    [
        b".first line is a dot\nmiddle\n.\n..two dots\n. dot space\nlast line unended",
        b"old stored bytes\r\nwith CRLF\rand a lone CR\n.and a dot\r\n",
        b"",
        b".",
        b"ends with a dot line\n.\n",
    ],
    ids=["dots", "mixed-line-ends", "empty", "only-a-dot", "dot-line-last"],
)
def test_a_session_puts_the_same_bytes_on_the_wire_as_smtplib_sendmail(data: bytes) -> None:
    """The session writes DATA itself (line ends and dot-stuffing by replace, not smtplib's
    regexes); the server must receive exactly what smtplib's own sendmail delivers."""
    inbox = Inbox()
    with smtp_server(inbox) as port:
        with SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=5).session() as post:
            post.send(Envelope("d@localhost", "ours@example.org", data))
        client = smtplib.SMTP("127.0.0.1", port, timeout=5)
        try:
            crlf = re.sub(rb"\r\n|\n|\r(?!\n)", b"\r\n", data)  # as smtplib's _fix_eols
            client.sendmail("d@localhost", ["smtplib@example.org"], crlf)
        finally:
            client.quit()

    ours, theirs = inbox.raw
    assert ours == theirs
