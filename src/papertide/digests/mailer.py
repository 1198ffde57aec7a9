"""Send mail through SMTP when PAPERTIDE_SMTP_URL is set, else write .eml files to the outbox."""

from __future__ import annotations

import hashlib
import io
import math
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import EmailPolicy
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol
from urllib.parse import parse_qs, unquote, urlparse

from papertide.config import Settings, redact_smtp_url, smtp_url_problem
from papertide.digests.reports import address_takes_no_mail
from papertide.dkim import DkimKeyError, DkimSigner, PrivateKey, load_key

if TYPE_CHECKING:
    from _typeshed import SizedBuffer


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
    def address_unsupported(self) -> bool:
        """The address needs SMTPUTF8 (josé@example.org) and the server does not offer it: asking
        again will never deliver to it; another address would."""
        return isinstance(self.__cause__, NeedsSmtpUtf8)

    @property
    def temporary(self) -> bool:
        return self.kind in (MailFailure.SERVER, MailFailure.TEMPORARY)

    @property
    def permanent(self) -> bool:
        return not self.temporary


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class Envelope:
    """A stored message and who sends it to whom: the bytes go on the wire as they are, only their
    line ends made CRLF (SMTP's), so a resend is byte for byte the first send (with DKIM on, but
    for the DKIM-Signature header made in front of them at each send)."""

    sender: str  # MAIL FROM: the address of MAIL_FROM
    recipient: str  # RCPT TO
    data: bytes  # the message as composed and stored


class MailSession(Protocol):
    """Many messages in a row, on one connection where the mailer has connections."""

    def send(self, envelope: Envelope) -> None: ...


class BulkMailer(Mailer, Protocol):
    """A mailer a digest run can open one session on for all its messages."""

    def session(self) -> AbstractContextManager[MailSession]: ...


def classify(error: smtplib.SMTPException | OSError, *, where: str | None = None) -> MailError:
    """Read the reply code smtplib carries; anything without one is the server, not the message.

    `where` names the hand-off ("SMTP host:port refused mail to x"); the message then ends with the
    server's reply, else it is smtplib's own words."""
    kind, code, reply = _reading(error)
    if isinstance(error, NeedsSmtpUtf8) and where:
        where = where.replace(" refused mail to ", " cannot take mail to ", 1)
    text = f"{where}: {reply or error}" if where else str(error)
    return MailError(text, kind=kind, code=code, reply=reply)


def _reading(error: smtplib.SMTPException | OSError) -> tuple[MailFailure, int | None, str | None]:
    if isinstance(error, NeedsSmtpUtf8):
        # The server works; it cannot carry this one address. Asking again will not change that.
        return MailFailure.PERMANENT, None, None
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        replies = list(error.recipients.values())
        code, words = replies[0] if replies else (0, b"")
        reply = _reply(code, words)
        # 421 is "closing channel" wherever it comes: the server, not this recipient.
        if code == 421 or _about_us(code, reply):
            return MailFailure.SERVER, code, reply
        if 500 <= code < 600 and _enhanced(reply) is not None:
            return (
                (MailFailure.RECIPIENT if _bad_address(reply) else MailFailure.PERMANENT),
                code,
                reply,
            )
        # A 4xx; or a 5xx that does not say whose fault it is (no enhanced code): "550 relay not
        # permitted", Exim's default, refuses every recipient of a misconfigured relay alike, and
        # failing on it would lose the whole list's digest for the day. Retried within the window,
        # then failed; never suppressed.
        return MailFailure.TEMPORARY, code, reply
    if isinstance(error, smtplib.SMTPResponseException):
        code, reply = error.smtp_code, _reply(error.smtp_code, error.smtp_error)
        # 421 is "closing channel": the server, not this message.
        if isinstance(error, _SERVER_REPLIES) or code == 421 or _about_us(code, reply):
            return MailFailure.SERVER, code, reply
        # MAIL FROM names our own address, the same on every message: a refusal of it (a domain
        # the server cannot resolve, "553 5.1.8") refuses every recipient alike. Except one about
        # this message's size, which smtplib declares there (SIZE=).
        if isinstance(error, smtplib.SMTPSenderRefused) and not _too_big(code, reply):
            return (MailFailure.SERVER if 500 <= code < 600 else MailFailure.TEMPORARY), code, reply
        return (MailFailure.PERMANENT if 500 <= code < 600 else MailFailure.TEMPORARY), code, reply
    # SMTPServerDisconnected (a timeout waiting for a reply ends there), ConnectionRefusedError,
    # socket timeouts, TLS errors, unresolvable hosts: the server, whatever the message.
    return MailFailure.SERVER, None, None


