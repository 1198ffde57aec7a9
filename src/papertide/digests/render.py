"""Render a digest or a confirmation as a multipart email (HTML with inline CSS + plain text)."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid, parseaddr
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

import idna

from papertide import signing
from papertide.digests.reports import DIGEST_HEADER
from papertide.templating import environment

# Headers that carry <URL>s (RFC 2369, RFC 8058). Mail providers read them raw, so they must go
# as written: the default policy folds a line it cannot break at whitespace (a long URL) as an
# RFC 2047 encoded word, `=?utf-8?q?=3Chttps...`, and Gmail and Yahoo then offer no unsubscribe.
_VERBATIM_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post", "list-help", "list-archive"})


if TYPE_CHECKING:
    _EmailPolicy = EmailPolicy[EmailMessage]  # parsed messages are EmailMessage, as with policy.default
else:
    _EmailPolicy = EmailPolicy


class MailPolicy(_EmailPolicy):
    """policy.default, except that the URL headers above are folded only at whitespace, never encoded."""

    def fold(self, name: str, value: str) -> str:
        verbatim = self._verbatim(name, value)
        return verbatim if verbatim is not None else super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        verbatim = self._verbatim(name, value)
        return verbatim.encode("ascii") if verbatim is not None else super().fold_binary(name, value)

    def _verbatim(self, name: str, value: str) -> str | None:
        if name.lower() not in _VERBATIM_HEADERS:
            return None
        if not hasattr(value, "name"):
            # A value parsed back from a stored message: decoded, so one stored encoded by an
            # older release goes out readable too.
            value = str(self.header_factory(name, "".join(value.splitlines())))
        return folded_verbatim(name, str(value), limit=self.max_line_length, linesep=self.linesep)


def folded_verbatim(name: str, value: str, *, limit: int | None, linesep: str) -> str | None:
    """`name: value` folded only at whitespace, never encoded; None when a word is not ASCII."""
    words = value.split()
    if not all(word.isascii() for word in words):
        return None  # non-ASCII text folds and encodes as usual
    lines = [f"{name}:"]
    for n, word in enumerate(words):
        if n and limit and len(lines[-1]) + 1 + len(word) > limit:
            lines.append("")  # the fold: CRLF before the space that starts the next line
        lines[-1] += f" {word}"
    return linesep.join(lines) + linesep


# Every message is built, stored and parsed back for a resend with this policy, so a resend goes
# on the wire exactly like the first send.
MAIL_POLICY = MailPolicy()


# --- Digests are written as their bytes -------------------------------------------------------
# Building an EmailMessage and flattening it cost about 2.5 ms of CPU a digest (header objects
# parsed and folded, the body encoded and written a line at a time; bench/digest_send.py prints
# both paths), six times the templates and the bytes below together. A digest is always the same
# shape (a few headers, text and HTML alternatives), so it is written directly: headers folded
# once, as MAIL_POLICY folds them, bodies quoted-printable by binascii. tests/digests/test_wire.py parses the bytes back and compares them with the
# EmailMessage path.

# Values MAIL_POLICY writes unchanged on one line (tests/digests/test_wire.py checks it): a plain
# addr-spec, and printable ASCII words with single spaces that hold no encoded word. Anything
# else (a display name, non-ASCII, a long line) goes through the policy itself.
_PLAIN_ADDRESS = re.compile(
    r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*@[\w-]+(?:\.[\w-]+)*", re.A
)
_PLAIN_TEXT = re.compile(r"[!-~]+(?: [!-~]+)*")
_PLAIN = {
    "to": _PLAIN_ADDRESS,
    "subject": _PLAIN_TEXT,
    "date": _PLAIN_TEXT,
    "message-id": _PLAIN_TEXT,
    DIGEST_HEADER.lower(): _PLAIN_TEXT,
}
_MAX_LINE: int = MAIL_POLICY.max_line_length or 78  # RFC 5322's recommended limit, as the policy says


def header_bytes(name: str, value: str) -> bytes:
    """One header line (folded where it must be) as MAIL_POLICY writes it into a message's bytes."""
    verbatim = (
        folded_verbatim(name, value, limit=_MAX_LINE, linesep="\n")
        if name.lower() in _VERBATIM_HEADERS
        else None
    )
    if verbatim is not None:
        return verbatim.encode("ascii")
    plain = _PLAIN.get(name.lower())
    if (
        plain is not None
        and len(name) + 2 + len(value) <= _MAX_LINE
        and "=?" not in value
        and plain.fullmatch(value)
    ):
        return f"{name}: {value}\n".encode("ascii")
    if name.lower() in _ADDRESS_HEADERS and not mail_address(value).isascii():
        # An address beyond ASCII (josé@example.org) goes as itself, in UTF-8 (RFC 6532): an encoded
        # word may not stand inside an address (RFC 2047 §5). Such mail only goes with SMTPUTF8
        # (mailer.py), which is what allows UTF-8 in headers.
        return _policy_header(name, value, utf8=True)
    return _policy_header(name, value)


