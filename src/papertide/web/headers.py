"""Security headers on every response: a Content-Security-Policy without inline script, and the usual rest.

The pages run no JavaScript at all, so the policy allows none; their one `<style>` element
(partials/style.html) is allowed by its hash, computed here from the template so the two never
drift apart. Style attributes stay allowed (`style-src-attr`): they cannot run code, and a few
templates use them. See https://developer.mozilla.org/docs/Web/HTTP/CSP.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from papertide.templating import environment
from papertide.web import api_docs

# /docs runs Swagger UI from our own files (web/api_docs.py), started by one inline script that
# is allowed by its hash; Swagger UI draws some icons as data: images and calls the API ("Try it out").
DOCS_PATHS = (api_docs.DOCS_PATH,)
HSTS = "max-age=31536000"
# Pages reached by a link from an email carry its token in their URL and show the reader's address
# or choices: no cache keeps them, neither a shared one (a CDN told to "cache everything" would
# serve them to whoever asks for that URL) nor the browser's disk. A route may say more itself
# (view in browser: `private, no-store`). The dev outbox lists every link it mailed.
NO_STORE_PREFIXES = ("/manage/", "/confirm/", "/unsubscribe/", "/vote/", "/digest/", "/dev/")


def docs_policy() -> str:
    """Scripts, styles and images from this site only (plus /docs' start script, by its hash)."""
    return (
        f"default-src 'none'; script-src 'self' {' '.join(api_docs.start_script_hashes())}; "
        "style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def style_hash() -> str:
    """The CSP source for the `<style>` element every page includes (sha256 of its exact text)."""
    rendered = environment().get_template("partials/style.html").render()
    match = re.search(r"<style>(.*?)</style>", rendered, re.DOTALL)
    assert match, "partials/style.html holds one <style> element"
    digest = hashlib.sha256(match.group(1).encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def page_policy() -> str:
    """No script, no plugins, no framing; styles from our one `<style>` element and style attributes."""
    return (
        f"default-src 'none'; style-src {style_hash()}; style-src-attr 'unsafe-inline'; "
        "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


class SecurityHeaders:
    """ASGI middleware: add the headers to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        common = {
            "x-content-type-options": "nosniff",
            "referrer-policy": "same-origin",
            "x-frame-options": "DENY",
            # HSTS over plain http would be ignored at best; only send it where we are served over TLS.
            **({"strict-transport-security": HSTS} if https else {}),
        }
        self.pages = {**common, "content-security-policy": page_policy()}
        self.docs = {**common, "content-security-policy": docs_policy()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = self.docs if scope["path"] in DOCS_PATHS else self.pages
        if scope["path"].startswith(NO_STORE_PREFIXES):
            wanted = {**wanted, "cache-control": "no-store"}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.decode("latin-1").lower() for name, _ in headers}
                headers += [
                    (name.encode("latin-1"), value.encode("latin-1"))
                    for name, value in wanted.items()
                    if name not in present
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
