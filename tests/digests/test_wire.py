"""A digest written as its bytes (render.alternative_bytes) is the message the EmailMessage path
built: the same headers, text and HTML once parsed back, and headers on the wire as RFC 5322,
2047, 2369 and 8058 want them, for a digest whose content is out to break it."""

from __future__ import annotations

import email
import html as htmllib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email import policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from papertide import paths
from papertide.digests.mailer import Envelope, SmtpMailer
from papertide.digests.render import (
    MAIL_HTML_LIMIT,
    MAIL_POLICY,
    RenderedPaper,
    RenderedSection,
    WireMessage,
    alternative_bytes,
    digest_html,
    digest_message,
    header_bytes,
    paper_parts,
)
from papertide.templating import environment
from tests.helpers import Inbox, smtp_server

BASE = "https://papers.example-university.edu/papertide/instance-one"
SENDER = "Pâpertide Ünïcode Digest Service <digest@example.org>"  # a display name to encode
UNSUBSCRIBE = f"{BASE}/unsubscribe/" + "t" * 43


@dataclass(frozen=True)
class Paper:
    id: str
    title: str
    authors: list[str]
    abstract: str


def hostile_sections() -> list[RenderedSection]:
    """Markup, non-ASCII and non-Latin names, a 1,500-character line with no space to break at,
    lines that start with "." (SMTP's end of data) and "From " (mbox's), trailing blanks, a lone
    CR, "=" and "--" where a boundary or a quoted-printable escape could be read."""
    papers = [
        Paper(
            "2611.00001",
            "<script>alert('x')</script> Ünïcode & “quotes” — 日本語のタイトル",
            ["Zoë Ångström", "Дмитрий Иванов", "李雷", "O'Brien <ob@example.org>"],
            "An abstract with <b>markup</b> & entities.  ",
        ),
        Paper(
            "2611.00002",
            "A title\n.\n.starts with a dot\nFrom the start of a line\r--=_papertide_x =3D \t",
            ["A. Author"],
            "x" * 1500,
        ),
        Paper("2611/odd id?&=", "y" * 1500, [], "=?utf-8?q?not_an_encoded_word?= " * 20),
    ]
    rendered = [
        RenderedPaper(
            p,
            f"matches 'speech synthesis' · #{n} this week",
            paper_parts(p, BASE),
            f"{BASE}/vote/m{n}",
            f"{BASE}/vote/l{n}",
        )
        for n, p in enumerate(papers, start=1)
    ]
    return [RenderedSection("Spéech <&> synthesis", rendered[:2]), RenderedSection("Trending", rendered[2:])]


def arguments(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "message_id": "<digest-7-20261126@example.org>",
        "sender": SENDER,
        "to": "reader.one+tag@example.org",
        "digest_date": date(2026, 11, 26),
        "as_of": date(2026, 11, 25),
        "sections": hostile_sections(),
        "base_url": BASE,
        "unsubscribe_url": UNSUBSCRIBE,
        "manage_url": f"{BASE}/manage/m",
        "view_url": f"{BASE}/digest/v",
    }
    return values | changes


