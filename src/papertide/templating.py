"""One Jinja2 environment for pages and emails, with the filters both use."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from papertide import paths


def format_date(value: date | datetime | None, style: str = "%d %b %Y") -> str:
    return value.strftime(style) if value else ""


def format_number(value: Any) -> str:
    number = float(value or 0)
    return f"{int(number):,}" if number.is_integer() else f"{number:,.2f}"


def short_authors(authors: list[str], limit: int = 4) -> str:
    if len(authors) <= limit:
        return ", ".join(authors)
    return ", ".join(authors[:limit]) + f" and {len(authors) - limit} more"


@lru_cache
def environment() -> Environment:
    """Templates from templates/ (checkout) or papertide/templates (installed wheel)."""
    env = Environment(
        loader=FileSystemLoader(str(paths.TEMPLATES_DIR)),
        autoescape=select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(date=format_date, number=format_number, authors=short_authors)
    return env