@lru_cache(maxsize=64)  # From is the same on every digest of a run
def _policy_header(name: str, value: str, *, utf8: bool = False) -> bytes:
    policy = _UTF8_POLICY if utf8 else MAIL_POLICY
    return policy.fold_binary(name, policy.header_store_parse(name, value)[1])


_UTF8_POLICY = MAIL_POLICY.clone(utf8=True)
_ADDRESS_HEADERS = frozenset({"to", "from"})


def _text_part(subtype: str, content: str, *, pack: bool = False) -> bytes:
    """A text/<subtype> part in UTF-8: lines ended as set_content() ends them (every CR, LF and
    CRLF one LF, a last one added); 7-bit as it is when it can go so (below); else quoted-printable
    (lines of at most 76, `=` and a lone `.` escaped, trailing blanks kept), or base64 where that is
    shorter (mostly non-Latin text). `pack`: HTML whose line breaks and indentation may be joined
    into long lines (_packed_html)."""
    data = _lines(content)
    if subtype == "html":
        # The same page with its non-ASCII as character references (&#235;), where that makes it
        # 7-bit (most digests are ASCII but for a name or a dash), and packed: it goes as written,
        # in a tenth of the lines of quoted-printable (a mail server's CPU is per line: aiosmtpd's
        # about 1.7 µs) and with no =3D.
        seven_bit = _html_references(data)
        if seven_bit is not None and pack:
            seven_bit = _packed_html(seven_bit)
        data = seven_bit if seven_bit is not None and _seven_bit(seven_bit) else data
    if _seven_bit(data):
        encoded, encoding = data, "7bit"
    else:
        encoded, encoding = binascii.b2a_qp(data), "quoted-printable"
        if len(encoded) > 4 * ((len(data) + 2) // 3) * 77 // 76:  # base64 with its line breaks
            encoded, encoding = base64.encodebytes(data), "base64"
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\nContent-Transfer-Encoding: {encoding}\n\n'
    ).encode("ascii") + encoded


def _html_references(data: bytes) -> bytes | None:
    """`data` (the HTML's UTF-8 bytes) in ASCII, non-ASCII written as character references; None
    where that would change the page (C1 controls, below)."""
    if data.isascii():
        return data
    if _C1_CONTROLS.search(data):
        return None
    return data.decode("utf-8").encode("ascii", "xmlcharrefreplace")


def _packed_html(data: bytes) -> bytes:
    """HTML lines joined by one space, each line's indentation dropped, into lines of at most
    _MAX_7BIT_LINE octets (a longer line is left as it is). The same page for HTML whose white
    space is not kept as written (no <pre>, <textarea>, or `white-space` style: a run of white
    space reads as one space), such as the digest's template, whose own markup alone can hold
    those (the papers' fields are escaped text); tests/digests/test_wire.py checks the template."""
    lines: list[bytes] = []
    for line in data.split(b"\n"):
        piece = line.strip(b" \t")
        if not piece:
            continue
        if lines and len(lines[-1]) + 1 + len(piece) <= _MAX_7BIT_LINE:
            lines[-1] += b" " + piece
        else:
            lines.append(piece)
    return b"\n".join(lines) + b"\n"


# HTML reads &#128; to &#159; as the Windows-1252 characters (the euro sign, an ellipsis, a curly
# quote), not as the C1 controls they number (mojibake such as "Ï\x80" for π is in real arXiv
# data): such text keeps its bytes.
_C1_CONTROLS = re.compile(rb"\xc2[\x80-\x9f]")  # in UTF-8: a bytes search finds \xc2 fast


def _lines(content: str) -> bytes:
    return b"\n".join(content.encode("utf-8").splitlines()) + b"\n"