# The greeting, our login, the connection itself: failures of the server, not of this message.
_SERVER_REPLIES = (smtplib.SMTPConnectError, smtplib.SMTPHeloError, smtplib.SMTPAuthenticationError)


# RFC 3463 enhanced status codes: "5.1.1" (bad mailbox) after the reply code; qmail writes its own at
# the end of the text instead: "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)".
_ENHANCED = re.compile(r"^\d{3}[ -]([245])\.(\d{1,3})\.(\d{1,3})\b")
_ENHANCED_QMAIL = re.compile(r"\(#([245])\.(\d{1,3})\.(\d{1,3})\)")
# Replies about our own standing, not the recipient's: authentication required or failed.
_AUTH_CODES = frozenset({530, 535, 538})


def _enhanced(reply: str) -> tuple[int, int] | None:
    """(subject, detail) of an enhanced status code, e.g. (1, 1) for 5.1.1; None without one."""
    match = _ENHANCED.match(reply) or _ENHANCED_QMAIL.search(reply)
    return (int(match.group(2)), int(match.group(3))) if match else None


def _about_us(code: int, reply: str) -> bool:
    """Our credentials or relay permission (5.7.x, 530/535): every recipient would fail alike.

    A misconfigured SMTP URL ("554 5.7.1 Relay access denied", "530 Authentication required") must
    stop the run and leave every digest for later, not fail or suppress the whole list.
    """
    status = _enhanced(reply)
    return code in _AUTH_CODES or (status is not None and status[0] == 7)


def _bad_address(reply: str) -> bool:
    """The address itself does not take mail, as its enhanced code says (5.1.x, mailbox disabled
    5.2.1). A plain 550 without one is not enough to suppress an address for good: it is also what
    a relay says to every recipient ("550 relay not permitted", Exim's default)."""
    status = _enhanced(reply)
    return status is not None and address_takes_no_mail(*status)


def _too_big(code: int, reply: str) -> bool:
    """The message is larger than the server takes (552, 5.3.4)."""
    return code == 552 or _enhanced(reply) == (3, 4)


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {words}".strip()


class SmtpMailer:
    """`smtp://user:pass@host:587?starttls=true` or `smtps://user:pass@host:465`.

    A digest run sends all its messages through one `session()`: one connection, one TLS
    handshake and one login for the whole run instead of one per message (`reuse=False` opens
    one per message, as before: the baseline of bench/digest_send.py).
    """

    def __init__(
        self, url: str, *, timeout: float = 10.0, reuse: bool = True, signer: DkimSigner | None = None
    ) -> None:
        if problem := smtp_url_problem(url):  # Settings checks it first; a URL given in code lands here
            raise ValueError(f"PAPERTIDE_SMTP_URL={redact_smtp_url(url)!r} {problem}")
        parsed = urlparse(url)
        self.implicit_tls = parsed.scheme == "smtps"
        self.host: str = parsed.hostname or ""  # never empty: smtp_url_problem names a missing host
        self.port = parsed.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        options = parse_qs(parsed.query)
        self.starttls = options.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        # Per reply, as a whole (_within_deadline), and per connect or send: a server that accepts
        # and never answers, or answers a byte at a time, costs this, not minutes.
        self.timeout = timeout
        self.reuse = reuse
        self.signer = signer  # DKIM: every message this mailer sends is signed on its way out

    def send(self, message: EmailMessage) -> None:
        """One message on a connection of its own (a confirmation, a manage link)."""
        try:
            client = self.open()
            try:
                client.send_message(message)
            except smtplib.SMTPNotSupportedError as error:
                # send_message's own check: an address beyond ASCII, and no SMTPUTF8 on the server.
                raise NeedsSmtpUtf8(str(error)) from error
            finally:
                _quit_quietly(client)
        except (smtplib.SMTPException, OSError) as error:
            raise classify(error, where=self.refused(str(message["To"]))) from error

    @contextmanager
    def session(self) -> Iterator[SmtpSession]:
        session = SmtpSession(self)
        try:
            yield session
        finally:
            session.close()

    def open(self) -> _Smtp:
        """A connection that has said EHLO, and STARTTLS and logged in where the URL says so."""
        client = self._connect()
        client.signer = self.signer
        try:
            if self.starttls:
                client.starttls(context=ssl.create_default_context())
            if self.username:
                client.login(self.username, self.password or "")
            client.ehlo_or_helo_if_needed()
        except BaseException:
            client.close()
            raise
        return client

    def refused(self, recipient: str) -> str:
        return f"SMTP {self.host}:{self.port} refused mail to {recipient}"

    def _connect(self) -> _Smtp:
        if self.implicit_tls:
            return _SmtpSsl(self.host, self.port, timeout=self.timeout, context=ssl.create_default_context())
        return _Smtp(self.host, self.port, timeout=self.timeout)


