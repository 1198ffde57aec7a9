"""What the search page shows around the results: its form as typed, a sentence for each bad field,
the honest count and the page links."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.embeddings.encoder import Encoder
from papertide.papers import repository as paper_repository
from papertide.search import repository as search_repository
from papertide.search import service as search_service
from papertide.search.keyword_index import (
    KeywordIndex,
    KeywordIndexDamaged,
    KeywordIndexFolderUnusable,
    KeywordIndexUnavailable,
)
from papertide.search.schemas import (
    MAX_AUTHOR_LENGTH,
    MAX_CATEGORIES,
    MAX_PAGE,
    MAX_QUERY_LENGTH,
    SearchPage,
    SearchQuery,
    SearchSort,
)

PAGE_SIZE = 20
KEYWORD_INDEX_BUILDING = (
    "The keyword index is being built, so keyword and hybrid search are off for a few minutes. "
    "Semantic search still works."
)
# A damaged index does not mend itself (keyword_index.KeywordIndexDamaged): say who must act and how.
KEYWORD_INDEX_DAMAGED = (
    "The keyword index is damaged; an administrator must run `papertide reindex`. "
    "Until then keyword and hybrid search are off. Semantic search still works."
)
KEYWORD_INDEX_FOLDER = (
    "The keyword index's folder cannot be used (the server log says why); keyword and hybrid search "
    "are off until an administrator fixes it. Semantic search still works."
)
PAGE_LINKS_AROUND = 3  # page numbers shown either side of the current one
# Counting a million papers and their vectors takes tens of milliseconds: each process counts at
# most once a minute, and a reader sees a count up to a minute old while the worker catches up.
COVERAGE_TTL_SECONDS = 60.0


def unavailable_sentence(error: KeywordIndexUnavailable) -> str:
    """What the page, the API and the feed say when keyword search cannot run."""
    if isinstance(error, KeywordIndexDamaged):
        return KEYWORD_INDEX_DAMAGED
    if isinstance(error, KeywordIndexFolderUnusable):
        return KEYWORD_INDEX_FOLDER
    return KEYWORD_INDEX_BUILDING


class SearchForm(BaseModel):
    """The page's fields as the browser sends them. All text: SearchQuery checks them, so that a bad
    value gets a sentence on the page (explain()) rather than FastAPI's bare list of errors."""

    model_config = ConfigDict(populate_by_name=True)

    q: str = ""
    mode: str = "hybrid"
    author: str = ""
    categories: str = ""  # one box: "cs.CL cs.LG" or "cs.CL, cs.LG"
    date_field: str = ""
    date_from: str = Field(default="", alias="from")
    date_to: str = Field(default="", alias="to")
    has_code: str = ""
    sort: str = ""
    page: str = ""

    @property
    def blank(self) -> bool:
        """Nothing filled in yet (the mode, the date field and the sort always come with the form):
        show the form alone. A filter without words or an author is a search to explain, not this."""
        typed = (self.q, self.author, self.categories, self.date_from, self.date_to, self.has_code)
        return not any(value.strip() for value in typed)

    def to_query(self) -> SearchQuery:
        """The search this form asks for; ValidationError names each bad field."""
        filters: dict[str, Any] = {
            "author": self.author,
            "categories": tuple(c for c in re.split(r"[\s,]+", self.categories) if c),
            "date_field": self.date_field.strip(),
            "date_from": self.date_from.strip(),
            "date_to": self.date_to.strip(),
            "has_code": self.has_code.strip(),
        }
        fields: dict[str, Any] = {
            "q": self.q,
            "mode": self.mode,
            "sort": self.sort.strip(),
            "page": self.page.strip(),
            "limit": PAGE_SIZE,
            # An empty box is a field left alone, not a value: the model's default applies.
            "filters": {name: value for name, value in filters.items() if value},
        }
        return SearchQuery.model_validate({name: value for name, value in fields.items() if value != ""})


# One sentence per field, for the person who filled in the form.
SENTENCES = {
    "q": f"The query is too long: keep it under {MAX_QUERY_LENGTH} characters.",
    "mode": "Unknown search mode: choose hybrid, keyword or semantic.",
    "sort": "Unknown sort: choose relevance, newest or trending.",
    "page": f"The page must be a number from 1 to {MAX_PAGE}.",
    "author": f"The author is too long: keep it under {MAX_AUTHOR_LENGTH} characters.",
    "date_field": "Unknown date field: choose published or listed.",
    "date_from": "The “from” date is not a date: use the form YYYY-MM-DD.",
    "date_to": "The “to” date is not a date: use the form YYYY-MM-DD.",
    "has_code": "“Has code” is either ticked or not: leave the box as the form sends it.",
    "filters": "The “from” date is after the “to” date.",
}