# RFC 5322 §2.1.1: a line MUST NOT be longer than 998 characters (without its CRLF); RFC 2045 §2.7:
# 7-bit data is such lines of ASCII with no NUL. Any server takes it, with or without 8BITMIME.
_MAX_7BIT_LINE = 998


def _seven_bit(data: bytes) -> bool:
    return (
        data.isascii()
        and b"\0" not in data
        and max(len(line) for line in data.split(b"\n")) <= _MAX_7BIT_LINE
    )


def alternative_bytes(
    headers: list[tuple[str, str]], *, text: str, html: str, pack_html: bool = False
) -> bytes:
    """A multipart/alternative message (text, then HTML) with these headers, as bytes with LF line
    ends (what the EmailMessage path stores; the mailer sends them with CRLF). `pack_html`: the
    HTML's white space is not kept as written (_packed_html)."""
    return _alternative(headers, [_text_part("plain", text), _text_part("html", html, pack=pack_html)])


def _alternative(headers: list[tuple[str, str]], parts: list[bytes]) -> bytes:
    """alternative_bytes from its two parts, each as _text_part wrote it."""
    # "=_" never occurs in quoted-printable or base64 text (an `=` there is `=XX`, a soft break or
    # base64's padding at a line end), so the boundary cannot occur in those parts; a 7-bit part
    # could hold it, so it is checked.
    boundary = f"=_papertide_{secrets.token_hex(12)}"
    while any(boundary.encode("ascii") in part for part in parts):
        boundary = f"=_papertide_{secrets.token_hex(12)}"
    head = b"".join(header_bytes(name, value) for name, value in headers)
    mime = f'MIME-Version: 1.0\nContent-Type: multipart/alternative;\n boundary="{boundary}"\n\n'
    delimiter = f"--{boundary}\n".encode("ascii")
    # The LF before each delimiter belongs to the delimiter (RFC 2046 §5.1.1), not to the part.
    body = delimiter + parts[0] + b"\n" + delimiter + parts[1] + f"\n--{boundary}--\n".encode("ascii")
    return head + mime.encode("ascii") + body


class WireMessage(EmailMessage):
    """A message composed as its bytes: `bytes()` gives those bytes as they are, once, without
    flattening; anything else (headers, get_body()) reads them parsed back with MAIL_POLICY, as a
    resend's parser would, on first use. Treat it as read-only: a change made to the parsed
    message does not reach its bytes."""

    def __init__(self, data: bytes) -> None:
        # No EmailMessage.__init__: its attributes come from the parse, the first time one is read
        # (__getattr__ runs only for attributes an instance lacks).
        self._wire = data

    def __bytes__(self) -> bytes:
        return self._wire

    def as_bytes(self, unixfrom: bool = False, policy: Any = None) -> bytes:
        if not unixfrom and policy is None:
            return self._wire
        return super().as_bytes(unixfrom=unixfrom, policy=policy)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_wire":
            raise AttributeError(name)
        parsed = message_from_bytes(self._wire, policy=MAIL_POLICY)
        self.__dict__.update(vars(parsed))
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(name) from None


class ShownPaper(Protocol):
    """What an email shows of a paper (a Paper row, or the run's DigestPaper)."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def authors(self) -> list[str]: ...
    @property
    def abstract(self) -> str: ...


@dataclass(frozen=True)
class PaperParts:
    """A paper's own parts of a digest item (templates/email/paper_parts.*), the same for every
    reader: a run writes them once a paper, where escaping, truncating and quoting them for each
    digest was a quarter of its templates' time (py-spy on bench/digest_send.py)."""

    html_head: str  # Markup: the title's link and the authors
    html_abstract: str  # Markup
    text_head: str
    link: str


def paper_parts(paper: ShownPaper, base_url: str) -> PaperParts:
    env = environment()
    html = env.get_template("email/paper_parts.html").module
    text = env.get_template("email/paper_parts.txt").module
    return PaperParts(
        html_head=html.head(paper, base_url),  # type: ignore[attr-defined]
        html_abstract=html.abstract(paper),  # type: ignore[attr-defined]
        text_head=text.head(paper),  # type: ignore[attr-defined]
        link=text.link(paper, base_url),  # type: ignore[attr-defined]
    )


@dataclass(frozen=True)
class RenderedPaper:
    paper: ShownPaper
    reason: str
    parts: PaperParts  # paper_parts(paper, base_url): the templates show the paper through these
    more_url: str | None = None  # the reader's signed "more like this" link (none in a browser view)
    less_url: str | None = None