class _Smtp(smtplib.SMTP):
    """smtplib's client, each reply bounded as a whole by the timeout (_within_deadline), that
    DKIM-signs what it sends when given a signer: the bytes as they go on the wire, each time they
    go, so a resend of a stored digest carries a signature of its own send (and of today's key)."""

    signer: DkimSigner | None = None

    def sendmail(
        self,
        from_addr: str,
        to_addrs: str | Sequence[str],
        msg: SizedBuffer | str,
        mail_options: Sequence[str] = (),
        rcpt_options: Sequence[str] = (),
    ) -> dict[str, tuple[int, bytes]]:
        # send_message() (a confirmation, a manage link) flattens with CRLF line ends and ends here.
        if self.signer is not None and isinstance(msg, bytes):
            msg = self.signer.sign(_smtp_line_ends(msg))
        return super().sendmail(from_addr, to_addrs, msg, mail_options, rcpt_options)

    def getreply(self) -> tuple[int, bytes]:
        return _within_deadline(self, super().getreply)

    def end_of_data_reply(self) -> tuple[int, bytes]:
        """The reply to a message's final dot, waited for END_OF_DATA_TIMEOUT (at least the timeout)."""
        return _within_deadline(self, super().getreply, timeout=max(self.timeout, END_OF_DATA_TIMEOUT))


class _SmtpSsl(_Smtp, smtplib.SMTP_SSL):
    """The same over implicit TLS."""


# RFC 5321 §4.5.3.2.6: a client waits 10 minutes for the reply to the final dot. The server has the
# whole message by then (a busy relay scans it first): giving up sooner is the one way, besides a
# sender killed mid hand-off, that a message the server took is sent twice.
END_OF_DATA_TIMEOUT = 600.0


def _within_deadline(
    client: smtplib.SMTP, read: Callable[[], tuple[int, bytes]], *, timeout: float | None = None
) -> tuple[int, bytes]:
    """Read one reply (all its lines) by `timeout` (`client.timeout`) from now, or fail as a timeout.

    A socket timeout bounds each read, not a reply: a tarpit that trickles a byte a second, or a
    multi-line greeting that never ends ("220-please wait"), never lets a read time out and held
    a run for ever. Here every read waits only for what is left of the reply's time."""
    if client.file is None and client.sock is not None:
        client.file = io.BufferedReader(_ReplyReader(client))  # smtplib's makefile('rb'), bounded
    reader = client.file.raw if isinstance(client.file, io.BufferedReader) else None
    if isinstance(reader, _ReplyReader):
        reader.limit = client.timeout if timeout is None else timeout
        reader.due = time.monotonic() + reader.limit
    try:
        return read()
    finally:
        if client.sock is not None:  # the full timeout again for what we send next
            client.sock.settimeout(client.timeout)


class _ReplyReader(io.RawIOBase):
    """The client's socket as a file whose reads end at `due` (time.monotonic()), all together."""

    def __init__(self, client: smtplib.SMTP) -> None:
        super().__init__()
        self.client = client
        self.due = math.inf
        self.limit = math.inf

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        sock = self.client.sock
        if sock is None:
            raise OSError("the connection is closed")
        left = self.due - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"timed out: no complete reply within {self.limit:g} s")
        sock.settimeout(left)
        return sock.recv_into(buffer)


