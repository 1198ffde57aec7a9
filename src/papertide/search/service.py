"""Keyword, semantic and hybrid search, and similar papers."""

from __future__ import annotations

import re

from markupsafe import escape
from sqlalchemy.orm import Session

from papertide.embeddings.encoder import Encoder
from papertide.papers import repository as paper_repository
from papertide.search import repository
from papertide.search.schemas import SearchHit, SearchMode, SearchQuery

RRF_K = 60  # the constant from Cormack et al. 2009, "Reciprocal Rank Fusion outperforms Condorcet..."
CANDIDATES = 50  # how deep each list goes before fusion


def search(session: Session, query: SearchQuery, *, encoder: Encoder | None) -> list[SearchHit]:
    """Run the query in its mode; hybrid fuses keyword and semantic ranks (RRF)."""
    depth = max(CANDIDATES, query.limit)
    keyword_rows = (
        repository.keyword(session, query=query.q, limit=depth) if query.mode != SearchMode.SEMANTIC else []
    )
    semantic_rows: list[tuple[str, float]] = []
    if query.mode != SearchMode.KEYWORD and encoder is not None:
        vector = encoder.encode([query.q])[0]
        semantic_rows = repository.nearest(session, vector=vector, model=encoder.name, limit=depth)
    ranked: list[tuple[str, float]]
    if query.mode == SearchMode.KEYWORD:
        # The repository's order: every-word matches by rank, then any-word matches by rank.
        ranked = [(row.paper_id, row.rank) for row in keyword_rows]
    elif query.mode == SearchMode.SEMANTIC:
        ranked = semantic_rows
    else:
        # Only every-word matches join the fusion: the any-word fallback helps keyword mode alone,
        # but fused with semantic results it pushes weak matches up.
        fused = _fuse(
            [row.paper_id for row in keyword_rows if row.all_words], [pid for pid, _ in semantic_rows]
        )
        ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
    ranked = ranked[: query.limit]
    papers = paper_repository.papers_by_ids(session, [pid for pid, _ in ranked])
    keyword_pos = {row.paper_id: i + 1 for i, row in enumerate(keyword_rows)}
    headlines = {row.paper_id: highlight(row.headline) for row in keyword_rows}
    semantic_pos = {pid: i + 1 for i, (pid, _) in enumerate(semantic_rows)}
    similarity = dict(semantic_rows)
    return [
        SearchHit(
            paper=papers[pid],
            score=score,
            keyword_rank=keyword_pos.get(pid),
            semantic_rank=semantic_pos.get(pid),
            similarity=similarity.get(pid),
            highlight=headlines.get(pid),
        )
        for pid, score in ranked
        if pid in papers
    ]


def _fuse(*rankings: list[str]) -> dict[str, float]:
    scores: dict[str, float] = {}
    for ranking in rankings:
        for position, paper_id in enumerate(ranking, start=1):
            scores[paper_id] = scores.get(paper_id, 0.0) + 1.0 / (RRF_K + position)
    return scores


def highlight(headline: str) -> str:
    """Escape the headline, then turn the match sentinels into <mark> tags, always balanced.

    The repository strips sentinels from the abstract, so they only come from ts_headline; a stray
    one is still dropped rather than trusted, so no input can leave a `<mark>` open on the page.
    """
    parts: list[str] = []
    open_mark = False
    for piece in re.split(f"([{repository.MARK_START}{repository.MARK_END}])", headline):
        if piece in (repository.MARK_START, repository.MARK_END):
            opens = piece == repository.MARK_START
            if opens != open_mark:
                parts.append("<mark>" if opens else "</mark>")
                open_mark = opens
        else:
            parts.append(str(escape(piece)))
    return "".join(parts) + ("</mark>" if open_mark else "")


def similar(session: Session, paper_id: str, *, model: str, limit: int = 10) -> list[SearchHit]:
    """The nearest papers to one paper's embedding; empty until the paper is embedded."""
    vector = repository.embedding_of(session, paper_id, model=model)
    if vector is None:
        return []
    rows = repository.nearest(session, vector=vector, model=model, limit=limit, exclude=paper_id)
    papers = paper_repository.papers_by_ids(session, [pid for pid, _ in rows])
    return [SearchHit(paper=papers[pid], score=sim, similarity=sim) for pid, sim in rows if pid in papers]


def more_like_this(session: Session, text: str, *, encoder: Encoder, limit: int = 20) -> list[SearchHit]:
    """Papers nearest to a pasted abstract (or any passage), by embedding."""
    vector = encoder.encode([" ".join(text.split())])[0]
    rows = repository.nearest(session, vector=vector, model=encoder.name, limit=limit)
    papers = paper_repository.papers_by_ids(session, [pid for pid, _ in rows])
    return [SearchHit(paper=papers[pid], score=sim, similarity=sim) for pid, sim in rows if pid in papers]