# Gmail shows the first 102 KB of a message's HTML and hides the rest behind "[Message clipped]
# View entire message", the footer's manage and unsubscribe links with it (other web mail cuts long
# messages too). A digest whose HTML part, as sent, would be longer than this holds the top papers of
# each section that fit, and says how many more its view-in-browser page shows: about 70 papers fit
# (68 of the bundled sample's papers, a 260-character abstract each).
MAIL_HTML_LIMIT = 96_000


@dataclass(frozen=True)
class RenderedSection:
    title: str  # a profile's name, or "Trending"
    papers: list[RenderedPaper]


def _message(
    *,
    sender: str,
    to: str,
    subject: str,
    template: str,
    context: dict[str, Any],
    message_id: str | None = None,
) -> EmailMessage:
    env = environment()
    message = EmailMessage(policy=MAIL_POLICY)
    for name, value in _headers(sender=sender, to=to, subject=subject, message_id=message_id):
        message[name] = value
    message.set_content(env.get_template(f"email/{template}.txt").render(**context))
    message.add_alternative(env.get_template(f"email/{template}.html").render(**context), subtype="html")
    return message


def _headers(*, sender: str, to: str, subject: str, message_id: str | None) -> list[tuple[str, str]]:
    """The headers every message starts with."""
    return [
        ("From", sender),
        ("To", wire_address(to)),
        ("Subject", subject),
        ("Date", format_datetime(datetime.now(UTC))),
        ("Message-ID", message_id or make_msgid(domain=mail_domain(sender))),
    ]


def wire_address(address: str) -> str:
    """A reader's address as it goes to the mail server: a domain beyond ASCII in its ASCII form
    (reader@bücher.example -> reader@xn--bcher-kva.example) when the name before the @ is ASCII,
    so it needs no SMTPUTF8, which many relays do not offer; anything else as it is."""
    local, _, domain = address.rpartition("@")
    if domain.isascii() or not local.isascii():
        return address
    try:
        # IDNA 2008 with UTS 46, as the sign-up's check (email_validator) reads the domain.
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except idna.IDNAError:
        return address  # not a name IDNA writes: the server is asked with SMTPUTF8 as before


@lru_cache(maxsize=16)  # the same MAIL_FROM for every digest of a run: parsed once
def mail_address(sender: str) -> str:
    """The address of a From value (`papertide <digest@example.org>` -> digest@example.org)."""
    return parseaddr(sender)[1]


def mail_domain(sender: str, fallback: str = "localhost") -> str:
    """The domain of the From address (`papertide <digest@example.org>` -> example.org)."""
    _, at, domain = mail_address(sender).rpartition("@")
    return domain.strip() if at and domain.strip() else fallback


def digest_message_id(*, delivery_id: int, digest_date: date, sender: str, base_url: str, secret: str) -> str:
    """Derived from the delivery, never random: a resend of the same delivery carries the same id,
    so a receiving server that already has it can drop the copy (RFC 5322 §3.6.4). Its tag, made
    with the site's key, is what lets a bounce or a complaint that quotes the id be believed
    (digests/reports.py): the delivery's number and date alone anyone could guess."""
    domain = mail_domain(sender, fallback=urlparse(base_url).hostname or "localhost")
    if ":" in domain and not domain.startswith("["):
        # An IPv6 site address (http://[::1]:8000/) as a domain literal, RFC 5322 §3.6.4; a MAIL_FROM
        # such as digest@[IPv6:2001:db8::1] has its brackets already.
        domain = f"[{domain}]"
    stem = f"digest-{delivery_id}-{digest_date:%Y%m%d}"
    return f"<{stem}.{signing.message_tag(secret, stem)}@{domain}>"