def email_package_digest(message: EmailMessage, **kwargs: Any) -> EmailMessage:
    """The digest as the EmailMessage path built it before it was written as bytes: the headers of
    `message` (Date included, so the two can be compared), set_content() and add_alternative()."""
    total = sum(len(section.papers) for section in kwargs["sections"])
    context = {
        "sections": kwargs["sections"],
        "total": total,
        "shown": total,
        "digest_date": kwargs["digest_date"],
        "as_of": kwargs["as_of"],
        "base_url": kwargs["base_url"],
        "unsubscribe_url": kwargs["unsubscribe_url"],
        "manage_url": kwargs["manage_url"],
        "view_url": kwargs["view_url"],
    }
    env = environment()
    old = EmailMessage(policy=MAIL_POLICY)
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        old[name] = str(message[name])
    old.set_content(env.get_template("email/digest.txt").render(**context))
    old.add_alternative(env.get_template("email/digest.html").render(**context), subtype="html")
    old["List-Unsubscribe"] = f"<{kwargs['unsubscribe_url']}>"
    old["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Parsed back from its bytes: what the ledger stored and a resend reads.
    parsed = email.message_from_bytes(bytes(old), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(preferencelist=("plain",)), message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post")


def test_a_hostile_digest_parses_back_as_the_email_package_built_it() -> None:
    kwargs = arguments()
    raw = bytes(digest_message(**kwargs))
    new = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(new, EmailMessage)
    old = email_package_digest(new, **kwargs)

    assert new.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in new.iter_parts()] == ["text/plain", "text/html"]
    assert [p.get_content_charset() for p in new.iter_parts()] == ["utf-8", "utf-8"]
    assert {name: str(new[name]) for name in HEADERS} == {name: str(old[name]) for name in HEADERS}
    assert new["From"].addresses[0].display_name == "Pâpertide Ünïcode Digest Service"
    assert parts(new) == parts(old)
    text, html = parts(new)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "\n.\n.starts with a dot\nFrom the start of a line\n--=_papertide_x =3D \t\n" in text
    assert "y" * 1500 in text
    assert "Дмитрий Иванов" in text
    assert "日本語のタイトル" in html
    assert not new.defects
    assert not any(p.defects for p in new.iter_parts())


def test_the_bytes_are_7bit_folded_and_encoded_as_the_rfcs_want() -> None:
    raw = bytes(digest_message(**arguments()))
    head, _, body = raw.partition(b"\n\n")

    assert raw.isascii(), "7-bit: no server needs 8BITMIME"
    assert b"\r" not in raw, "LF line ends as stored (the mailer sends CRLF)"
    assert max(len(line) for line in body.split(b"\n")) <= 76, "quoted-printable lines"
    assert max(len(line) for line in head.split(b"\n") if not line.startswith(b"List-")) <= 78
    # RFC 2047: the non-ASCII display name is an encoded word; the address itself stays as it is.
    sender = re.search(rb"^From: (.+(?:\n .+)*)$", head, re.M)
    assert sender is not None
    assert re.fullmatch(
        rb"=\?utf-8\?q\?P=C3=A2pertide_=C3=9Cn=C3=AFcode\?=\s+Digest\s+Service\s+<digest@example\.org>",
        sender.group(1),
    ), head
    # RFC 2369 / 8058: read raw by mail providers, so never encoded, on one line each.
    assert f"\nList-Unsubscribe: <{UNSUBSCRIBE}>\n".encode() in head
    assert b"\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\n" in head
    assert re.search(rb"^To: reader\.one\+tag@example\.org$", head, re.M)
    assert re.search(rb"^Message-ID: <digest-7-20261126@example\.org>$", head, re.M)
    # Again where a relay that writes its own Message-ID (Amazon SES) leaves it, for bounces.
    assert re.search(rb"^X-Papertide-Digest: <digest-7-20261126@example\.org>$", head, re.M)
    assert re.search(rb"^MIME-Version: 1\.0$", head, re.M)
    date_line = re.search(rb"^Date: (.+)$", head, re.M)
    assert date_line is not None
    sent = parsedate_to_datetime(date_line.group(1).decode())
    assert abs((sent - datetime.now(UTC)).total_seconds()) < 600


def test_the_boundary_is_in_no_part_even_when_the_content_holds_its_prefix() -> None:
    raw = bytes(digest_message(**arguments()))
    boundary = email.message_from_bytes(raw).get_boundary()
    assert boundary is not None

    assert raw.count(f"--{boundary}".encode()) == 3, "two delimiters and the closing one, nothing else"
    assert raw.endswith(f"\n--{boundary}--\n".encode())


def test_a_digest_goes_through_a_real_smtp_server_unchanged() -> None:
    kwargs = arguments()
    raw = bytes(digest_message(**kwargs))
    inbox = Inbox()
    with smtp_server(inbox) as port, SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=5).session() as post:
        post.send(Envelope("digest@example.org", kwargs["to"], raw))

    [received] = inbox.raw
    assert received == raw.replace(b"\n", b"\r\n"), "dot-stuffing undone, byte for byte as stored"
    message = email.message_from_bytes(received.replace(b"\r\n", b"\n"), policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert parts(message) == parts(email_package_digest(message, **kwargs))
    assert re.search(rb"^List-Unsubscribe: <[^\r\n]+>\r$", received, re.M)


def test_mostly_non_latin_text_goes_as_base64_and_still_parses_back() -> None:
    text = "日本語の論文タイトル。" * 200 + "\n"
    raw = alternative_bytes([("Subject", "s")], text=text, html=f"<p>{text}</p>")
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)

    assert [p["Content-Transfer-Encoding"] for p in message.iter_parts()] == ["base64", "base64"]
    assert parts(message) == (text, f"<p>{text}</p>\n")


