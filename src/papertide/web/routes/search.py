"""The search page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
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
    # Keyword mode never needs the model: asking the provider would load it (seconds) for nothing.
    context["hits"] = search_service.search(
        session, query, encoder=encoder() if query.uses_embeddings else None
    )
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


MAX_PASSAGE_LENGTH = 5000


@router.get("/search/like", response_class=HTMLResponse)
def more_like_this_form(request: Request) -> HTMLResponse:
    context = {"text": "", "hits": None, "error": None, "max_length": MAX_PASSAGE_LENGTH}
    return templates.TemplateResponse(request, "pages/more_like_this.html", context)


@router.post("/search/like", response_class=HTMLResponse)
def more_like_this(
    request: Request,
    session: SessionDep,
    encoder: EncoderProviderDep,
    text: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Papers like a pasted abstract. A POST because abstracts are too long for a URL; it changes nothing."""
    context: dict[str, object] = {"text": text, "hits": None, "error": None, "max_length": MAX_PASSAGE_LENGTH}
    if not text.strip() or len(text) > MAX_PASSAGE_LENGTH:
        context["error"] = f"Paste an abstract or a passage of 1 to {MAX_PASSAGE_LENGTH:,} characters."
        return templates.TemplateResponse(request, "pages/more_like_this.html", context, status_code=422)
    model = encoder()  # only for a passage it will search: the first call loads the model
    if model is None:
        context["error"] = "The embedding model is not available, so this search is off."
        return templates.TemplateResponse(request, "pages/more_like_this.html", context, status_code=503)
    context["hits"] = search_service.more_like_this(session, text, encoder=model)
    return templates.TemplateResponse(request, "pages/more_like_this.html", context)
