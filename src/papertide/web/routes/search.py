"""The search page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from papertide.search import service as search_service
from papertide.search.schemas import MAX_QUERY_LENGTH, SearchMode, SearchQuery
from papertide.web.deps import EncoderProviderDep, SessionDep, templates

router = APIRouter()


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request, session: SessionDep, encoder: EncoderProviderDep, q: str = "", mode: str = "hybrid"
) -> HTMLResponse:
    context: dict[str, object] = {
        "q": q,
        "mode": mode,
        "modes": [m.value for m in SearchMode],
        "hits": None,
        "error": None,
        "max_length": MAX_QUERY_LENGTH,
    }
    if not q.strip():
        return templates.TemplateResponse(request, "pages/search.html", context)
    try:
        query = SearchQuery.model_validate({"q": q, "mode": mode})
    except ValidationError as error:
        context["error"] = explain(error)
        return templates.TemplateResponse(request, "pages/search.html", context, status_code=422)
    context["hits"] = search_service.search(session, query, encoder=encoder())
    return templates.TemplateResponse(request, "pages/search.html", context)


def explain(error: ValidationError) -> str:
    """A sentence for the person who typed the query."""
    first = error.errors()[0]
    field = first["loc"][0] if first["loc"] else "query"
    if field == "q" and first["type"] == "string_too_long":
        return f"The query is too long: keep it under {MAX_QUERY_LENGTH} characters."
    if field == "mode":
        return "Unknown search mode: choose hybrid, keyword or semantic."
    return f"Invalid {field}: {first['msg']}."