def test_empty_and_unterminated_bodies_end_with_one_line_end_as_set_content_ends_them() -> None:
    for text, html in (("", ""), ("no end", "<p>x</p>"), ("a\r\nb\rc\n\n", "\n")):
        old = EmailMessage(policy=MAIL_POLICY)
        old.set_content(text)
        old.add_alternative(html, subtype="html")
        message = email.message_from_bytes(alternative_bytes([], text=text, html=html), policy=policy.default)
        assert isinstance(message, EmailMessage)
        reference = email.message_from_bytes(bytes(old), policy=policy.default)
        assert isinstance(reference, EmailMessage)

        assert parts(message) == parts(reference)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("From", "papertide <digest@papertide.example.org>"),
        ("From", SENDER),
        ("From", "papertide.org <d@example.org>"),
        ("From", "digest@example.org"),
        ("To", "reader123@example.org"),
        ("To", "a.b+c_d@ex-ample.co.uk"),
        ("To", "a..b@example.org"),
        ("To", '"quoted local"@example.org'),
        ("Subject", "papertide: 20 papers for Fri 27 Nov"),
        ("Subject", "papertide: 20 papers for Fri 27 Nov, and then a much longer subject line than fits"),
        ("Subject", "two  spaces"),
        ("Subject", " leading"),
        ("Subject", "=?utf-8?q?encoded?="),
        ("Subject", "Spéech"),
        ("Date", "Thu, 26 Nov 2026 07:00:00 +0000"),
        ("Message-ID", "<digest-1-20261127@papertide.example.org>"),
        ("Message-ID", "<digest-1-20261127@" + "long" * 20 + ".example.org>"),
        ("List-Unsubscribe", f"<{UNSUBSCRIBE}>"),
        ("List-Unsubscribe", "<https://example.org/ü>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ],
)
def test_each_header_is_written_as_the_mail_policy_folds_it(name: str, value: str) -> None:
    message = EmailMessage(policy=MAIL_POLICY)
    message[name] = value

    assert header_bytes(name, value) == bytes(message).split(b"\n\n")[0] + b"\n"


@pytest.mark.parametrize("address", ["üser@example.org", "jose@exämple.org", "Zoë <zoë@example.org>"])
def test_an_address_beyond_ascii_is_written_in_utf8_not_as_an_encoded_word(address: str) -> None:
    """RFC 6532 (the mail goes with SMTPUTF8): as MAIL_POLICY writes it with utf8 on."""
    message = EmailMessage(policy=MAIL_POLICY.clone(utf8=True))
    message["To"] = address

    written = header_bytes("To", address)

    assert written == bytes(message).split(b"\n\n")[0] + b"\n"
    assert b"=?" not in written
    assert written.decode("utf-8") == f"To: {address}\n"


def test_a_wire_message_is_its_bytes_and_reads_as_an_email_message() -> None:
    raw = alternative_bytes([("To", "r@example.org"), ("Subject", "s")], text="hello\n", html="<p>hi</p>\n")
    message = WireMessage(raw)

    assert bytes(message) == raw
    assert message.as_bytes() == raw
    assert message["To"] == "r@example.org"
    assert parts(message) == ("hello\n", "<p>hi</p>\n")
    assert bytes(message) == raw, "reading it does not change its bytes"


def ordinary_sections() -> list[RenderedSection]:
    """A digest as most are: ASCII titles and abstracts, one accented name and a dash."""
    papers = [
        Paper("2611.00101", "World Models for Video Editing", ["Zoë Ångström", "A. Author"], "We show " * 40),
        Paper("2611.00102", "Retrieval, Revisited — Again", ["B. Writer"], "An abstract. " * 30),
    ]
    rendered = [
        RenderedPaper(
            p,
            f"matches 'world models' · #{n} this week",
            paper_parts(p, BASE),
            f"{BASE}/vote/m{n}",
            f"{BASE}/vote/l{n}",
        )
        for n, p in enumerate(papers, start=1)
    ]
    return [RenderedSection("World models", rendered[:1]), RenderedSection("Trending", rendered[1:])]


