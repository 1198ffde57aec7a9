"""Choose a subscriber's papers: one section per interest profile, then a Trending section, never a
repeat (pure: the service computes how well each paper fits each profile, this module decides)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from papertide.templating import counted

TRENDING = "Trending"


@dataclass(frozen=True)
class PoolPaper:
    """A candidate: one of the period's trending papers, in trend order (`rank` 1 is the top)."""

    paper_id: str
    trend_score: float
    components: dict[str, Any]
    rank: int


@dataclass(frozen=True)
class ProfileFit:
    """How the papers of the pool fit one profile, aligned with the pool.

    `why[i]` is None when paper i does not belong in this profile, else the words that say why
    ("matches 'world models'", "in cs.CL", "like 'Attention Is All You Need'"); `relevance[i]` orders
    the papers that belong (higher is closer).
    """

    profile_id: int
    name: str
    relevance: Sequence[float]
    why: Sequence[str | None]


@dataclass(frozen=True)
class DigestEntry:
    paper_id: str
    score: float
    reason: str


@dataclass(frozen=True)
class Section:
    title: str
    profile_id: int | None  # None: the Trending section
    entries: list[DigestEntry]


def compose_sections(
    pool: Sequence[PoolPaper],
    fits: Sequence[ProfileFit],
    *,
    already_seen: set[str],
    mix: float,
    per_section: int,
    trending: int,
    period: str,
) -> list[Section]:
    """Each profile in order takes up to `per_section` of the papers that belong in it and are not
    in `already_seen` (had before, or voted on), ranked by (1 - mix) * trend + mix * relevance (both
    as percentiles of the pool); then the Trending section takes the `trending` top papers left. No
    paper appears twice; empty sections are left out, so an empty list means there is nothing new
    to send."""
    taken = set(already_seen)
    trend = _percentiles([p.trend_score for p in pool])
    sections = []
    for fit in fits:
        closeness = _percentiles(list(fit.relevance))
        ranked = sorted(
            (
                ((1 - mix) * trend[i] + mix * closeness[i], i)
                for i, paper in enumerate(pool)
                if fit.why[i] is not None and paper.paper_id not in taken
            ),
            key=lambda pair: (-pair[0], pool[pair[1]].paper_id),
        )[:per_section]
        entries = [
            DigestEntry(pool[i].paper_id, score, reason(pool[i], period=period, why=fit.why[i]))
            for score, i in ranked
        ]
        taken.update(e.paper_id for e in entries)
        if entries:
            sections.append(Section(fit.name, fit.profile_id, entries))
    top = [p for p in pool if p.paper_id not in taken][:trending]
    if top:
        entries = [DigestEntry(p.paper_id, p.trend_score, reason(p, period=period)) for p in top]
        sections.append(Section(TRENDING, None, entries))
    return sections


def _percentiles(values: list[float]) -> list[float]:
    """Each value's rank among all of them, 0 (lowest) to 1 (highest): trend scores and match scores
    live on different scales, and a rank puts them on one. Equal values keep their pool order (a
    stable sort), as sorted() did; numpy's sort takes a tenth of its time on a pool of 500."""
    size = len(values)
    if size < 2:
        return [1.0] * size
    ranks = np.empty(size, dtype=np.float64)
    ranks[np.argsort(np.asarray(values, dtype=np.float64), kind="stable")] = np.arange(size) / (size - 1)
    return list(ranks.tolist())


def reason(paper: PoolPaper, *, period: str, why: str | None = None) -> str:
    """One line a reader understands: `matches 'speech synthesis' · #3 this week · 42 upvotes`."""
    parts = [why] if why else []
    parts.append(f"#{paper.rank} {'today' if period == 'day' else 'this ' + period}")
    counts = paper.components
    for key, noun in (("upvotes", "upvote"), ("github_stars", "GitHub star"), ("comments", "comment")):
        if counts.get(key):
            parts.append(counted(counts[key], noun))
    return " · ".join(parts)
