"""JSON API under /api/v1: trending, search, paper, similar. Each route's return type is its response model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from papertide.papers import repository as paper_repository
from papertide.ranking import repository as ranking_repository
from papertide.search import service as search_service
from papertide.search.schemas import MAX_QUERY_LENGTH, SearchMode, SearchQuery
from papertide.web import paper_views
from papertide.web.deps import EncoderProviderDep, SessionDep, SettingsDep
from papertide.web.schemas import (
    API_ERRORS,
    BODY_ERRORS,
    ErrorResponse,
    PaperRead,
    SearchResult,
    SearchResults,
    SimilarResults,
    SimilarToPaperResults,
    TrendingPage,
)

router = APIRouter(prefix="/api/v1", tags=["api"], responses=API_ERRORS)
NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "No such paper"}
}


@router.get("/trending")
def trending(
    session: SessionDep,
    period: Annotated[str, Query(pattern="^(day|week|month)$")] = "day",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> TrendingPage:
    """Papers in trend order for the period, each with the components of its score."""
    return TrendingPage.from_rows(period, ranking_repository.trending(session, period=period, limit=limit))


@router.get("/search")
def search(
    session: SessionDep,
    encoder: EncoderProviderDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_LENGTH)],
    mode: SearchMode = SearchMode.HYBRID,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SearchResults:
    """Keyword (full text), semantic (embeddings) or hybrid (reciprocal rank fusion) search."""
    query = SearchQuery(q=q, mode=mode, limit=limit)
    # Keyword mode never needs the model: asking the provider would load it (seconds) for nothing.
    hits = search_service.search(session, query, encoder=encoder() if query.uses_embeddings else None)
    return SearchResults(query=query.q, mode=query.mode, results=[SearchResult.from_hit(h) for h in hits])


class PassageIn(BaseModel):
    # The body is what OpenAPI declares, no looser: unknown fields are refused (a misspelt `limit`
    # should not pass silently) and `limit` is a JSON integer (`true` and `"5"` are not).
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=5000, description="an abstract or any passage")
    limit: int = Field(default=10, ge=1, le=100)

    @field_validator("limit", mode="before")
    @classmethod
    def _json_integer(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a JSON integer")
        return value


@router.post(
    "/similar",
    responses={
        **BODY_ERRORS,
        503: {"model": ErrorResponse, "description": "No embedding model, or the database is not reachable"},
    },
)
def similar_to_text(session: SessionDep, encoder: EncoderProviderDep, body: PassageIn) -> SimilarResults:
    """Papers nearest to a pasted abstract ("more like this")."""
    model = encoder()
    if model is None:
        raise HTTPException(status_code=503, detail="The embedding model is not available.")
    return SimilarResults.from_hits(
        search_service.more_like_this(session, body.text, encoder=model, limit=body.limit)
    )


@router.get("/papers/{paper_id:path}/similar", responses=NOT_FOUND)
def similar(
    session: SessionDep, settings: SettingsDep, paper_id: str, limit: Annotated[int, Query(ge=1, le=50)] = 10
) -> SimilarToPaperResults:
    """The nearest papers by embedding (empty until the paper is embedded)."""
    if paper_repository.get_paper(session, paper_id) is None:
        raise HTTPException(status_code=404, detail=f"No paper with id {paper_id!r}.")
    hits = search_service.similar(session, paper_id, model=settings.embedding_model, limit=limit)
    return SimilarToPaperResults.from_hits(hits, id=paper_id)


@router.get("/papers/{paper_id:path}", responses=NOT_FOUND)
def paper(session: SessionDep, settings: SettingsDep, paper_id: str) -> PaperRead:
    """One paper's fields, its trend breakdown per period and its latest signals."""
    detail = paper_views.get_detail(session, paper_id, model=settings.embedding_model, similar_limit=0)
    if detail is None:
        raise HTTPException(status_code=404, detail=f"No paper with id {paper_id!r}.")
    return PaperRead.from_detail(detail)