def test_an_ordinary_digests_html_goes_7bit_in_long_lines_and_shows_the_same_page() -> None:
    kwargs = arguments(sections=ordinary_sections(), sender="papertide <digest@example.org>")
    raw = bytes(digest_message(**kwargs))
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    text_part, html_part = message.iter_parts()
    old_text, old_html = parts(email_package_digest(message, **kwargs))

    assert html_part["Content-Transfer-Encoding"] == "7bit"
    html = html_part.get_content()
    assert "Zo&#235; &#197;ngstr&#246;m" in html, "non-ASCII as character references"
    # The same page: the same markup and text, where only white space differs (and a run of white
    # space reads as one space in HTML without <pre>).
    assert htmllib.unescape(html).split() == htmllib.unescape(old_html).split(), "the same page"
    assert text_part.get_content() == old_text
    assert raw.isascii(), "still 7-bit on the wire: no server needs 8BITMIME"
    assert max(len(line) for line in raw.split(b"\n")) <= 998, "RFC 5322's hard limit"
    lines = str(html_part.get_payload()).count("\n")
    assert lines * 4 < old_html.count("\n"), f"{lines} lines: the template's short lines packed"
    assert not message.defects
    assert not any(p.defects for p in message.iter_parts())


def test_an_html_line_past_998_characters_goes_quoted_printable_as_written() -> None:
    at_limit, past = "x" * 998, "x" * 999
    for line, encoding in ((at_limit, "7bit"), (past, "quoted-printable")):
        raw = alternative_bytes([("Subject", "s")], text="t\n", html=f"{line}\nZoë\n")
        message = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        html_part = message.get_body(preferencelist=("html",))
        assert html_part is not None
        assert html_part["Content-Transfer-Encoding"] == encoding
        assert html_part.get_content() == (f"{line}\nZo&#235;\n" if encoding == "7bit" else f"{line}\nZoë\n")


def test_an_ordinary_digest_goes_through_a_real_smtp_server_unchanged() -> None:
    kwargs = arguments(sections=ordinary_sections())
    raw = bytes(digest_message(**kwargs))
    inbox = Inbox()
    with smtp_server(inbox) as port, SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=5).session() as post:
        post.send(Envelope("digest@example.org", kwargs["to"], raw))

    [received] = inbox.raw
    assert b"Content-Transfer-Encoding: 7bit" in received
    assert received == raw.replace(b"\n", b"\r\n")


def test_c1_control_characters_keep_their_bytes_not_the_windows_1252_characters_html_reads() -> None:
    """arXiv mojibake ("Ï\\x80" for π, in tests/fixtures/arxiv_api): as &#128; an HTML parser would
    show a euro sign; the part goes quoted-printable, as written, like the browser view."""
    paper = Paper(
        "2611.00001", "Testing with prior (\u00cf\u0080, 1-\u00cf\u0080)", ["A. B"], "Don\u0092t panic."
    )
    kwargs = arguments(
        sections=[RenderedSection("Trending", [RenderedPaper(paper, "trending", paper_parts(paper, BASE))])]
    )
    message = email.message_from_bytes(bytes(digest_message(**kwargs)), policy=policy.default)
    assert isinstance(message, EmailMessage)
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None

    assert html_part["Content-Transfer-Encoding"] == "quoted-printable"
    shown = htmllib.unescape(html_part.get_content())
    assert "(\u00cf\u0080, 1-\u00cf\u0080)" in shown
    assert "Don\u0092t" in shown
    assert "\u20ac" not in shown, "no euro sign where the title has none"


def html_payload(html: str, *, pack_html: bool = True) -> str:
    raw = alternative_bytes([("Subject", "s")], text="t\n", html=html, pack_html=pack_html)
    html_part = email.message_from_bytes(raw, policy=policy.default).get_body(preferencelist=("html",))
    assert html_part is not None
    assert html_part["Content-Transfer-Encoding"] == "7bit"
    return str(html_part.get_payload())


