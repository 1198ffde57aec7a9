"""Topics: clusters of papers in embedding space, by momentum, with their papers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, Response

from papertide.papers import repository as paper_repository
from papertide.ranking import repository as ranking_repository
from papertide.web import caching, paper_views
from papertide.web.deps import ReadSessionDep, templates
from papertide.web.guards import INT4_MAX
from papertide.web.schemas import API_ERRORS, TopicList, TopicSummary

router = APIRouter()


def bars(weekly: list[dict[str, Any]], *, width: int = 120, height: int = 24) -> list[dict[str, Any]]:
    """Bar geometry for the inline papers-per-week chart."""
    if not weekly:
        return []
    top = max(week["papers"] for week in weekly) or 1
    step = width / len(weekly)
    return [
        {
            "x": round(i * step, 1),
            "w": round(step - 1, 1),
            "h": round(week["papers"] / top * height, 1),
            "y": round(height - week["papers"] / top * height, 1),
            "label": f"{week['week']}: {week['papers']}",
        }
        for i, week in enumerate(weekly)
    ]


@router.get("/topics", response_class=HTMLResponse)
def topics_page(request: Request, session: ReadSessionDep) -> Response:
    def render() -> Response:
        rows = [(topic, bars(topic.weekly)) for topic in ranking_repository.topics_by_momentum(session)]
        return templates.TemplateResponse(request, "pages/topics.html", {"rows": rows})

    return caching.respond(request, render, personal=caching.is_personal(request))


def no_such_topic(topic_id: int) -> HTTPException:
    """The 404 for a topic id that is not (or no longer) there: the page's and its feed's."""
    return HTTPException(
        status_code=404, detail=f"No topic {topic_id}: topics are renumbered when papertide reclusters."
    )


@router.get("/topics/{topic_id}", response_class=HTMLResponse)
def topic_page(
    request: Request, session: ReadSessionDep, topic_id: Annotated[int, Path(ge=0, le=INT4_MAX)]
) -> Response:
    def render() -> Response:
        topic = paper_repository.get_topic(session, topic_id)
        if topic is None:
            raise no_such_topic(topic_id)
        context = {
            "topic": topic,
            "bars": bars(topic.weekly),
            "rows": ranking_repository.topic_papers(session, topic_id),
            "trend_reason": paper_views.trend_reason,
        }
        return templates.TemplateResponse(request, "pages/topic.html", context)

    return caching.respond(request, render, personal=caching.is_personal(request))


@router.get("/api/v1/topics", tags=["api"], responses=API_ERRORS, response_model=TopicList)
def topics_api(request: Request, session: ReadSessionDep) -> Response:
    """Topics by momentum, with their size and papers per week."""

    def render() -> Response:
        topics = ranking_repository.topics_by_momentum(session)
        return caching.json_response(TopicList(results=[TopicSummary.from_topic(t) for t in topics]))

    return caching.respond(request, render, policy=caching.DATA)