def digest_message(
    *,
    message_id: str | None,
    sender: str,
    to: str,
    digest_date: date,
    as_of: date | None,
    sections: list[RenderedSection],
    base_url: str,
    unsubscribe_url: str,
    manage_url: str | None = None,
    view_url: str | None = None,
) -> EmailMessage:
    """The digest, written as its bytes (alternative_bytes); List-Unsubscribe + List-Unsubscribe-Post
    make one-click unsubscribe work (RFC 8058)."""
    count = sum(len(s.papers) for s in sections)
    subject = f"papertide: {count} papers for {digest_date:%a %d %b}"
    context = _digest_context(digest_date=digest_date, as_of=as_of, sections=sections, base_url=base_url) | {
        "unsubscribe_url": unsubscribe_url,
        "manage_url": manage_url,
        "view_url": view_url,
    }
    headers = [
        *_headers(sender=sender, to=to, subject=subject, message_id=message_id),
        ("List-Unsubscribe", f"<{unsubscribe_url}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        # The Message-ID again, where a relay that writes its own (Amazon SES) leaves it: a bounce
        # or complaint that comes back names its digest by either (reports.py).
        *([(DIGEST_HEADER, message_id)] if message_id else []),
    ]
    return WireMessage(_alternative(headers, _fitted_parts(context, sections)))


def _fitted_parts(context: dict[str, Any], sections: list[RenderedSection]) -> list[bytes]:
    """The digest's text and HTML parts, holding as many of its papers as keep the HTML part within
    MAIL_HTML_LIMIT: the top papers of each section, the sections with the most papers giving up
    their last ones first, and a line saying how many more the view-in-browser page shows."""
    env = environment()
    total = sum(len(s.papers) for s in sections)
    keep = total
    while True:
        shown = sections if keep == total else _top_of_each(sections, keep)
        fitted = context | {"sections": shown, "shown": keep}
        html = _text_part("html", env.get_template("email/digest.html").render(**fitted), pack=True)
        size = len(html) + html.count(b"\n")  # as sent: every line ends CRLF on the wire
        if size <= MAIL_HTML_LIMIT or keep == 0:
            break
        # The part grows about in step with its papers: a round or two finds how many fit.
        keep = min(keep - 1, keep * MAIL_HTML_LIMIT // size)
    return [_text_part("plain", env.get_template("email/digest.txt").render(**fitted)), html]


def _top_of_each(sections: list[RenderedSection], keep: int) -> list[RenderedSection]:
    """The sections with `keep` papers in all: each keeps its first ones, and one paper at a time
    is taken from the end of whichever section has the most left (the later one on a tie), so a
    short section stays whole while a long one is cut. A section left with none is left out."""
    counts = [len(s.papers) for s in sections]
    for _ in range(sum(counts) - keep):
        largest = max(range(len(counts)), key=lambda i: (counts[i], i))
        counts[largest] -= 1
    return [
        RenderedSection(title=s.title, papers=s.papers[:count])
        for s, count in zip(sections, counts, strict=True)
        if count
    ]


def digest_html(
    *, digest_date: date, as_of: date | None, sections: list[RenderedSection], base_url: str
) -> str:
    """The digest's HTML part as a web page (view in browser), without the reader's own links."""
    context = _digest_context(digest_date=digest_date, as_of=as_of, sections=sections, base_url=base_url)
    return environment().get_template("email/digest.html").render(**context)


def _digest_context(
    *, digest_date: date, as_of: date | None, sections: list[RenderedSection], base_url: str
) -> dict[str, Any]:
    total = sum(len(s.papers) for s in sections)
    return {
        "sections": sections,
        "total": total,  # the digest's papers; "shown" of them are in this page or message
        "shown": total,
        "digest_date": digest_date,
        "as_of": as_of,
        "base_url": base_url,
        "unsubscribe_url": None,
        "manage_url": None,
        "view_url": None,
    }


def confirmation_message(
    *, sender: str, to: str, confirm_url: str, manage_url: str, interests: list[str], frequency: str
) -> EmailMessage:
    """The only email an unconfirmed address ever gets; its manage link works once it is confirmed.

    It counts the interests and does not repeat them: anyone can fill in the form with any
    address, and the phrases would carry a stranger's words (a link, "your mailbox will be
    closed") to that inbox from this site's own address. The confirm page, which only the inbox's
    owner opens, shows them."""
    context = {
        "confirm_url": confirm_url,
        "manage_url": manage_url,
        "interest_count": len(interests),
        "frequency": frequency,
    }
    return _message(
        sender=sender, to=to, subject="Confirm your papertide digest", template="confirm", context=context
    )


def manage_link_message(*, sender: str, to: str, manage_url: str, days: int) -> EmailMessage:
    """A link to the preferences page, for an address already confirmed that filled in the form again."""
    context = {"manage_url": manage_url, "days": days}
    return _message(
        sender=sender, to=to, subject="Manage your papertide digest", template="manage", context=context
    )
