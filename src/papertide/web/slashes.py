"""A path with a trailing slash, redirected to the same path without it, by a relative reference.

Starlette's own `redirect_slashes` builds an absolute URL from the request's Host header and the
server's scheme: whatever Host a client sent went into the Location header
(`Location: http://evil.example/subscribe`), and behind a proxy that ends TLS `/subscribe/` sent
readers to `http://`. This redirect sends only the path, percent-quoted, after exactly one slash
(never `//host` or `/\\host`, which a browser reads as another site), and the query as it came.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse

# What may stay unquoted in a path (RFC 3986's pchar). The path is quoted here because Starlette's
# RedirectResponse keeps "%" and "#" as they are; the query it quotes itself (its escapes kept).
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def add_trailing_slash_redirect(app: FastAPI) -> None:
    """Register, after every other route, `/x/` → 307 `/x`: the method and the body are kept, so a
    form posted to `/subscribe/` reaches `/subscribe`. Call it after the routers are included."""

    @app.api_route("/{rest:path}/", methods=["GET", "POST"], include_in_schema=False)
    async def without_trailing_slash(request: Request, rest: str) -> RedirectResponse:
        path = "/" + quote(rest.strip("/\\"), safe=_PATH_SAFE)
        query = request.scope.get("query_string", b"").decode("latin-1")
        target = f"{path}?{query}" if query else path
        return RedirectResponse(target, status_code=307)
