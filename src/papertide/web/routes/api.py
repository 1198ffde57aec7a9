"""JSON API under /api/v1: trending, search, paper, similar. Each route's return type is its response model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, field_validator
from pydantic_core import ErrorDetails
from sqlalchemy.orm import Session

from papertide.config import Settings, get_settings
from papertide.db import read_session
from papertide.papers import repository as paper_repository
from papertide.papers.categories import CATEGORY
from papertide.papers.dates import IsoDate
from papertide.ranking import repository as ranking_repository
from papertide.ranking import service as ranking_service
from papertide.search import service as search_service
from papertide.search.keyword_index import KeywordIndexUnavailable
from papertide.search.schemas import (
    MAX_AUTHOR_LENGTH,
    MAX_CATEGORIES,
    MAX_PAGE,
    MAX_QUERY_LENGTH,
    DateField,
    SearchMode,
    SearchQuery,
    SearchSort,
)
from papertide.web import caching, listed_window, paging, paper_views, search_views, server_timing
from papertide.web.deps import EncoderProviderDep, KeywordIndexDep, SessionDep, SettingsDep
from papertide.web.listed_window import ListedWindow
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
from papertide.web.search_views import unavailable_sentence

router = APIRouter(prefix="/api/v1", tags=["api"], responses=API_ERRORS)
NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "No such paper"}
}


# Deep enough for any reader (30,000 papers at limit=100); a bound on the OFFSET each request scans.
MAX_TRENDING_PAGE = 300
PAGE_NUMBER = "page number, from 1; the `Link` header has the next and previous pages' URLs"


@router.get("/trending", response_model=TrendingPage)
async def trending(
    request: Request,
    period: Annotated[str, Query(pattern="^(day|week|month)$")] = "day",
    p: Annotated[int, Query(ge=1, le=MAX_TRENDING_PAGE, description=PAGE_NUMBER)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    day: Annotated[
        IsoDate | None, Query(alias="date", description="papers listed on this day (UTC), as YYYY-MM-DD")
    ] = None,
    week: Annotated[
        str | None,
        Query(pattern=listed_window.WEEK_PATTERN, description="papers listed in this ISO week, as YYYY-Www"),
    ] = None,
    month: Annotated[
        str | None,
        Query(pattern=listed_window.MONTH_PATTERN, description="papers listed in this month, as YYYY-MM"),
    ] = None,
) -> Response:
    """Papers in trend order for the period, each with the components of its score.

    With `date`, `week` or `month` (at most one; `period` is then ignored): the papers listed in
    that span (UTC; weeks are ISO weeks, Monday to Sunday), as Hugging Face's
    `/api/daily_papers` lists them. They are ordered by engagement: `score` is upvotes
    + 0.05 * GitHub stars + 2 * comments as last observed (the trending formula's weights, by
    default; without its decay by age, since such a list is about its span, not about today), and
    `components` holds those counts; equal scores list the newer paper first. A value that names
    no real span (2026-02-30, 2026-W54, 2026-13) is a 422 naming the parameter.
    """
    window = listed_window.parse(day=day, week=week, month=month)

    # Kept per score run and validated by it (ETag, 304): web/caching.py. Async, with no
    # dependency that needs a thread: a hit or a 304 is answered on the event loop; a miss renders
    # in the thread pool, in its own read-only session.
    def render() -> Response:
        settings = get_settings()
        with read_session() as session:
            body = _trending_page(session, settings, period=period, window=window, page=p, limit=limit)
        answer = caching.json_response(body)
        paging.add_links(answer, request, page=p, has_next=body.has_next, base_url=settings.base_url)
        return answer

    return await caching.respond_async(request, render, policy=caching.DATA)


def _trending_page(
    session: Session, settings: Settings, *, period: str, window: ListedWindow | None, page: int, limit: int
) -> TrendingPage:
    """One page of the list; a row past `limit` is read only to tell whether a next page exists."""
    offset = (page - 1) * limit
    paged = {"page": page, "limit": limit}
    if window is None:
        rows = ranking_repository.trending(session, period=period, limit=limit + 1, offset=offset)
        return TrendingPage.from_rows(period, rows[:limit], has_next=len(rows) > limit, **paged)
    params = ranking_service.params_from(settings)
    listed = ranking_repository.listed_between(
        session, start=window.start, end=window.end, params=params, limit=limit + 1, offset=offset
    )
    return TrendingPage.from_listed(
        window.period, window.value, listed[:limit], has_next=len(listed) > limit, **paged
    )


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
    date_from: Annotated[IsoDate | None, WithJsonSchema({"type": "string", "format": "date"})] = Field(
        default=None, alias="from", description="on or after this day (UTC)"
    )
    date_to: Annotated[IsoDate | None, WithJsonSchema({"type": "string", "format": "date"})] = Field(
        default=None, alias="to", description="on or before this day (UTC)"
    )
    has_code: bool = Field(default=False, description="only papers that link their code")
    sort: SearchSort = SearchSort.RELEVANCE
    p: int = Field(default=1, ge=1, le=MAX_PAGE, description=PAGE_NUMBER)
    # The name the page number had before `p` (every list now pages by `p`): still read, for the
    # clients written against it; `p` wins when both are given.
    page: int | None = Field(default=None, ge=1, le=MAX_PAGE, description="the former name of `p`")
    limit: int = Field(default=20, ge=1, le=100)

    @property
    def page_number(self) -> int:
        """The page asked for, by `p` or by its former name."""
        return self.page if self.page is not None and "p" not in self.model_fields_set else self.p

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
        fields = {
            "q": self.q,
            "mode": self.mode,
            "sort": self.sort,
            "page": self.page_number,
            "limit": self.limit,
        }
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
    request: Request,
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
    try:
        page = search_views.run_search(session, query, encoder=encoder, keywords=keywords, settings=settings)
    except KeywordIndexUnavailable as error:
        raise HTTPException(status_code=503, detail=unavailable_sentence(error)) from None
    results = SearchResults.from_page(page)
    response.headers["Server-Timing"] = server_timing.header(page.timings, since=started)
    paging.add_links(response, request, page=query.page, has_next=page.has_next, base_url=settings.base_url)
    return results


class PassageIn(BaseModel):
    # The body is what OpenAPI declares, no looser: unknown fields are refused (a misspelt `limit`
    # should not pass silently) and `limit` is a JSON integer (`true` and `"5"` are not).
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1,
        max_length=search_service.MAX_PASSAGE_LENGTH,
        # No pattern says "a letter or digit" alike in ECMA-262 (where \w is ASCII) and in Python:
        # the description states the rule, and _searchable checks it.
        description=search_service.PASSAGE_RULE,
    )
    limit: int = Field(default=10, ge=1, le=100)

    @field_validator("text")
    @classmethod
    def _searchable(cls, value: str) -> str:
        if (problem := search_service.passage_problem(value)) is not None:
            raise ValueError(problem)
        return value

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
