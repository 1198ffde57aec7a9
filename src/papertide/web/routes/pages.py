"""Trending, paper detail and status pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.db import read_session
from papertide.digests import service as digest_service
from papertide.papers import repository as paper_repository
from papertide.ranking import repository as ranking_repository
from papertide.ranking import service as ranking_service
from papertide.ranking.trending import PERIODS
from papertide.runs.repository import last_runs_by_source
from papertide.search import repository as search_repository
from papertide.subscribers import preferences
from papertide.web import caching, paper_views, view_counting
from papertide.web.deps import SessionDep, SettingsDep, csrf_token, templates
from papertide.web.reader_cookie import VOTE_FORM, reader_id

router = APIRouter()
PAGE_SIZE = 30


@router.get("/", response_class=HTMLResponse)
async def trending_page(
    request: Request,
    period: Annotated[str, Query(pattern="^(day|week|month)$")] = "day",
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
) -> Response:
    # Async, with no session dependency: a cached page or a 304 is answered without a thread or a
    # query (web/caching.py); only a miss renders, in the thread pool, in its own read-only session.
    def render() -> Response:
        as_of = caching.score_run(request).as_of
        with read_session() as session:
            offset = (page - 1) * PAGE_SIZE
            rows = ranking_repository.trending(session, period=period, limit=PAGE_SIZE, offset=offset)
            context = {
                "period": period,
                "periods": list(PERIODS),
                "rows": rows,
                "page": page,
                "page_size": PAGE_SIZE,
                "start": offset,
                "trend_reason": paper_views.trend_reason,
                **(paper_views.clock_at(as_of) if as_of else paper_views.trending_clock(session)),
            }
            return templates.TemplateResponse(request, "pages/trending.html", context)

    return await caching.respond_async(request, render, personal=caching.is_personal(request))


@router.get("/papers/{paper_id:path}", response_class=HTMLResponse)
def paper_page(
    request: Request, session: SessionDep, settings: SettingsDep, paper_id: str, via: str | None = None
) -> HTMLResponse:
    detail = paper_views.get_detail(session, paper_id, model=settings.embedding_model)
    if detail is None:
        raise HTTPException(status_code=404, detail=f"No paper with id {paper_id!r}.")
    # Local attention feeds trending: a view, and a click when the link came from a digest; once
    # a day per visitor, and only for a page a person opened (web.view_counting).
    if view_counting.counts_as_view(request):
        today = view_counting.today()
        who, address = view_counting.visitor(request, settings, day=today)
        paper_repository.record_view(
            session, paper_id, day=today, click=via == "digest", visitor=who, address=address
        )
    context = {
        "detail": detail,
        "paper": detail.paper,
        "sparkline": paper_views.sparkline_points(detail.history),
        "share": paper_views.share_card(detail.paper, base_url=settings.base_url),
        "periods": list(PERIODS),
        "trend": ranking_service.params_from(settings),
        **_vote_buttons(request, session, settings),
    }
    return caching.uncached_page(request, templates.TemplateResponse(request, "pages/paper.html", context))


def _vote_buttons(request: Request, session: Session, settings: Settings) -> dict[str, object]:
    """The vote buttons ("more / less like this") for the reader this browser belongs to, if any."""
    subscriber_id = reader_id(request, settings, session)
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
        # The page is public, and a run's error can quote a reader's address ("refused mail to
        # alice@example.org", the circuit breaker's last failure): shown masked, as suppressions are.
        "masked": digest_service.mask_addresses,
        **paper_views.trending_clock(session),
    }
    return templates.TemplateResponse(request, "pages/status.html", context)
