"""Search input and output: what a searcher may ask for, and what one page of results holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator, model_validator

from papertide.models import Paper
from papertide.papers.categories import CATEGORY, spelled
from papertide.papers.dates import IsoDate
from papertide.search import query_syntax

MAX_QUERY_LENGTH = 300
MAX_AUTHOR_LENGTH = 200
MAX_CATEGORIES = 10
MAX_PAGE = 50  # 50 pages of 100: deeper than any searcher reads, and it bounds each list's depth
EARLIEST, LATEST = date(1800, 1, 1), date(2200, 12, 31)


class SearchMode(StrEnum):
    HYBRID = "hybrid"
    KEYWORD = "keyword"
    SEMANTIC = "semantic"


class SearchSort(StrEnum):
    RELEVANCE = "relevance"
    NEWEST = "newest"
    TRENDING = "trending"  # matches trending this week first (by trend score), then the rest by relevance


class DateField(StrEnum):
    PUBLISHED = "published"  # when the authors published it (arXiv v1)
    LISTED = "listed"  # when a source first listed it (a daily page, an announcement)


class MatchSource(StrEnum):
    WORDS = "words"
    MEANING = "meaning"
    BOTH = "both"


def _collapse(value: str) -> str:
    return " ".join(value.split())


class SearchFilters(BaseModel):
    """What narrows the results, whatever the mode; every field is optional."""

    model_config = {"frozen": True}

    author: str | None = Field(default=None, max_length=MAX_AUTHOR_LENGTH)
    categories: tuple[str, ...] = Field(default=(), max_length=MAX_CATEGORIES)
    date_field: DateField = DateField.PUBLISHED
    date_from: IsoDate | None = None
    date_to: IsoDate | None = None
    has_code: bool = False

    @field_validator("author")
    @classmethod
    def _author(cls, value: str | None) -> str | None:
        return _collapse(value) or None if value is not None else None

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for category in value:
            if not CATEGORY.fullmatch(category):
                raise ValueError(f"{category[:40]!r} is not an arXiv category (like cs.CL or hep-th)")
        return tuple(dict.fromkeys(spelled(category) for category in value))

    @field_validator("date_from", "date_to")
    @classmethod
    def _within_the_record(cls, value: date | None) -> date | None:
        # No paper lies outside these years, and every date inside has room for its next day in
        # every clock we hand it to (tantivy's nanoseconds end in 2262): year 9999 means "no end".
        return min(max(value, EARLIEST), LATEST) if value is not None else None

    @model_validator(mode="after")
    def _dates_in_order(self) -> SearchFilters:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("the start date is after the end date")
        return self

    @property
    def active(self) -> bool:
        return bool(self.author or self.categories or self.date_from or self.date_to or self.has_code)


class SearchQuery(BaseModel):
    q: str = Field(default="", max_length=MAX_QUERY_LENGTH)
    mode: SearchMode = SearchMode.HYBRID
    filters: SearchFilters = SearchFilters()
    sort: SearchSort = SearchSort.RELEVANCE
    page: int = Field(default=1, ge=1, le=MAX_PAGE)
    limit: int = Field(default=20, ge=1, le=100)

    @field_validator("q")
    @classmethod
    def _collapse_query(cls, value: str) -> str:
        return _collapse(value)

    @model_validator(mode="after")
    def _something_to_search(self) -> SearchQuery:
        if self.filters.author:
            return self
        if not self.q:
            raise ValueError("the query is empty: type some words, or an author")
        if query_syntax.parse(self.q).empty:
            # "-speech", "🎉" or "\\": no word to find, so every paper would be "no results".
            raise ValueError(
                "the query has no word to search for: type a word to find (a -word only leaves papers out), or an author"
            )
        return self

    @property
    def uses_embeddings(self) -> bool:
        """Semantic and hybrid modes encode the query; keyword mode (or an author alone) never loads the model."""
        return self.mode != SearchMode.KEYWORD and bool(self.q)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


@dataclass
class SearchHit:
    paper: Paper
    score: float
    keyword_rank: int | None = None
    semantic_rank: int | None = None
    similarity: float | None = None
    highlight: str | None = None  # HTML: the abstract escaped, matches wrapped in <mark>
    source: MatchSource | None = (
        None  # set when the ranks alone do not tell (a match beyond the keyword list)
    )

    @property
    def matched(self) -> MatchSource:
        """Found by its words, by its meaning, or by both."""
        if self.source is not None:
            return self.source
        if self.keyword_rank is not None and self.semantic_rank is not None:
            return MatchSource.BOTH
        return (
            MatchSource.WORDS
            if self.keyword_rank is not None or self.semantic_rank is None
            else MatchSource.MEANING
        )


@dataclass
class SearchPage:
    """One page of results, with an honest count of everything the query found."""

    query: SearchQuery
    hits: list[SearchHit]
    total: int  # papers found: keyword matches (exact), plus the semantic candidates no keyword matched
    total_is_estimate: bool  # semantic matches have no edge: the count is of the candidates ranked
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds by step, for Server-Timing

    @property
    def has_next(self) -> bool:
        return self.query.offset + len(self.hits) < self.total and self.query.page < MAX_PAGE