class SmtpSession:
    """One SMTP connection for many messages: opened at the first, kept between them (a refused
    message is followed by RSET), opened again after the server dropped it, QUIT at the end.

    A connection that carried a message before and turns out dropped before this message's DATA
    (a server's idle timeout, or its limit of messages per connection: a 421, or EOF) had nothing
    of this message, so the message goes once more, on a new connection. A failure on a fresh
    connection, a reply that did not come in time, or a failure from DATA on, is the message's
    failure, read by classify() as ever.
    """

    def __init__(self, mailer: SmtpMailer) -> None:
        self.mailer = mailer
        self.client: _Smtp | None = None
        self.connections = 0  # opened so far (tests and the bench read it)

    def send(self, envelope: Envelope) -> None:
        try:
            self._send(envelope)
        except (smtplib.SMTPException, OSError) as error:
            if self.client is not None and self.client.sock is None:
                self.client = None  # smtplib closed it: the connection is gone, the next opens anew
            raise classify(error, where=self.mailer.refused(envelope.recipient)) from error
        finally:
            if not self.mailer.reuse:
                self.close()

    def close(self) -> None:
        if self.client is not None:
            _quit_quietly(self.client)
            self.client = None

    def _send(self, envelope: Envelope) -> None:
        if self.client is not None:
            try:
                _transfer(self.client, envelope)
                return
            except _Dropped:
                self.close()
        self.client = self._open()
        try:
            _transfer(self.client, envelope)
        except _Dropped as dropped:
            raise dropped.error from dropped

    def _open(self) -> _Smtp:
        self.connections += 1
        return self.mailer.open()


class _Dropped(Exception):
    """The connection was gone before the server took any of the message (at MAIL or RCPT)."""

    def __init__(self, error: smtplib.SMTPException) -> None:
        super().__init__(str(error))
        self.error = error  # what smtplib's sendmail raises in the same place


def _transfer(client: _Smtp, envelope: Envelope) -> None:
    """MAIL, RCPT and DATA of one message, raising what smtplib's sendmail raises in each case, or
    `_Dropped` when the connection turned out closed before DATA (EOF, or a 421 "closing channel")."""
    sender, recipient = envelope.sender, envelope.recipient
    wire = _smtp_line_ends(envelope.data)
    if client.signer is not None:
        wire = client.signer.sign(wire)
    code, reply = _before_data(lambda: client.mail(sender, _mail_options(client, envelope, len(wire))))
    if code != 250:
        _refused(client, smtplib.SMTPSenderRefused(code, reply, sender), code, before_data=True)
    code, reply = _before_data(lambda: client.rcpt(recipient))
    if code not in (250, 251):
        _refused(client, smtplib.SMTPRecipientsRefused({recipient: (code, reply)}), code, before_data=True)
    try:
        code, reply = _data(client, wire)
    except smtplib.SMTPDataError as error:  # refused at the DATA command, before the message
        _refused(client, error, error.smtp_code)
    if code != 250:
        _refused(client, smtplib.SMTPDataError(code, reply), code)


def _before_data(command: Callable[[], tuple[int, bytes]]) -> tuple[int, bytes]:
    try:
        return command()
    except smtplib.SMTPServerDisconnected as error:
        if isinstance(error.__context__, TimeoutError):
            # No reply in time is a hung server, not a connection closed while idle: a fresh
            # connection would wait as long again, and the message would cost 2 x SMTP_TIMEOUT.
            raise
        raise _Dropped(error) from error


def _refused(
    client: smtplib.SMTP, error: smtplib.SMTPException, code: int, *, before_data: bool = False
) -> NoReturn:
    """A 421 closes the connection; any other refusal keeps it, after RSET, for the next message."""
    if code == 421:
        client.close()
        raise _Dropped(error) if before_data else error
    with suppress(smtplib.SMTPServerDisconnected):  # smtplib has closed it: the next message reopens
        client.rset()
    raise error


class NeedsSmtpUtf8(smtplib.SMTPNotSupportedError):
    """An address beyond ASCII (josé@example.org) and a server without SMTPUTF8 (RFC 6531): a
    failure of this one message, found without asking the server anything, not of the server."""


def _mail_options(client: smtplib.SMTP, envelope: Envelope, size: int) -> list[str]:
    """SIZE where the server takes it; SMTPUTF8 for an address beyond ASCII (as send_message does)."""
    options = [f"SIZE={size}"] if client.has_extn("size") else []
    if not (envelope.sender + envelope.recipient).isascii() or not _head(envelope.data).isascii():
        if not client.has_extn("smtputf8"):
            raise NeedsSmtpUtf8(
                "the address needs internationalized email (SMTPUTF8), which the server does not offer"
            )
        options += ["SMTPUTF8", "BODY=8BITMIME"]
    return options


def _head(data: bytes) -> bytes:
    """A stored message's header block (stored messages end lines with LF). A digest stored by an
    earlier release for reader@bücher.example has that address in UTF-8 in its To header, and is
    resent to the ASCII form of the address: its headers still need SMTPUTF8 (RFC 6532), which only
    the envelope said before."""
    return data.partition(b"\n\n")[0]


