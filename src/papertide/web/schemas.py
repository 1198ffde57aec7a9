"""The JSON API's response models: a paper has the same summary fields wherever it appears."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema, field_validator

from papertide.models import Paper, PaperScore, Topic
from papertide.search.schemas import MatchSource, SearchHit, SearchMode, SearchPage
from papertide.templating import safe_url
from papertide.web.paper_views import PaperDetail

# Times as Python's isoformat writes them (`2026-08-21T12:00:00+00:00`), as the API always has;
# pydantic's own JSON would write UTC as `Z`, a needless change for existing clients.
Timestamp = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class ApiModel(BaseModel):
    """A response body part: OpenAPI publishes `additionalProperties: false`, so clients can rely on it."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class ErrorResponse(ApiModel):
    """Every error the API answers (4xx, 503): what was wrong, in words a person can act on."""

    detail: str | list[str]
    """One message, or one `field: problem` line per invalid input (422)."""


# The errors any /api/v1 route can answer besides its own (OpenAPI `responses=` on each router).
API_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "An input was not valid (each problem named)"},
    503: {"model": ErrorResponse, "description": "The database is not reachable; retry after `Retry-After`"},
}
# ... and a route that reads a request body.
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The request body could not be parsed (not UTF-8 JSON)"},
    413: {"model": ErrorResponse, "description": "The request body is over the server's limit"},
}


class HealthReport(ApiModel):
    """/healthz: `ok` with the paper count, or `degraded` naming the dependency that is down (503)."""

    status: Literal["ok", "degraded"]
    papers: int | None = None
    database: str | None = None
    """Only when degraded: `down: <why>`."""


