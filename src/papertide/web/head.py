"""HEAD answered as GET without the body, for every GET route (RFC 9110 section 9.3.2).

FastAPI routes answer only the methods they name, so a feed reader's, a CDN's or a link checker's
HEAD got a 405 from every page and feed. This middleware runs the GET instead and drops the body,
keeping the headers (Content-Length, ETag and Last-Modified included): what HEAD promises. The
scope says it was a HEAD (HEAD_AS_GET), for the one route that must tell: a HEAD counts no view.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEAD_AS_GET = "papertide.head_as_get"


class HeadAsGet:
    """ASGI middleware: a HEAD request runs as a GET whose body is not sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # a streamed body: nothing of it goes out, only its end
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET", HEAD_AS_GET: True}, receive, without_body)
