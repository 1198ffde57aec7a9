"""One Jinja2 environment for pages and emails, with the filters both use."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from papertide import paths


def format_date(value: date | datetime | None, style: str = "%d %b %Y") -> str:
    return value.strftime(style) if value else ""


def format_number(value: Any) -> str:
    number = float(value or 0)
    return f"{int(number):,}" if number.is_integer() else f"{number:,.2f}"


def safe_url(value: object) -> str | None:
    """`value` if it is an absolute http(s) URL with a host, else None: the one scheme check for links.

    Paper links come from sources anyone can edit (Hugging Face's githubRepo and projectPage), and an
    href of `javascript:` or `data:` runs in the reader's browser, so ingest and rendering both refuse
    everything but http(s). Whitespace and control characters are refused too: browsers strip them
    (`java<TAB>script:` is `javascript:`), so a URL that holds them is not the URL it looks like.
    """
    if not isinstance(value, str) or not value or any(ch.isspace() or ord(ch) < 32 for ch in value):
        return None
    try:
        parts = urlsplit(value)
        valid_port = parts.port is None or parts.port > 0  # .port raises ValueError past 65535
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or not valid_port:
        return None
    return value


def counted(count: float, noun: str) -> str:
    """`1 star`, `8 stars`, `1,204 upvotes`: a whole count with its noun in the right number."""
    whole = int(count)
    return f"{whole:,} {noun if whole == 1 else noun + 's'}"


# Format characters that hide or reorder text: direction marks, embeddings, overrides and
# isolates, the Arabic letter mark, zero-width space, word joiner, byte order mark. Not every
# format character: the zero-width joiner builds an emoji (👩‍💻) and the non-joiner spells Persian.
HIDING_FORMAT = frozenset(
    "\u061c\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff"
)


def plain_text(value: str) -> str:
    """One line of visible text: control characters (NUL, escape) and the format characters that
    hide or reorder text (HIDING_FORMAT) dropped, every run of whitespace (line breaks too) made
    one space. A name with a line break would write lines of its own into a digest's text part, and
    a direction override reverses what follows it on a page."""
    collapsed = " ".join(value.split())
    # The common case, line breaks included (an arXiv abstract has them), at C speed: printable
    # text has no control or format character (nor a line or paragraph separator).
    if collapsed.isprintable():
        return collapsed
    kept = "".join(c for c in collapsed if c not in HIDING_FORMAT and unicodedata.category(c) != "Cc")
    return " ".join(kept.split())


AUTHOR_NAME_LIMIT = 80  # characters of one name shown: real ones are far shorter; a pasted blob is cut


def short_authors(authors: list[str], limit: int = 4) -> str:
    """The first `limit` names, each as one line of visible text (a row stored before papers were
    cleaned at ingest could hold a line break) of at most AUTHOR_NAME_LIMIT characters, then how
    many more."""
    shown = ", ".join(shortened(name, AUTHOR_NAME_LIMIT) for name in authors[:limit])
    return shown if len(authors) <= limit else f"{shown} and {len(authors) - limit} more"


def shortened(text: str, limit: int) -> str:
    """`text` as one line of at most `limit` characters, cut at a word with an ellipsis if longer."""
    line = plain_text(text)
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    if line[limit - 1] != " " and " " in cut:  # the cut falls inside a word: end before that word
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + "…"


_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"']+")


def linked(text: str) -> Markup:
    """Plain text escaped, with every http(s) URL in it a link (the dev outbox's text parts: a
    confirm link to click, not to copy). Trailing punctuation stays text."""
    pieces: list[str] = []
    start = 0
    for match in _URL_IN_TEXT.finditer(text):
        url = match.group(0).rstrip(".,;:!?")
        while url.endswith(")") and url.count(")") > url.count(
            "("
        ):  # "(see https://x/a)" but not ".../Mercury_(planet)"
            url = url[:-1].rstrip(".,;:!?")
        pieces += [escape(text[start : match.start()]), f'<a href="{escape(url)}">{escape(url)}</a>']
        start = match.start() + len(url)
    pieces.append(escape(text[start:]))
    return Markup("".join(pieces))


@lru_cache
def environment() -> Environment:
    """Templates from templates/ (checkout) or papertide/templates (installed wheel)."""
    env = Environment(
        loader=FileSystemLoader(str(paths.TEMPLATES_DIR)),
        autoescape=select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates are read once per process: Jinja's default re-checks each file's time on every
        # render (a stat per template per page). Restart the site to see an edited template.
        auto_reload=False,
    )
    env.filters.update(
        date=format_date, number=format_number, authors=short_authors, safe_url=safe_url, linked=linked
    )
    return env
