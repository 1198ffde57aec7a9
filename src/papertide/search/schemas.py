"""Search input and output."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator

from papertide.models import Paper

MAX_QUERY_LENGTH = 300


class SearchMode(StrEnum):
    HYBRID = "hybrid"
    KEYWORD = "keyword"
    SEMANTIC = "semantic"


class SearchQuery(BaseModel):
    q: str = Field(min_length=1, max_length=MAX_QUERY_LENGTH)
    mode: SearchMode = SearchMode.HYBRID
    limit: int = Field(default=20, ge=1, le=100)

    @field_validator("q")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("the query is empty")
        return value

    @property
    def uses_embeddings(self) -> bool:
        """Semantic and hybrid modes encode the query; keyword mode never touches the model."""
        return self.mode != SearchMode.KEYWORD


@dataclass
class SearchHit:
    paper: Paper
    score: float
    keyword_rank: int | None = None
    semantic_rank: int | None = None
    similarity: float | None = None
    highlight: str | None = None  # HTML: the abstract escaped, matches wrapped in <mark>
