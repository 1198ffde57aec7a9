"""JSON API under /api/v1: trending, search, paper, similar."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from papertide.papers import repository as paper_repository
from papertide.papers import service as paper_service
from papertide.ranking import repository as ranking_repository
from papertide.search import service as search_service
from papertide.search.schemas import MAX_QUERY_LENGTH, SearchMode, SearchQuery
from papertide.web.deps import EncoderProviderDep, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["api"])


@router.get("/trending")
def trending(
    session: SessionDep,
    period: Annotated[str, Query(pattern="^(day|week|month)$")] = "day",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Papers in trend order for the period, each with the components of its score."""
    rows = ranking_repository.trending(session, period=period, limit=limit)
    as_of = rows[0][1].as_of.isoformat() if rows else None
    results = [
        {
            "id": p.id,
            "title": p.title,
            "score": s.score,
            "components": s.components,
            "authors": p.authors,
            "abs_url": p.abs_url,
            "pdf_url": p.pdf_url,
            "code_url": p.code_url,
            "published_at": p.published_at.isoformat() if p.published_at else None,
        }
        for p, s in rows
    ]
    return {"period": period, "as_of": as_of, "results": results}


@router.get("/search")
def search(
    session: SessionDep,
    encoder: EncoderProviderDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_LENGTH)],
    mode: SearchMode = SearchMode.HYBRID,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Keyword (full text), semantic (embeddings) or hybrid (reciprocal rank fusion) search."""
    query = SearchQuery(q=q, mode=mode, limit=limit)
    hits = search_service.search(session, query, encoder=encoder())
    results = [
        {
            "id": h.paper.id,
            "title": h.paper.title,
            "score": h.score,
            "keyword_rank": h.keyword_rank,
            "semantic_rank": h.semantic_rank,
            "similarity": h.similarity,
            "abs_url": h.paper.abs_url,
        }
        for h in hits
    ]
    return {"query": query.q, "mode": query.mode.value, "results": results}


class PassageIn(BaseModel):
    text: str = Field(min_length=1, max_length=5000, description="an abstract or any passage")
    limit: int = Field(default=10, ge=1, le=100)


@router.post("/similar")
def similar_to_text(session: SessionDep, encoder: EncoderProviderDep, body: PassageIn) -> dict[str, Any]:
    """Papers nearest to a pasted abstract ("more like this")."""
    model = encoder()
    if model is None:
        raise HTTPException(status_code=503, detail="The embedding model is not available.")
    hits = search_service.more_like_this(session, body.text, encoder=model, limit=body.limit)
    return {"results": [{"id": h.paper.id, "title": h.paper.title, "score": h.score} for h in hits]}


@router.get("/papers/{paper_id:path}/similar")
def similar(
    session: SessionDep, settings: SettingsDep, paper_id: str, limit: Annotated[int, Query(ge=1, le=50)] = 10
) -> dict[str, Any]:
    """The nearest papers by embedding (empty until the paper is embedded)."""
    if paper_repository.get_paper(session, paper_id) is None:
        raise HTTPException(status_code=404, detail=f"No paper with id {paper_id!r}.")
    hits = search_service.similar(session, paper_id, model=settings.embedding_model, limit=limit)
    return {
        "id": paper_id,
        "results": [{"id": h.paper.id, "title": h.paper.title, "score": h.score} for h in hits],
    }


@router.get("/papers/{paper_id:path}")
def paper(session: SessionDep, settings: SettingsDep, paper_id: str) -> dict[str, Any]:
    """One paper's fields, its trend breakdown per period and its latest signals."""
    detail = paper_service.get_detail(session, paper_id, model=settings.embedding_model, similar_limit=0)
    if detail is None:
        raise HTTPException(status_code=404, detail=f"No paper with id {paper_id!r}.")
    trend = {period: {"score": s.score, "components": s.components} for period, s in detail.scores.items()}
    return {**paper_service.api_fields(detail.paper), "trend": trend, "signals": detail.signals}
