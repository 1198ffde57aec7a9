"""PaperIn: the record every source yields (pages and the API read the ORM rows directly)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from papertide.templating import plain_text, safe_url, shortened

SIGNAL_KINDS = ("upvotes", "github_stars", "comments", "views", "clicks")


def text_hash(title: str, abstract: str) -> str:
    """The hash of the text we embed: a changed title or abstract means a new embedding."""
    return hashlib.sha256(f"{title}\n{abstract}".encode()).hexdigest()


# Longer than any real paper's (arXiv caps an abstract at 1,920 characters; the longest titles and
# names run to a few hundred, the longest author lists to about 5,200 names). A record over them
# comes from a broken or hostile source: it is refused by name, not stored and mailed to everyone;
# only a name too long is cut (one author's text must not keep a paper out).
MAX_TITLE = 1_000
MAX_ABSTRACT = 20_000
MAX_AUTHOR = 300
MAX_AUTHORS = 10_000


class SignalIn(BaseModel):
    """One engagement count as a source saw it at `observed_at`."""

    kind: str
    value: float = Field(ge=0)
    observed_at: datetime

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in SIGNAL_KINDS:
            raise ValueError(f"unknown signal kind {value!r}; expected one of {', '.join(SIGNAL_KINDS)}")
        return value

    @field_validator("observed_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("observed_at must carry a time zone")
        return value


class PaperIn(BaseModel):
    """The validated record every source yields and the one upsert path writes."""

    model_config = ConfigDict(str_strip_whitespace=True)

    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    abstract: str = Field(min_length=1)
    authors: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    published_at: datetime | None = None
    updated_at: datetime | None = None
    announced_at: datetime | None = None
    announce_type: str | None = None
    version: int | None = None
    abs_url: str | None = None
    pdf_url: str | None = None
    code_url: str | None = None
    project_url: str | None = None
    signals: list[SignalIn] = Field(default_factory=list)

    @field_validator("title", "abstract")
    @classmethod
    def _single_spaced(cls, value: str, info: ValidationInfo) -> str:
        text = plain_text(value)
        if not text:
            raise ValueError(f"{info.field_name} has no visible characters")
        limit = MAX_TITLE if info.field_name == "title" else MAX_ABSTRACT
        if len(text) > limit:
            raise ValueError(f"{info.field_name} is {len(text):,} characters long, more than {limit:,}")
        return text

    @field_validator("authors")
    @classmethod
    def _author_names(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_AUTHORS:
            raise ValueError(f"{len(value):,} authors, more than {MAX_AUTHORS:,}")
        # A name longer than any real one (an HF user can type anything) is cut, not the paper refused.
        names = [name for raw in value if (name := plain_text(raw))]
        return [shortened(name, MAX_AUTHOR) if len(name) > MAX_AUTHOR else name for name in names]

    @field_validator("abs_url", "pdf_url", "code_url", "project_url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        """A link that is not http(s) (`javascript:...` from an editable source) is dropped, the paper kept."""
        return safe_url(value)

    @field_validator("published_at", "updated_at", "announced_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("dates must carry a time zone")
        return value

    @property
    def text_hash(self) -> str:
        return text_hash(self.title, self.abstract)

    def row(self, source: str) -> dict[str, Any]:
        """The paper table's columns for this record."""
        data = self.model_dump(exclude={"signals"})
        return {**data, "source": source, "text_hash": self.text_hash}
