"""One error answer for every layer of the web app: JSON for the API, the message page for a person."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import JSONResponse, Response
from starlette.requests import Request

from papertide.web.deps import templates


def wants_json(request: Request) -> bool:
    """The API and /healthz answer JSON (the `ErrorResponse` shape); everything else is a page."""
    return request.url.path.startswith("/api/") or request.url.path == "/healthz"


def error_response(
    request: Request, status: int, detail: str | list[str], *, headers: Mapping[str, str] | None = None
) -> Response:
    """`{"detail": ...}` for the API, pages/message.html for a browser, with the same status."""
    if wants_json(request):
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)
    message = detail if isinstance(detail, str) else "Some of the input was not valid: " + "; ".join(detail)
    context = {"status": status, "message": message}
    return templates.TemplateResponse(
        request, "pages/message.html", context, status_code=status, headers=headers
    )