def test_html_lines_are_packed_up_to_998_octets_with_one_space_where_each_line_ended() -> None:
    half = "<b>" + "x" * 491 + "</b>"  # 498 octets: two of them and a space make 997, three do not fit
    assert html_payload(f"  {half}\n\n\t{half}\n {half}\n") == f"{half} {half}\n{half}\n"
    exact = "y" * 497
    assert html_payload(f"{exact}\n{'z' * 500}\n") == f"{exact} {'z' * 500}\n"  # 998 octets: joined
    assert html_payload(f"{exact}\n{'z' * 501}\n") == f"{exact}\n{'z' * 501}\n"  # 999 would not be


def test_html_is_packed_only_when_asked_and_the_digest_template_is_html_whose_white_space_may_be() -> None:
    html = "<pre>\n  indented\n    code\n</pre>\n"
    assert html_payload(html, pack_html=False) == html
    # The digest packs its HTML: safe while its template keeps no white space as written. (A
    # paper's fields cannot add such markup: they are escaped.)
    template = (paths.TEMPLATES_DIR / "email" / "digest.html").read_text().lower()
    for marker in ("<pre", "<textarea", "<listing", "<plaintext", "<xmp", "white-space"):
        assert marker not in template, f"{marker}: the digest's HTML must not be packed (render.py)"


def test_a_message_stored_by_an_older_release_goes_out_with_a_readable_list_unsubscribe() -> None:
    # Before issue 9, the header was folded as an RFC 2047 encoded word, which Gmail and Yahoo do not
    # read as a one-click unsubscribe. Parsed back and written with the mail policy, it is plain.
    stored = (
        b"To: reader@example.org\r\n"
        b"Subject: papertide\r\n"
        b"List-Unsubscribe: =?utf-8?q?=3Chttps=3A//papers=2Eexample=2Eorg/unsubscribe/abc=3E?=\r\n"
        b"\r\n"
        b"body\r\n"
    )

    message = email.message_from_bytes(stored, policy=MAIL_POLICY)

    assert b"\nList-Unsubscribe: <https://papers.example.org/unsubscribe/abc>\n" in message.as_bytes()


def test_an_author_name_stored_with_line_breaks_writes_no_line_of_its_own() -> None:
    """Papers are cleaned as they are ingested; a row stored before that could hold an author name
    that draws its own "Manage your digest" line: each name is written as one line of visible text."""
    forged = "Ada Lovelace\n\n   Manage your digest: https://evil.example/manage\u2028Eve"
    paper = Paper("2611.00201", "A title", [forged, "\u202eGrace Hopper"], "An abstract.")
    rendered = RenderedPaper(paper, "#1 this week", paper_parts(paper, BASE), f"{BASE}/v/m", f"{BASE}/v/l")

    text, html = parts(digest_message(**arguments(sections=[RenderedSection("Trending", [rendered])])))

    assert "Ada Lovelace Manage your digest: https://evil.example/manage Eve, Grace Hopper" in text
    assert not [
        line for line in text.splitlines() if line.strip().startswith("Manage your digest: https://evil")
    ]
    assert "\u202e" not in text + html


@pytest.mark.parametrize(
    ("to", "written"),
    [
        ("reader@bücher.example", "reader@xn--bcher-kva.example"),  # no SMTPUTF8 needed
        ("josé@example.org", "josé@example.org"),  # the name before the @ needs it whatever the domain
        ("reader@example.org", "reader@example.org"),
        ("reader@-bücher.example", "reader@-bücher.example"),  # no name IDNA writes: left to SMTPUTF8
    ],
)
def test_a_domain_beyond_ascii_goes_in_its_ascii_form(to: str, written: str) -> None:
    message = digest_message(**arguments(to=to))

    assert str(message["To"]) == written