class PaperSummary(ApiModel):
    """A paper's public fields; every paper in every API response carries them."""

    id: str
    """Exactly as stored: an arXiv id without its version (`2608.19880`), or an id derived from the title."""
    title: str
    authors: list[str]
    categories: list[str]
    published_at: Timestamp | None
    announced_at: Timestamp | None
    """When a source first listed the paper; trending measures age from here."""
    abs_url: str | None
    pdf_url: str | None
    code_url: str | None
    project_url: str | None

    @field_validator("abs_url", "pdf_url", "code_url", "project_url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        """Only http(s) links leave the API: a row stored before ingest checked them is not trusted."""
        return safe_url(value)

    @classmethod
    def from_paper(cls, paper: Paper, **fields: Any) -> Self:
        """The model for one paper row; `fields` fill in what a subclass adds to the summary."""
        summary = {name: getattr(paper, name) for name in PaperSummary.model_fields}
        return cls.model_validate({**summary, **fields})


class TrendScore(ApiModel):
    """A trend score for one period."""

    score: float
    components: dict[str, float]
    """Every number the score came from (engagement, velocity, decay, topic momentum...)."""


class TrendingResult(TrendScore, PaperSummary):
    """One paper in trend order, with its score for the period asked for."""

    @classmethod
    def from_row(cls, paper: Paper, score: PaperScore) -> Self:
        return cls.from_paper(paper, score=score.score, components=score.components)


class TrendingPage(ApiModel):
    period: str
    """day, week or month: the trending tab, or how long the span asked for by `date`, `week` or `month` is."""
    listed: str | None
    """The `date`, `week` or `month` asked for, as given; null for the current trending list."""
    as_of: Timestamp | None
    """The moment the ranking was computed for (null before the first scoring, and for a span)."""
    page: int
    limit: int
    has_next: bool
    """Whether page `p + 1` holds more papers (its URL is in the `Link` header, rel="next")."""
    results: list[TrendingResult]

    @classmethod
    def from_rows(
        cls, period: str, rows: Sequence[tuple[Paper, PaperScore]], *, page: int, limit: int, has_next: bool
    ) -> Self:
        results = [TrendingResult.from_row(paper, score) for paper, score in rows]
        as_of = rows[0][1].as_of if rows else None
        paging = {"page": page, "limit": limit, "has_next": has_next}
        return cls(period=period, listed=None, as_of=as_of, results=results, **paging)

    @classmethod
    def from_listed(
        cls,
        period: str,
        listed: str,
        rows: Sequence[tuple[Paper, float, dict[str, float]]],
        *,
        page: int,
        limit: int,
        has_next: bool,
    ) -> Self:
        """Papers of one day, week or month, with their engagement as the score."""
        results = [
            TrendingResult.from_paper(paper, score=score, components=parts) for paper, score, parts in rows
        ]
        paging = {"page": page, "limit": limit, "has_next": has_next}
        return cls(period=period, listed=listed, as_of=None, results=results, **paging)


class SearchResult(PaperSummary):
    """One paper found by a search or a similarity query, with how it ranked."""

    score: float
    """BM25 (keyword), cosine similarity (semantic) or the fused score in [0, 1] (hybrid); higher is better."""
    keyword_rank: int | None
    semantic_rank: int | None
    similarity: float | None
    """Cosine similarity of the embeddings, when the semantic side found the paper."""

    @classmethod
    def from_hit(cls, hit: SearchHit, **fields: Any) -> Self:
        return cls.from_paper(
            hit.paper,
            score=hit.score,
            keyword_rank=hit.keyword_rank,
            semantic_rank=hit.semantic_rank,
            similarity=hit.similarity,
            **fields,
        )


class SearchMatch(SearchResult):
    """One paper a search found, with how it ranked and by which side it was found."""

    matched: MatchSource
    """`words` (the keyword index found it), `meaning` (the embeddings did) or `both`."""

    @classmethod
    def from_hit(cls, hit: SearchHit, **fields: Any) -> Self:
        return super().from_hit(hit, matched=hit.matched, **fields)


class SearchResults(ApiModel):
    """One page of a search's results, with the count of everything it found."""

    query: str
    """The query as searched (whitespace collapsed; empty for a search by author alone)."""
    mode: SearchMode
    total: int
    """Papers found, over every page."""
    total_is_estimate: bool
    """True when the count includes semantic matches, which have no sharp edge: read it as "about"."""
    page: int
    limit: int
    has_next: bool
    """Whether `page + 1` holds more results."""
    results: list[SearchMatch]

    @classmethod
    def from_page(cls, page: SearchPage) -> Self:
        query = page.query
        return cls(
            query=query.q,
            mode=query.mode,
            total=page.total,
            total_is_estimate=page.total_is_estimate,
            page=query.page,
            limit=query.limit,
            has_next=page.has_next,
            results=[SearchMatch.from_hit(hit) for hit in page.hits],
        )


class SimilarResults(ApiModel):
    """Papers nearest to a pasted passage."""

    results: list[SearchResult]

    @classmethod
    def from_hits(cls, hits: Sequence[SearchHit], **fields: Any) -> Self:
        return cls.model_validate({**fields, "results": [SearchResult.from_hit(hit) for hit in hits]})


class SimilarToPaperResults(SimilarResults):
    """Papers nearest to one paper (empty until that paper is embedded)."""

    id: str


class PaperRead(PaperSummary):
    """One paper in full: its summary fields, abstract, trend per period and latest signals."""

    abstract: str
    trend: dict[str, TrendScore]
    """By period (day, week, month): the score and its components."""
    signals: dict[str, float]
    """The newest observation of each signal kind (upvotes, github_stars, ...)."""

    @classmethod
    def from_detail(cls, detail: PaperDetail) -> Self:
        trend = {
            period: TrendScore(score=s.score, components=s.components) for period, s in detail.scores.items()
        }
        return cls.from_paper(
            detail.paper, abstract=detail.paper.abstract, trend=trend, signals=detail.signals
        )


class TopicWeek(ApiModel):
    week: date
    """The Monday the week starts on."""
    papers: int


class TopicSummary(ApiModel):
    id: int
    label: str
    terms: list[str]
    size: int
    momentum: float
    """Papers in the last 7 days against the weekly mean of the 4 weeks before."""
    weekly: list[TopicWeek]

    @classmethod
    def from_topic(cls, topic: Topic) -> Self:
        return cls.model_validate(topic, from_attributes=True)


class TopicList(ApiModel):
    results: list[TopicSummary]
