"""Choose a subscriber's papers: trending blended with their interests, never a repeat (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Below this cosine similarity an interest phrase is not named as the reason for a paper.
MATCH_THRESHOLD = 0.30


@dataclass(frozen=True)
class Candidate:
    paper_id: str
    trend_score: float
    components: dict[str, Any]
    similarity: dict[str, float] = field(default_factory=dict)  # interest phrase -> cosine similarity


@dataclass(frozen=True)
class DigestEntry:
    paper_id: str
    score: float
    reason: str


def compose(
    candidates: list[Candidate], *, already_sent: set[str], interests: list[str], mix: float, limit: int
) -> list[DigestEntry]:
    """Rank unsent candidates by (1 - mix) * normalised trend + mix * best interest match."""
    fresh = [c for c in candidates if c.paper_id not in already_sent]
    if not fresh:
        return []
    top_trend = max(c.trend_score for c in fresh) or 1.0
    weight = mix if interests else 0.0
    scored = []
    for candidate in fresh:
        best_phrase, best_similarity = _best_match(candidate, interests)
        score = (1 - weight) * candidate.trend_score / top_trend + weight * max(best_similarity, 0.0)
        scored.append((score, candidate, best_phrase, best_similarity))
    scored.sort(key=lambda item: (-item[0], item[1].paper_id))
    return [
        DigestEntry(paper_id=c.paper_id, score=s, reason=reason(c, phrase, sim))
        for s, c, phrase, sim in scored[:limit]
    ]


def _best_match(candidate: Candidate, interests: list[str]) -> tuple[str | None, float]:
    best: tuple[str | None, float] = (None, 0.0)
    for phrase in interests:
        similarity = candidate.similarity.get(phrase, 0.0)
        if similarity > best[1]:
            best = (phrase, similarity)
    return best


def reason(candidate: Candidate, phrase: str | None, similarity: float) -> str:
    """One line a reader understands: `42 upvotes · 120 GitHub stars · matches 'speech synthesis'`."""
    parts = []
    counts = candidate.components
    if counts.get("upvotes"):
        parts.append(f"{int(counts['upvotes'])} upvotes")
    if counts.get("github_stars"):
        parts.append(f"{int(counts['github_stars'])} GitHub stars")
    if counts.get("comments"):
        parts.append(f"{int(counts['comments'])} comments")
    if phrase and similarity >= MATCH_THRESHOLD:
        parts.append(f"matches '{phrase}'")
    return " · ".join(parts) or "new this week"