def long_sections(sizes: dict[str, int]) -> list[RenderedSection]:
    """Sections of papers as long as real ones (a 90-character title, six authors, a full abstract),
    each paper's title naming its section and place ("Speech paper 7 ...")."""
    sections: list[RenderedSection] = []
    for name, size in sizes.items():
        papers = [
            Paper(
                f"2611.{len(sections)}{n:04d}",
                f"{name} paper {n} " + "on learning representations of the world from video " * 1,
                [f"Author Number{k} Surname" for k in range(6)],
                "We study a problem of broad interest and propose a method. " * 20,
            )
            for n in range(1, size + 1)
        ]
        rendered = [
            RenderedPaper(
                p,
                f"matches '{name.lower()}'",
                paper_parts(p, BASE),
                f"{BASE}/vote/m{p.id}",
                f"{BASE}/vote/l{p.id}",
            )
            for p in papers
        ]
        sections.append(RenderedSection(name, rendered))
    return sections


def shown_papers(content: str, names: list[str]) -> dict[str, list[int]]:
    """Which papers of each section a part shows, in its order (the hidden inbox preview aside)."""
    content = re.sub(r'<div id="preheader".*?</div>', "", content)
    return {name: [int(n) for n in re.findall(rf"{name} paper (\d+) ", content)] for name in names}


def test_a_digest_too_long_for_gmail_keeps_each_sections_top_papers_its_footer_and_says_where_the_rest_are() -> (
    None
):
    # Gmail hides what follows a message's first 102 KB of HTML, the unsubscribe link with it. Five
    # profiles of 50 papers and 50 trending ones are five times that.
    names = ["Speech", "Vision", "Robots", "Theory", "Agents", "Trending"]
    kwargs = arguments(sections=long_sections(dict.fromkeys(names, 50)))
    raw = bytes(digest_message(**kwargs))
    inbox = Inbox()
    with smtp_server(inbox) as port, SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=5).session() as post:
        post.send(Envelope("digest@example.org", kwargs["to"], raw))

    [received] = inbox.raw
    message = email.message_from_bytes(received.replace(b"\r\n", b"\n"), policy=policy.default)
    assert isinstance(message, EmailMessage)
    text_part, html_part = message.iter_parts()
    [sent_html] = re.findall(
        rb"Content-Type: text/html[^\r]*\r\n.*?\r\n\r\n(.*?)\r\n--=_papertide", received, re.S
    )
    assert len(sent_html) <= MAIL_HTML_LIMIT < 102 * 1024, (
        "as on the wire (CRLF): under what Gmail shows whole"
    )
    html, text = html_part.get_content(), text_part.get_content()
    shown = shown_papers(html, names)
    counts = [len(papers) for papers in shown.values()]
    assert all(papers == list(range(1, len(papers) + 1)) for papers in shown.values()), (
        "each section's top papers"
    )
    assert min(counts) >= 5, counts
    assert max(counts) - min(counts) <= 1, counts
    assert shown_papers(text, names) == shown, "the text part holds the same papers"
    kept = sum(counts)
    assert f"This email shows {kept} of your 300 papers" in html
    assert f'<a href="{BASE}/digest/v" style="color:#0b63ce;">See all 300 in your browser</a>' in html
    assert (
        f"This email shows {kept} of your 300 papers: mail apps cut longer messages."
        " All 300 are at the view-in-browser link above.\n== Speech ==\n"
    ) in text, "the notice is a line of its own, before the first section's heading"
    assert f'href="{UNSUBSCRIBE}"' in html, "the footer is kept"
    assert f'href="{BASE}/manage/m"' in html
    assert message["Subject"].startswith("papertide: 300 papers"), "the digest is all 300"


def test_a_short_section_stays_whole_while_a_long_one_is_cut_and_a_preview_says_so_without_a_link() -> None:
    kwargs = arguments(sections=long_sections({"Speech": 3, "Trending": 200}), view_url=None)
    html = email.message_from_bytes(bytes(digest_message(**kwargs)), policy=policy.default)
    assert isinstance(html, EmailMessage)
    content = parts(html)[1]
    shown = shown_papers(content, ["Speech", "Trending"])
    assert shown["Speech"] == [1, 2, 3]
    assert 30 < len(shown["Trending"]) < 200
    assert (
        f"This email shows {3 + len(shown['Trending'])} of your 203 papers: mail apps cut longer messages."
        in content
    )
    assert "See all" not in content, "a preview has no view-in-browser page to send the reader to"