# Line ends as smtplib's own _fix_eols makes them: stored messages end lines with LF.
_CRLF = re.compile(rb"\r\n|\n|\r(?!\n)")


def _smtp_line_ends(data: bytes) -> bytes:
    """Every line end CRLF. A digest is stored with LF alone, so one replace does (the regex
    costs 0.2 ms on a 22 kB digest, a replace a tenth of that)."""
    return data.replace(b"\n", b"\r\n") if b"\r" not in data else _CRLF.sub(b"\r\n", data)


def _data(client: _Smtp, wire: bytes) -> tuple[int, bytes]:
    """smtplib's SMTP.data() for a message whose line ends are CRLF already, with the dot-stuffing
    (RFC 5321 §4.5.2) done by replace instead of smtplib's multiline regex: the same bytes on the
    wire, a tenth of the time."""
    client.putcmd("data")
    code, reply = client.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    stuffed = wire.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    client.send(stuffed + b".\r\n")
    return client.end_of_data_reply()


def _quit_quietly(client: smtplib.SMTP) -> None:
    """Say QUIT and close; a bad answer to QUIT is not a failed send once DATA was accepted."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


class OutboxMailer:
    """Writes each message as `<time>-<recipient>.eml`; /dev/outbox lists them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        to = str(message["To"])
        if not (to + str(message["From"])).isascii() and isinstance(message.policy, EmailPolicy):
            # An address beyond ASCII goes as itself, as smtplib's send_message sends it (SMTPUTF8).
            self.write(to, message.as_bytes(policy=message.policy.clone(utf8=True)))
        else:
            self.write(to, bytes(message))

    @contextmanager
    def session(self) -> Iterator[MailSession]:
        yield _OutboxSession(self)

    def write(self, to: str, data: bytes) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"{stamp}-{_file_name_part(to)}.eml"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except OSError as error:
            raise MailError(f"cannot write {path}: {error}", kind=MailFailure.SERVER) from error


OUTBOX_NAME_PART = 64  # characters of the recipient in a file name (a file name holds 255 bytes)


def _file_name_part(address: str) -> str:
    """The recipient as it can stand in a file name: ASCII letters, digits, @ . - (others become
    _), and an address too long to fit (one may have 254 characters) cut, with a short hash of the
    whole, so two long addresses that begin alike still read as two (the time in front of it keeps
    two files apart in any case)."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "@.-") else "_" for c in address)
    if len(safe) <= OUTBOX_NAME_PART:
        return safe
    digest = hashlib.blake2b(address.encode("utf-8"), digest_size=4).hexdigest()
    return f"{safe[: OUTBOX_NAME_PART - 9]}-{digest}"


class _OutboxSession:
    def __init__(self, outbox: OutboxMailer) -> None:
        self.outbox = outbox

    def send(self, envelope: Envelope) -> None:
        self.outbox.write(envelope.recipient, envelope.data)


def mailer_from_settings(settings: Settings) -> BulkMailer:
    if settings.smtp_url:
        return SmtpMailer(
            settings.smtp_url, timeout=settings.smtp_timeout_seconds, signer=dkim_signer(settings)
        )
    return OutboxMailer(settings.outbox_dir)


def dkim_signer(settings: Settings) -> DkimSigner | None:
    """The signer DKIM_KEY_FILE, DKIM_SELECTOR and DKIM_DOMAIN describe (Settings checked them), or None."""
    if settings.dkim_key_file is None or not settings.dkim_selector:
        return None
    try:
        key = _loaded_key(settings.dkim_key_file.resolve())
    except DkimKeyError as error:  # gone or broken since startup: the run fails, named, not unsigned
        raise DkimKeyError(f"PAPERTIDE_DKIM_KEY_FILE: {error}") from None
    return DkimSigner(domain=settings.dkim_signing_domain, selector=settings.dkim_selector, key=key)


@lru_cache(maxsize=4)
def _loaded_key(path: Path) -> PrivateKey:
    """Read once per process, as the selector is (settings are read once): a new key written over
    the file while a process runs would otherwise be signed with under the old selector, whose DNS
    record holds the old key. A new key and selector take effect when each process restarts."""
    return load_key(path)


def list_outbox(directory: Path) -> list[Path]:
    """Outbox files, newest first."""
    if not directory.exists():
        return []
    return sorted(directory.glob("*.eml"), reverse=True)
