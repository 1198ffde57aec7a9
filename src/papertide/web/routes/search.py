"""The search page, and "more like this" from a pasted passage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from papertide.search import service as search_service
from papertide.search.keyword_index import KeywordIndexUnavailable
from papertide.search.schemas import (
    MAX_AUTHOR_LENGTH,
    MAX_QUERY_LENGTH,
    DateField,
    SearchMode,
    SearchPage,
    SearchSort,
)
from papertide.web import search_views, server_timing
from papertide.web.deps import EncoderProviderDep, KeywordIndexDep, SessionDep, SettingsDep, templates

router = APIRouter()


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    session: SessionDep,
    encoder: EncoderProviderDep,
    keywords: KeywordIndexDep,
    settings: SettingsDep,
    form: Annotated[search_views.SearchForm, Query()],
) -> HTMLResponse:
    started = server_timing.started()
    context = _form_context(form)
    if form.blank:
        return templates.TemplateResponse(request, "pages/search.html", context)
    try:
        query = form.to_query()
    except ValidationError as error:
        context["error"] = search_views.explain(error)
        return templates.TemplateResponse(request, "pages/search.html", context, status_code=422)
    try:
        page = search_views.run_search(
            session, query, encoder=encoder, keywords=keywords, settings=settings, highlight=True
        )
    except KeywordIndexUnavailable as error:
        context["error"] = search_views.unavailable_sentence(error)
        context["semantic_url"] = search_views.link(query, page=1, mode=SearchMode.SEMANTIC.value)
        return templates.TemplateResponse(request, "pages/search.html", context, status_code=503)
    if query.uses_embeddings:  # while the first embedding runs, say how much meaning search covers
        context["coverage"] = search_views.meaning_coverage(session, model=settings.embedding_model)
    return _results(request, context, page, started=started)


def _form_context(form: search_views.SearchForm) -> dict[str, Any]:
    return {
        "form": form,
        "modes": [m.value for m in SearchMode],
        "sorts": [s.value for s in SearchSort],
        "date_fields": [d.value for d in DateField],
        "max_length": MAX_QUERY_LENGTH,
        "max_author_length": MAX_AUTHOR_LENGTH,
        "results": None,
        "error": None,
        "semantic_url": None,
        "coverage": None,
    }


def _results(request: Request, context: dict[str, Any], page: SearchPage, *, started: float) -> HTMLResponse:
    """The results page, with Server-Timing: the search's own steps, the rendering, the total."""
    rendering = server_timing.started()
    context |= {
        "results": page,
        "count_line": search_views.count_line(page),
        "pager": search_views.pager(page),
        "filtered": page.query.filters.active,
    }
    response = templates.TemplateResponse(request, "pages/search.html", context)
    steps = {**page.timings, "render": server_timing.elapsed_ms(rendering)}
    response.headers["Server-Timing"] = server_timing.header(steps, since=started)
    return response


@router.get("/search/like", response_class=HTMLResponse)
def more_like_this_form(request: Request) -> HTMLResponse:
    context = {"text": "", "hits": None, "error": None, "max_length": search_service.MAX_PASSAGE_LENGTH}
    return templates.TemplateResponse(request, "pages/more_like_this.html", context)


@router.post("/search/like", response_class=HTMLResponse)
def more_like_this(
    request: Request,
    session: SessionDep,
    encoder: EncoderProviderDep,
    text: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Papers like a pasted abstract. A POST because abstracts are too long for a URL; it changes nothing."""
    context: dict[str, object] = {
        "text": text,
        "hits": None,
        "error": None,
        "max_length": search_service.MAX_PASSAGE_LENGTH,
    }
    if (problem := search_service.passage_problem(text)) is not None:
        context["error"] = f"Paste {search_service.PASSAGE_RULE}: {problem}."
        return templates.TemplateResponse(request, "pages/more_like_this.html", context, status_code=422)
    model = encoder()  # only for a passage it will search: the first call loads the model
    if model is None:
        context["error"] = "The embedding model is not available, so this search is off."
        return templates.TemplateResponse(request, "pages/more_like_this.html", context, status_code=503)
    context["hits"] = search_service.more_like_this(session, text, encoder=model)
    return templates.TemplateResponse(request, "pages/more_like_this.html", context)