def test_a_digest_that_fits_says_nothing_of_papers_left_out_and_the_browser_view_shows_every_paper() -> None:
    kwargs = arguments(sections=long_sections({"Speech": 8, "Trending": 8}))
    message = email.message_from_bytes(bytes(digest_message(**kwargs)), policy=policy.default)
    assert isinstance(message, EmailMessage)
    text, html = parts(message)
    assert "This email shows" not in html
    assert "This email shows" not in text
    assert len(shown_papers(html, ["Speech", "Trending"])["Trending"]) == 8

    page = digest_html(
        digest_date=date(2026, 11, 26),
        as_of=None,
        sections=long_sections({"Speech": 150, "Trending": 150}),
        base_url=BASE,
    )
    assert shown_papers(page, ["Speech", "Trending"]) == {
        "Speech": list(range(1, 151)),
        "Trending": list(range(1, 151)),
    }
    assert "This email shows" not in page


def test_the_inbox_preview_is_the_top_paper_of_each_section_escaped_and_hidden_in_the_email() -> None:
    # An inbox list shows the body's first text beside the subject: the masthead said nothing there.
    message = email.message_from_bytes(bytes(digest_message(**arguments())), policy=policy.default)
    assert isinstance(message, EmailMessage)
    html = parts(message)[1]
    body = html[html.index("<body") :]
    preheader = re.search(r'<div id="preheader" style="display:none;[^"]*">(.*?)</div>', body)
    assert preheader is not None
    assert body.index('id="preheader"') < body.index("papertide</div>"), "before any other text"
    assert htmllib.unescape(preheader[1]) == (
        "<script>alert('x')</script> Ünïcode & “quotes” — 日本語のタイトル · " + "y" * 117 + "..."
    ), "each section's first title, escaped, a long one cut"
    assert "<script>" not in preheader[1]


def test_a_paper_with_a_pasted_blob_for_a_name_and_the_longest_title_is_shown_cut_to_size_not_left_out() -> (
    None
):
    blob = Paper(
        "2611.09999", "&" * 1000, ["x" * 50_000] * 5, "&" * 20_000
    )  # 1,000: the longest title stored
    [section] = long_sections({"Speech": 5})
    section.papers.insert(
        0, RenderedPaper(blob, "matches 'speech'", paper_parts(blob, BASE), f"{BASE}/v/m", f"{BASE}/v/l")
    )
    message = email.message_from_bytes(
        bytes(digest_message(**arguments(sections=[section]))), policy=policy.default
    )
    assert isinstance(message, EmailMessage)
    text, html = parts(message)

    assert "This email shows" not in html, "all six papers fit"
    assert shown_papers(html, ["Speech"]) == {"Speech": [1, 2, 3, 4, 5]}
    assert "&amp;" * 1000 in html, "the title whole"
    assert "x" * 79 + "…" in html
    assert "x" * 81 not in html, "a name cut at 80 characters"
    assert "and 1 more" in text


def test_about_seventy_of_the_bundled_samples_papers_fit_as_the_docs_say() -> None:
    """docs/digest.md and the manage page tell readers "about 70 papers": real titles, authors and
    abstracts, five profiles of 50 and 50 trending (the most the manage page allows but for profiles)."""
    from papertide.ingest.sources import sample

    records = sample.parse_sample(paths.SAMPLE_FILE).records[:300]
    papers = [Paper(r.id, r.title, list(r.authors), r.abstract) for r in records]
    sections = [
        RenderedSection(
            name,
            [
                RenderedPaper(
                    p, "matches 'world models'", paper_parts(p, BASE), f"{BASE}/vote/m", f"{BASE}/vote/l"
                )
                for p in papers[50 * i : 50 * (i + 1)]
            ],
        )
        for i, name in enumerate(["One", "Two", "Three", "Four", "Five", "Trending"])
    ]
    message = email.message_from_bytes(
        bytes(digest_message(**arguments(sections=sections))), policy=policy.default
    )
    assert isinstance(message, EmailMessage)
    shown = re.search(r"This email shows (\d+) of your 300 papers", parts(message)[1])
    assert shown is not None
    assert 60 <= int(shown.group(1)) <= 80, shown.group(0)
