"""JSON API under /api/v1: trending, search, paper, similar. Each route's return type is its response model."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, field_validator
from pydantic_core import ErrorDetails

from papertide.papers import repository as paper_repository
from papertide.ranking import repository as ranking_repository
from papertide.search import service as search_service
from papertide.search.keyword_index import KeywordIndexUnavailable
from papertide.search.schemas import (
    CATEGORY,
    MAX_AUTHOR_LENGTH,
    MAX_CATEGORIES,
    MAX_PAGE,
    MAX_QUERY_LENGTH,
    DateField,
    SearchMode,
    SearchQuery,
    SearchSort,
)
from papertide.web import paper_views, server_timing
from papertide.web.deps import EncoderProviderDep, KeywordIndexDep, SessionDep, SettingsDep
from papertide.web.schemas import (
    API_ERRORS,
    BODY_ERRORS,
    ErrorResponse,
    PaperRead,
    SearchResults,
    SimilarResults,
    SimilarToPaperResults,
    TrendingPage,
)
from papertide.web.search_views import KEYWORD_INDEX_BUILDING

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


class SearchParams(BaseModel):
    """/api/v1/search's query parameters, as OpenAPI publishes them."""

    q: str = Field(
        default="",
        max_length=MAX_QUERY_LENGTH,
        description='words, "phrases" and -minus; optional with an author',
    )
    mode: SearchMode = SearchMode.HYBRID
    author: str = Field(
        default="", max_length=MAX_AUTHOR_LENGTH, description="papers by this author (every name given)"
    )
    # Checked by SearchFilters (a sentence naming the bad one); published here so clients know the form.
    category: list[Annotated[str, WithJsonSchema({"type": "string", "pattern": CATEGORY.pattern})]] = Field(
        default=[],
        max_length=MAX_CATEGORIES,
        description="an arXiv category (cs.CL, hep-th); repeat for any of several",
    )
    date_field: DateField = Field(default=DateField.PUBLISHED, description="which date `from` and `to` bound")
    date_from: Annotated[date | None, WithJsonSchema({"type": "string", "format": "date"})] = Field(
        default=None, alias="from", description="on or after this day (UTC)"
    )
    date_to: Annotated[date | None, WithJsonSchema({"type": "string", "format": "date"})] = Field(
        default=None, alias="to", description="on or before this day (UTC)"
    )
    has_code: bool = Field(default=False, description="only papers that link their code")
    sort: SearchSort = SearchSort.RELEVANCE
    page: int = Field(default=1, ge=1, le=MAX_PAGE)
    limit: int = Field(default=20, ge=1, le=100)

    def to_query(self) -> SearchQuery:
        """The search asked for; a rule across fields (q or author, from <= to) is a 422 naming one."""
        filters = {
            "author": self.author or None,
            "categories": tuple(self.category),
            "date_field": self.date_field,
            "date_from": self.date_from,
            "date_to": self.date_to,
            "has_code": self.has_code,
        }
        fields = {"q": self.q, "mode": self.mode, "sort": self.sort, "page": self.page, "limit": self.limit}
        try:
            return SearchQuery.model_validate({**fields, "filters": filters})
        except ValidationError as error:
            raise RequestValidationError([_as_parameter(problem) for problem in error.errors()]) from None


# SearchQuery's fields by the parameter a client sent: the model nests the filters, and its one rule
# across the filters (`from` <= `to`) is reported on "filters"; an empty search (no field) is `q`'s.
PARAMETERS = {"categories": "category", "date_from": "from", "date_to": "to", "filters": "from"}


def _as_parameter(problem: ErrorDetails) -> dict[str, Any]:
    loc = [str(part) for part in problem["loc"]]
    field = loc[1] if loc[:1] == ["filters"] and len(loc) > 1 else (loc[0] if loc else "q")
    message = problem["msg"].removeprefix("Value error, ")
    return {"type": problem["type"], "loc": ("query", PARAMETERS.get(field, field)), "msg": message}


@router.get(
    "/search",
    responses={
        503: {
            "model": ErrorResponse,
            "description": "The database is not reachable, or the keyword index is being built "
            "(`mode=semantic` still works)",
        }
    },
)
def search(
    response: Response,
    session: SessionDep,
    encoder: EncoderProviderDep,
    keywords: KeywordIndexDep,
    settings: SettingsDep,
    params: Annotated[SearchParams, Query()],
) -> SearchResults:
    """Keyword (BM25), semantic (embeddings) or hybrid (the two scores fused) search, filtered,
    sorted and paged. `Server-Timing` says where the time went."""
    started = server_timing.started()
    query = params.to_query()
    # Keyword mode never needs the model: asking the provider would load it (seconds) for nothing.
    model = encoder() if query.uses_embeddings else None
    try:
        page = search_service.search(
            session, query, encoder=model, keywords=keywords, ef_search=settings.search_ef_search
        )
    except KeywordIndexUnavailable:
        raise HTTPException(status_code=503, detail=KEYWORD_INDEX_BUILDING) from None
    results = SearchResults.from_page(page)
    response.headers["Server-Timing"] = server_timing.header(page.timings, since=started)
    return results


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
