"""Trending, paper detail and status pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.digests import service as digest_service
from papertide.papers import repository as paper_repository
from papertide.ranking import repository as ranking_repository
from papertide.ranking import service as ranking_service
from papertide.ranking.trending import PERIODS
from papertide.runs.repository import last_runs_by_source
from papertide.search import repository as search_repository
from papertide.subscribers import preferences
from papertide.web import paper_views
from papertide.web.deps import SessionDep, SettingsDep, csrf_token, templates
from papertide.web.reader_cookie import VOTE_FORM, reader_id

router = APIRouter()
PAGE_SIZE = 30


@router.get("/", response_class=HTMLResponse)
def trending_page(
    request: Request,
    session: SessionDep,
    period: Annotated[str, Query(pattern="^(day|week|month)$")] = "day",
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
) -> HTMLResponse:
    rows = ranking_repository.trending(session, period=period, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    context = {
        "period": period,
        "periods": list(PERIODS),
        "rows": rows,
        "page": page,
        "page_size": PAGE_SIZE,
        "start": (page - 1) * PAGE_SIZE,
        **paper_views.trending_clock(session),
    }
    return templates.TemplateResponse(request, "pages/trending.html", context)


@router.get("/papers/{paper_id:path}", response_class=HTMLResponse)
def paper_page(
    request: Request, session: SessionDep, settings: SettingsDep, paper_id: str, via: str | None = None
) -> HTMLResponse:
    detail = paper_views.get_detail(session, paper_id, model=settings.embedding_model)
    if detail is None:
        raise HTTPException(status_code=404, detail=f"No paper with id {paper_id!r}.")
    # Local attention feeds trending: a view, and a click when the link came from a digest.
    paper_repository.record_view(session, paper_id, day=datetime.now(UTC).date(), click=via == "digest")
    context = {
        "detail": detail,
        "paper": detail.paper,
        "sparkline": paper_views.sparkline_points(detail.history),
        "periods": list(PERIODS),
        "trend": ranking_service.params_from(settings),
        **_vote_buttons(request, session, settings),
    }
    return templates.TemplateResponse(request, "pages/paper.html", context)


def _vote_buttons(request: Request, session: Session, settings: Settings) -> dict[str, object]:
    """The vote buttons ("more / less like this") for the reader this browser belongs to, if any."""
    subscriber_id = reader_id(request, settings)
    if subscriber_id is None:
        return {"reader": False, "vote_profiles": []}
    return {
        "reader": True,
        "vote_profiles": preferences.reader_profiles(session, subscriber_id=subscriber_id),
        "vote_csrf": csrf_token(settings, VOTE_FORM),
    }


@router.get("/status", response_class=HTMLResponse)
def status_page(request: Request, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    context = {
        "sources": last_runs_by_source(session, per_source=5),
        "embedded": search_repository.embedded_count(session, model=settings.embedding_model),
        "delivery": digest_service.delivery_health(session),
        **paper_views.trending_clock(session),
    }
    return templates.TemplateResponse(request, "pages/status.html", context)