def explain(error: ValidationError) -> str:
    """A sentence for each field that was wrong, in the words of the form."""
    sentences: list[str] = []
    for problem in error.errors():
        sentence = _sentence(problem)
        if sentence not in sentences:
            sentences.append(sentence)
    return " ".join(sentences)


def _sentence(problem: Any) -> str:
    loc = [str(part) for part in problem["loc"]]
    if not loc:  # the rule on the whole query: something to search for
        if "no word to search for" in _message(problem):
            return "Type a word to find: a -word only leaves papers out (or search by author)."
        return "Type some words to search for, or an author."
    field = loc[1] if loc[0] == "filters" and len(loc) > 1 else loc[0]
    if field == "categories":
        if problem["type"] == "too_long":
            return f"Give at most {MAX_CATEGORIES} categories."
        return f"Categories: {_message(problem)}."
    return SENTENCES.get(field, f"Invalid {field}: {_message(problem)}.")


def _message(problem: Any) -> str:
    """pydantic's message without its "Value error, " prefix."""
    return str(problem["msg"]).removeprefix("Value error, ")


def count_line(page: SearchPage) -> str:
    """ "About 1,240 results" when the count is an estimate, "1,240 results" when it is exact."""
    noun = "result" if page.total == 1 else "results"
    return f"{'About ' if page.total_is_estimate else ''}{page.total:,} {noun}"


def link(query: SearchQuery, *, page: int | None = None, **changes: str) -> str:
    """The URL of this search (on another page, or with a field changed). urlencode quotes every
    value, so what a searcher typed can never break out of the query string."""
    filters = query.filters
    dated = filters.date_from is not None or filters.date_to is not None
    fields = {
        "q": query.q,
        "mode": query.mode.value,
        "author": filters.author or "",
        "categories": " ".join(filters.categories),
        "date_field": filters.date_field.value if dated else "",
        "from": filters.date_from.isoformat() if filters.date_from else "",
        "to": filters.date_to.isoformat() if filters.date_to else "",
        "has_code": "1" if filters.has_code else "",
        "sort": query.sort.value if query.sort != SearchSort.RELEVANCE else "",
        "page": str(page if page is not None else query.page),
        **changes,
    }
    if fields["page"] == "1":
        fields["page"] = ""
    return "/search?" + urlencode({name: value for name, value in fields.items() if value})


@dataclass(frozen=True)
class PageLink:
    number: int
    url: str
    current: bool


@dataclass(frozen=True)
class Pager:
    first: str
    previous: str | None
    next: str | None
    pages: list[PageLink]


def pager(page: SearchPage) -> Pager:
    """Previous, the page numbers around this one (up to the last page the count reaches), Next."""
    query = page.query
    last = min(MAX_PAGE, max(query.page, math.ceil(page.total / query.limit)))
    if not page.has_next:
        last = query.page
    numbers = range(max(1, query.page - PAGE_LINKS_AROUND), min(last, query.page + PAGE_LINKS_AROUND) + 1)
    return Pager(
        first=link(query, page=1),
        previous=link(query, page=query.page - 1) if query.page > 1 else None,
        next=link(query, page=query.page + 1) if page.has_next else None,
        pages=[PageLink(n, link(query, page=n), n == query.page) for n in numbers],
    )


def coverage_line(*, embedded: int, papers: int) -> str | None:
    """ "412 of 1,219 papers searchable by meaning so far" while the embedding worker has papers
    left to read; None once every paper has its vector (or there are none)."""
    if papers == 0 or embedded >= papers:
        return None
    noun = "paper" if papers == 1 else "papers"
    return f"{embedded:,} of {papers:,} {noun} searchable by meaning so far"


_coverage_cache: dict[tuple[str, str], tuple[float, str | None]] = {}
_coverage_lock = threading.Lock()


def meaning_coverage(session: Session, *, model: str) -> str | None:
    """coverage_line() for this database and model, counted at most once per COVERAGE_TTL_SECONDS."""
    key = (str(session.get_bind().engine.url), model)
    now = time.monotonic()
    with _coverage_lock:
        cached = _coverage_cache.get(key)
    if cached is not None and now - cached[0] < COVERAGE_TTL_SECONDS:
        return cached[1]
    line = coverage_line(
        embedded=search_repository.embedded_count(session, model=model),
        papers=paper_repository.count_papers(session),
    )
    with _coverage_lock:
        _coverage_cache[key] = (now, line)
    return line


def run_search(
    session: Session,
    query: SearchQuery,
    *,
    encoder: Callable[[], Encoder | None],
    keywords: KeywordIndex,
    settings: Settings,
    highlight: bool = False,
) -> SearchPage:
    """One search as the page, the API and the feed run it (KeywordIndexUnavailable passes through:
    each answers it its own way). Keyword mode never asks for the model: loading it takes seconds."""
    return search_service.search(
        session,
        query,
        encoder=encoder() if query.uses_embeddings else None,
        keywords=keywords,
        highlight=highlight,
        ef_search=settings.search_ef_search,
    )
