"""Paged lists in the JSON API: `p` and `limit`, and a `Link` header to the neighbouring pages.

The header is RFC 8288's (https://www.rfc-editor.org/rfc/rfc8288), as GitHub's and Hugging Face's
paper APIs send it: `<https://host/api/v1/trending?p=2&limit=20>; rel="next"`, an absolute URL
with the same query and only the page changed, so a client follows it without knowing our
parameters. `next` only when there is a next page, `prev` only after the first.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request, Response

PAGE = "p"
# Names a page number went by before `p` (/api/v1/search took `page`): still read, and replaced
# by `p` in the links, so a followed link never carries two page numbers.
OLD_NAMES = ("page",)


def page_url(request: Request, page: int, *, base_url: str) -> str:
    """The request's own URL on the site's `base_url` with the page number set to `page`, every other
    parameter kept in order.

    The site's URL, not the request's Host header: that header is the client's to write, and the
    trending answer (its Link header included) is kept and served to everyone (web/caching.py), so a
    Host of evil.example must not end up in the links other clients follow.
    """
    items: list[tuple[str, str]] = []
    for name, value in request.query_params.multi_items():
        if name == PAGE or name in OLD_NAMES:
            if not any(existing == PAGE for existing, _ in items):
                items.append((PAGE, str(page)))
            continue
        items.append((name, value))
    if not any(name == PAGE for name, _ in items):
        items.append((PAGE, str(page)))
    return f"{base_url.rstrip('/')}{request.url.path}?{urlencode(items)}"


def link_header(request: Request, *, page: int, has_next: bool, base_url: str) -> str | None:
    """The `Link` value for page `page` of a list: its next (if `has_next`) and previous pages."""
    links = []
    if has_next:
        links.append(f'<{page_url(request, page + 1, base_url=base_url)}>; rel="next"')
    if page > 1:
        links.append(f'<{page_url(request, page - 1, base_url=base_url)}>; rel="prev"')
    return ", ".join(links) or None


def add_links(response: Response, request: Request, *, page: int, has_next: bool, base_url: str) -> None:
    """Set the `Link` header on a page of a list (none on a single page)."""
    value = link_header(request, page=page, has_next=has_next, base_url=base_url)
    if value is not None:
        response.headers["Link"] = value
