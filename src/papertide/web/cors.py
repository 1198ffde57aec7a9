"""CORS for the read-only endpoints, so a browser extension or a static page can call them.

`Access-Control-Allow-Origin: *` on every GET and HEAD answer under the JSON API, the feeds, the
OpenAPI document and /healthz, and an answer to their preflight. Nothing else gets it: the HTML
pages carry forms, POST /api/v1/similar is not read-only, and no credentials are ever allowed (a
wildcard origin rules them out: https://fetch.spec.whatwg.org/#cors-protocol-and-credentials).
Starlette's CORSMiddleware applies to every path, hence this small one.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

READ_ONLY_PREFIXES = ("/api/v1/", "/feeds/")
READ_ONLY_PATHS = ("/healthz", "/openapi.json")
READ_METHODS = ("GET", "HEAD")
# What a script may send with a GET (conditional requests) and read from the answer (paging,
# caching, timing): beyond these, browsers hide response headers from cross-origin scripts.
ALLOWED_HEADERS = "Accept, Accept-Language, Cache-Control, If-Modified-Since, If-None-Match"
EXPOSED_HEADERS = "ETag, Last-Modified, Link, Retry-After, Server-Timing"
PREFLIGHT_MAX_AGE = "86400"
ANSWER = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
]


def is_read_only(path: str) -> bool:
    """Whether a path is one of the public, read-only endpoints CORS opens."""
    return path in READ_ONLY_PATHS or path.startswith(READ_ONLY_PREFIXES)


def preflight() -> Response:
    """The answer to a preflight for a GET or HEAD of a read-only endpoint."""
    headers = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": ", ".join(READ_METHODS),
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
    }
    return Response(status_code=204, headers=headers)


class ReadOnlyCors:
    """ASGI middleware: CORS headers on the read-only endpoints' GET and HEAD answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_read_only(scope["path"]):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method == "OPTIONS":
            asked = Headers(scope=scope).get("access-control-request-method", "").upper()
            if asked in READ_METHODS and "origin" in Headers(scope=scope):
                await preflight()(scope, receive, send)
                return
        if method not in READ_METHODS:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    h for h in message.get("headers", []) if not h[0].lower().startswith(b"access-control-")
                ]
                message = {**message, "headers": headers + ANSWER}
            await send(message)

        await self.app(scope, receive, send_with_cors)
