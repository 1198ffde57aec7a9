"""Keyword, semantic and hybrid search with filters, sorts and pages; similar papers; feeding the index.

Keyword: BM25 from the keyword index (keyword_index.py). Semantic: nearest embeddings (pgvector
HNSW). Hybrid: a convex combination of the scores of the whole keyword list (every paper with any of the
words, BM25 order) and the semantic list, each as deep as the page needs. Each hit knows whether
its words matched, its meaning, or both.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from papertide.embeddings.encoder import Encoder
from papertide.papers import repository as paper_repository
from papertide.search import highlight as highlights
from papertide.search import query_syntax, repository
from papertide.search.keyword_index import KeywordHits, KeywordIndex, KeywordWriter
from papertide.search.query_syntax import UserQuery
from papertide.search.schemas import (
    MatchSource,
    SearchFilters,
    SearchHit,
    SearchMode,
    SearchPage,
    SearchQuery,
    SearchSort,
)

# Hybrid fusion: a convex combination of the two scores, each divided by its list's best (BM25 has
# a theoretical minimum of 0, cosine is taken from 0), half and half. Bruch et al. 2023 ("An
# analysis of fusion functions for hybrid retrieval", ACM TOIS) find it beats reciprocal rank
# fusion, which throws the scores away: a title that BM25 matches far better than anything else
# stays first. Half and half was the best weight on the 819 sample titles bench/search_quality.py
# does not ask (docs/search.md), and it is the neutral one.
KEYWORD_WEIGHT = 0.5
CANDIDATES = 100  # how deep each list goes before fusion, at least (deeper for later pages)
MEANING_DEPTH = 1000  # semantic results have no edge: the nearest 1,000 are its matches (pgvector's ef cap)
SORT_POOL = 200  # a sort by date or trend reorders the 200 nearest by meaning, not all 1,000
TREND_PERIOD = "week"
TREND_POOL = 5000  # the most trending papers a sort by trend looks among
AUTHOR_PAPERS = 50_000  # the most papers an author filter of a search by meaning ranks among

# Searches of the keyword index that can run beside other work: the keyword list of a hybrid search
# while the model embeds the query, the word matches of a semantic page while its rows load.
# tantivy, torch and psycopg all release the GIL, so on two cores they cost no wall time.
_BESIDE_THE_MODEL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="keyword-search")


class _QueryVectors:
    """The last few hundred query embeddings of each encoder in this process: page 2, the same
    search as a feed or through the API, a reload, all ask for a vector the model made a moment
    ago (10-20 ms on a CPU). Kept per encoder object, so another model never answers from here."""

    SIZE = 512

    def __init__(self) -> None:
        self._by_encoder: weakref.WeakKeyDictionary[Any, OrderedDict[str, Any]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def vector(self, encoder: Encoder, text: str) -> Any:
        with self._lock:
            try:
                vectors = self._by_encoder.setdefault(encoder, OrderedDict())
            except TypeError:  # an encoder that takes no weak reference is not cached
                vectors = None
            if vectors is not None and text in vectors:
                vectors.move_to_end(text)
                return vectors[text]
        vector = encoder.encode([text])[0]
        vector.setflags(write=False)  # shared by every later search for the same words
        if vectors is not None:
            with self._lock:
                vectors[text] = vector
                while len(vectors) > self.SIZE:
                    vectors.popitem(last=False)
        return vector


_QUERY_VECTORS = _QueryVectors()


@dataclass
class _Nearest:
    rows: list[tuple[str, float]]  # (paper id, similarity), nearest first, -words already taken out
    fetched: int  # how many the vector search returned before that: fewer than asked means no more


@dataclass
class _Ranked:
    ids: list[str]
    total: int
    estimate: bool
    keyword_ranks: dict[str, int]
    semantic: dict[str, tuple[int, float]]  # paper id -> (rank, similarity)
    scores: dict[str, float]
    word_matches: set[str] | None = None  # every listed paper the words match, when fusion learnt it


class _Clock:
    """Milliseconds per step; steps on two threads overlap, so their sum can exceed the total."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._lock = threading.Lock()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.timings[name] = self.timings.get(name, 0.0) + (time.perf_counter() - start) * 1000


def search(
    session: Session,
    query: SearchQuery,
    *,
    encoder: Encoder | None,
    keywords: KeywordIndex,
    highlight: bool = False,
    ef_search: int = 100,
) -> SearchPage:
    """One page of results for `query` in its mode, filtered and sorted, with the total found."""
    clock = _Clock()
    parsed = query_syntax.parse(query.q)
    meaning = query.uses_embeddings and encoder is not None and bool(parsed.text)
    words = query.mode != SearchMode.SEMANTIC or not meaning
    keyword_list = (
        _BESIDE_THE_MODEL.submit(_keyword_list, query, parsed, keywords, clock) if words and meaning else None
    )
    vector = None
    if meaning:
        assert encoder is not None
        with clock.step("embed"):
            vector = _QUERY_VECTORS.vector(encoder, parsed.text)
    search_meaning: Callable[[int], _Nearest] = lambda depth: _Nearest([], 0)  # noqa: E731
    if vector is not None:
        assert encoder is not None

        def search_meaning(depth: int) -> _Nearest:
            filters, among = _author_as_papers(query.filters, keywords, clock)
            with clock.step("vector"):
                rows = repository.nearest(
                    session,
                    vector=vector,
                    model=encoder.name,
                    limit=depth,
                    filters=filters,
                    among=among,
                    ef_search=ef_search,
                )
            return _Nearest(_without_excluded(rows, parsed, keywords, clock), len(rows))

    ranked = _rank(
        session,
        query,
        parsed,
        keywords,
        clock,
        words=words,
        search_meaning=search_meaning,
        meaning=vector is not None,
        keyword_list=keyword_list,
    )
    page_ids = ranked.ids[query.offset : query.offset + query.limit]
    # Semantic mode asks the index which hits the words match too while the rows load.
    word_matches = (
        _BESIDE_THE_MODEL.submit(_word_matches, page_ids, parsed, query.filters, keywords, clock)
        if ranked.word_matches is None and vector is not None
        else None
    )
    with clock.step("load"):
        papers = paper_repository.papers_by_ids(session, page_ids)
    also_words = word_matches.result() if word_matches else ranked.word_matches or set()
    hits = []
    for pid in page_ids:
        if pid not in papers:
            continue  # deleted since the index last heard of it
        rank, similarity = ranked.semantic.get(pid, (None, None))
        hit = SearchHit(
            paper=papers[pid],
            score=ranked.scores.get(pid, 0.0),
            keyword_rank=ranked.keyword_ranks.get(pid),
            semantic_rank=rank,
            similarity=similarity,
        )
        if pid in also_words and hit.keyword_rank is None:
            hit.source = MatchSource.BOTH if rank is not None else MatchSource.WORDS
        hits.append(hit)
    if highlight and parsed.words + tuple(w for p in parsed.phrases for w in p):
        with clock.step("highlight"):
            wanted = {
                t
                for word in (*parsed.words, *(w for p in parsed.phrases for w in p))
                for t in keywords.terms(word)
            }
            for hit in hits:
                hit.highlight = highlights.highlight(hit.paper.abstract, wanted=wanted, terms=keywords.terms)
    return SearchPage(
        query=query, hits=hits, total=ranked.total, total_is_estimate=ranked.estimate, timings=clock.timings
    )


def _rank(
    session: Session,
    query: SearchQuery,
    parsed: UserQuery,
    keywords: KeywordIndex,
    clock: _Clock,
    *,
    words: bool,
    meaning: bool,
    search_meaning: Callable[[int], _Nearest],
    keyword_list: Future[KeywordHits] | None = None,
) -> _Ranked:
    """Every id up to the end of the requested page, in the requested order.

    Every page slices one ordering: the lists fused or reordered are as deep on page 9 as on page 1,
    so paging neither repeats nor skips a paper and the count does not change from page to page."""
    sort = (
        query.sort if parsed.text or query.sort != SearchSort.RELEVANCE else SearchSort.NEWEST
    )  # an author alone
    if words and not meaning:
        return _keyword_only(session, query, parsed, keywords, clock, sort=sort)
    if query.mode == SearchMode.SEMANTIC:
        return _semantic_only(session, query, clock, sort=sort, search_meaning=search_meaning)
    return _hybrid(
        session,
        query,
        parsed,
        keywords,
        clock,
        sort=sort,
        search_meaning=search_meaning,
        keyword_list=keyword_list,
    )


def _semantic_only(
    session: Session,
    query: SearchQuery,
    clock: _Clock,
    *,
    sort: SearchSort,
    search_meaning: Callable[[int], _Nearest],
) -> _Ranked:
    """Meaning alone: the nearest papers by similarity (a list with no edge: the nearest
    MEANING_DEPTH are its matches), or the nearest SORT_POOL reordered by date or trend."""
    end = query.offset + query.limit
    relevance = sort == SearchSort.RELEVANCE
    # A deeper list only adds to the end of a shallower one, so the depth may follow the page.
    depth = min(MEANING_DEPTH, max(CANDIDATES, end)) if relevance else SORT_POOL
    near = search_meaning(depth)
    rows = near.rows
    if near.fetched < depth:
        total, estimate = len(rows), False  # a filter left fewer than the depth: that is all there is
    elif relevance:
        # The nearest MEANING_DEPTH count as matches; -words thin them as they thinned these.
        total, estimate = round(MEANING_DEPTH * len(rows) / near.fetched), True
    else:
        total, estimate = len(rows), True  # the pool a sort reorders, whatever lies beyond it
    order = [pid for pid, _ in rows]
    if sort == SearchSort.NEWEST:
        order = _newest_first(session, order, clock)
    elif sort == SearchSort.TRENDING:
        order = _trending_first(session, order, clock)
    semantic = {pid: (n, sim) for n, (pid, sim) in enumerate(rows, start=1)}
    return _Ranked(order[: max(end, 0)], total, estimate, {}, semantic, dict(rows))


def _hybrid(
    session: Session,
    query: SearchQuery,
    parsed: UserQuery,
    keywords: KeywordIndex,
    clock: _Clock,
    *,
    sort: SearchSort,
    search_meaning: Callable[[int], _Nearest],
    keyword_list: Future[KeywordHits] | None,
) -> _Ranked:
    """Words and meaning: every keyword match, plus the nearest CANDIDATES papers by meaning.

    By relevance: the fused head (the first CANDIDATES of each list, fused), then the keyword
    matches beyond it in BM25 order. Newest: all of them by date. Trending: those trending this
    week first, then the rest by relevance."""
    end = query.offset + query.limit
    rows = search_meaning(CANDIDATES).rows
    semantic = {pid: (n, sim) for n, (pid, sim) in enumerate(rows, start=1)}
    found = keyword_list.result() if keyword_list else _keyword_list(query, parsed, keywords, clock)
    also = _word_matches(list(semantic), parsed, query.filters, keywords, clock)
    keyword_ranks = {pid: n for n, (pid, _) in enumerate(found.hits, start=1)}
    # What the words match among the listed papers (the semantic list's too, beyond the keyword head).
    matched = set(keyword_ranks) | also
    meaning_only = [pid for pid in semantic if pid not in also]
    total = found.total + len(meaning_only)  # every keyword match, and what only the meaning found
    with clock.step("fuse"):
        scores = fuse(found.hits, rows)
        head = sorted(scores, key=lambda pid: (-scores[pid], pid))
    if sort == SearchSort.NEWEST:
        with clock.step("keyword"):
            newest = keywords.search(parsed, filters=query.filters, newest_first=True, limit=max(end, 1))
        matched |= {pid for pid, _ in newest.hits}
        # The first `end` of all of them by date are among the first `end` keyword matches by date
        # and the papers only the meaning found.
        order = _newest_first(session, [pid for pid, _ in newest.hits] + meaning_only, clock)
        return _Ranked(order[:end], total, True, keyword_ranks, semantic, scores, matched)
    first: list[str] = []
    if sort == SearchSort.TRENDING:
        trend = _trending_matches(session, parsed, query.filters, keywords, clock)
        matched |= set(trend.words)
        also_trending = trend.words | set(meaning_only)
        first = [pid for pid in trend.ids if pid in also_trending]
        taken = set(first)
        head = [pid for pid in head if pid not in taken]
    prefix = first + head
    order = prefix
    if end > len(prefix) and found.total > len(matched & set(prefix)):
        # Past the head: the keyword matches not yet listed, in BM25 order, straight from the index.
        rest_offset = max(0, query.offset - len(prefix))
        with clock.step("keyword"):
            rest = keywords.search(
                parsed,
                filters=query.filters,
                skip=sorted(matched | set(first)),
                offset=rest_offset,
                limit=end - len(prefix) - rest_offset,
            )
        matched |= {pid for pid, _ in rest.hits}
        order = prefix + [""] * rest_offset + [pid for pid, _ in rest.hits]
    return _Ranked(order[:end], total, True, keyword_ranks, semantic, scores, matched)


def _keyword_list(
    query: SearchQuery, parsed: UserQuery, keywords: KeywordIndex, clock: _Clock
) -> KeywordHits:
    """Hybrid's keyword head: the first CANDIDATES papers with any of the words, by BM25, and the total."""
    with clock.step("keyword"):
        return keywords.search(parsed, filters=query.filters, limit=CANDIDATES)


def _keyword_only(
    session: Session,
    query: SearchQuery,
    parsed: UserQuery,
    keywords: KeywordIndex,
    clock: _Clock,
    *,
    sort: SearchSort,
) -> _Ranked:
    """Keyword mode (or an author alone): the index ranks, pages and counts by itself."""
    filters = query.filters
    with clock.step("keyword"):
        if sort == SearchSort.TRENDING:
            trend = _trending_matches(session, parsed, filters, keywords, None)
            first = [pid for pid in trend.ids if pid in trend.words]
            rest_offset = max(0, query.offset - len(first))
            rest = keywords.search(parsed, filters=filters, skip=first, offset=rest_offset, limit=query.limit)
            order = first + [""] * rest_offset + [pid for pid, _ in rest.hits]
            ranks = {pid: n for n, pid in enumerate(order, start=1) if pid}
            return _Ranked(order, rest.total + len(first), False, ranks, {}, trend.scores)
        found = keywords.search(
            parsed,
            filters=filters,
            newest_first=sort == SearchSort.NEWEST,
            offset=query.offset,
            limit=query.limit,
        )
    # The index returned only this page: pad the ids before it so the caller's slice lands on it.
    order = [""] * query.offset + [pid for pid, _ in found.hits]
    ranks = {pid: query.offset + n for n, (pid, _) in enumerate(found.hits, start=1)}
    return _Ranked(order, found.total, False, ranks, {}, dict(found.hits))


@dataclass
class _Trending:
    ids: list[str]  # this week's most trending papers (up to TREND_POOL), most trending first
    scores: dict[str, float]  # their trend scores
    words: set[str]  # those of them the words and the filters match


def _trending_matches(
    session: Session, parsed: UserQuery, filters: SearchFilters, keywords: KeywordIndex, clock: _Clock | None
) -> _Trending:
    """This week's trending papers, and which of them the query matches (a sort by trend puts those first)."""
    with clock.step("sort") if clock else nullcontext():
        trend = repository.trend_scores(session, period=TREND_PERIOD, limit=TREND_POOL)
    ids = [pid for pid, _ in trend]
    with clock.step("keyword") if clock else nullcontext():
        hits = keywords.search(parsed, filters=filters, only=ids, limit=max(1, len(ids)))
    return _Trending(ids, dict(trend), {pid for pid, _ in hits.hits})


def _newest_first(session: Session, ids: list[str], clock: _Clock) -> list[str]:
    with clock.step("sort"):
        when = repository.published_times(session, ids)
    floor = datetime.min.replace(tzinfo=UTC)
    return sorted(ids, key=lambda pid: (when.get(pid) or floor, pid), reverse=True)


def _trending_first(session: Session, ids: list[str], clock: _Clock) -> list[str]:
    """Those trending this week, most trending first; then the rest in their relevance order."""
    with clock.step("sort"):
        trend = dict(repository.trend_scores(session, period=TREND_PERIOD, limit=TREND_POOL))
    trending = sorted((pid for pid in ids if pid in trend), key=lambda pid: -trend[pid])
    return trending + [pid for pid in ids if pid not in trend]


def _word_matches(
    ids: Sequence[str], parsed: UserQuery, filters: SearchFilters, keywords: KeywordIndex, clock: _Clock
) -> set[str]:
    """Which of these papers the words match too (a semantic hit can be a keyword match beyond the list)."""
    ids = [pid for pid in ids if pid]
    if not ids or parsed.empty:
        return set()
    with clock.step("keyword"):
        return {pid for pid, _ in keywords.search(parsed, filters=filters, only=ids, limit=len(ids)).hits}


def _author_as_papers(
    filters: SearchFilters, keywords: KeywordIndex, clock: _Clock
) -> tuple[SearchFilters, list[str] | None]:
    """An author filter as the papers the keyword index finds for the name: one rule for every mode
    (its name analyzer: accents folded, "O'Brien" and "Jean-Pierre" split as in the index)."""
    if not filters.author:
        return filters, None
    with clock.step("keyword"):
        papers = keywords.search(
            UserQuery(), filters=SearchFilters(author=filters.author), limit=AUTHOR_PAPERS
        )
    return filters.model_copy(update={"author": None}), [pid for pid, _ in papers.hits]


def _without_excluded(
    rows: list[tuple[str, float]], parsed: UserQuery, keywords: KeywordIndex, clock: _Clock
) -> list[tuple[str, float]]:
    """-word and -"a phrase" hold for meaning too: drop the papers that contain them."""
    if not parsed.excluded or not rows:
        return rows
    ids = [pid for pid, _ in rows]
    out: set[str] = set()
    with clock.step("keyword"):
        for words in parsed.excluded:
            asked = UserQuery(words=words) if len(words) == 1 else UserQuery(phrases=(words,))
            out |= {
                pid
                for pid, _ in keywords.search(asked, filters=SearchFilters(), only=ids, limit=len(ids)).hits
            }
    return [row for row in rows if row[0] not in out]


def fuse(keyword: list[tuple[str, float]], semantic: list[tuple[str, float]]) -> dict[str, float]:
    """Each paper's fused score in [0, 1]: KEYWORD_WEIGHT x its BM25 / the best BM25, plus the rest x
    its similarity / the best similarity. A paper missing from one list (beyond its depth, or not
    embedded yet) gets that list's lowest score: it ranked below everything the list holds."""
    bm25, similarity = dict(keyword), {pid: max(sim, 0.0) for pid, sim in semantic}
    best_bm25 = max(bm25.values(), default=0.0) or 1.0
    best_similarity = max(similarity.values(), default=0.0) or 1.0
    floor_bm25, floor_similarity = min(bm25.values(), default=0.0), min(similarity.values(), default=0.0)
    return {
        pid: KEYWORD_WEIGHT * bm25.get(pid, floor_bm25) / best_bm25
        + (1 - KEYWORD_WEIGHT) * similarity.get(pid, floor_similarity) / best_similarity
        for pid in bm25.keys() | similarity.keys()
    }


# --- similar papers ------------------------------------------------------------------------------


def similar(session: Session, paper_id: str, *, model: str, limit: int = 10) -> list[SearchHit]:
    """The nearest papers to one paper's embedding; empty until the paper is embedded."""
    vector = repository.embedding_of(session, paper_id, model=model)
    if vector is None:
        return []
    rows = repository.nearest(session, vector=vector, model=model, limit=limit, exclude=paper_id)
    papers = paper_repository.papers_by_ids(session, [pid for pid, _ in rows])
    return [SearchHit(paper=papers[pid], score=sim, similarity=sim) for pid, sim in rows if pid in papers]


MAX_PASSAGE_LENGTH = 5000
PASSAGE_RULE = f"an abstract or a passage of 1 to {MAX_PASSAGE_LENGTH:,} characters, with a letter or a digit"


def passage_problem(text: str) -> str | None:
    """Why `text` cannot be searched for papers like it; None when it can. Spaces, punctuation or
    zero-width characters alone would be embedded all the same, into a ranking that means nothing."""
    if len(text) > MAX_PASSAGE_LENGTH:
        return f"the passage has {len(text):,} characters, more than {MAX_PASSAGE_LENGTH:,}"
    if not any(char.isalnum() for char in text):
        return "the passage has no letter or digit"
    return None


def more_like_this(session: Session, text: str, *, encoder: Encoder, limit: int = 20) -> list[SearchHit]:
    """Papers nearest to a pasted abstract (or any passage, passage_problem() None), by embedding."""
    vector = encoder.encode([" ".join(text.split())])[0]
    rows = repository.nearest(session, vector=vector, model=encoder.name, limit=limit)
    papers = paper_repository.papers_by_ids(session, [pid for pid, _ in rows])
    return [SearchHit(paper=papers[pid], score=sim, similarity=sim) for pid, sim in rows if pid in papers]


# --- feeding the keyword index -----------------------------------------------------------------


def index_pending(
    session: Session, writer: KeywordWriter, *, limit: int, filling: set[str] | None = None
) -> int:
    """Write up to `limit` queued papers to the index, taking them off the queue in `session`.

    The caller commits the index first, then the session: a kill between the two leaves them
    queued, and the next pass indexes them again (replacing a document with itself changes nothing).

    `filling`: the pass began on an empty index, and these are the papers it has added so far. A
    paper not among them cannot be in the index, so it is added without the delete that a replace
    costs (a third of the time at a million papers); a paper queued again meanwhile is replaced."""
    batch = repository.claim_pending(session, limit=limit)
    if filling is None:
        writer.replace(batch.docs)
    else:
        writer.add(doc for doc in batch.docs if doc.paper_id not in filling)
        writer.replace(doc for doc in batch.docs if doc.paper_id in filling)
        filling.update(doc.paper_id for doc in batch.docs)
    writer.remove(batch.gone)
    return len(batch.docs) + len(batch.gone)


def pending_count(session: Session) -> int:
    return repository.pending_count(session)


def queue_everything(session: Session) -> int:
    return repository.queue_everything(session)


def pending_snapshot(session: Session) -> list[tuple[str, datetime]]:
    """What is queued now, in the snapshot the rest of this transaction (a rebuild) reads from."""
    return repository.pending_in_snapshot(session)


def rebuild(
    session: Session, writer: KeywordWriter, *, batch_size: int, progress: Callable[[int], None]
) -> int:
    """Empty the index and add every paper again; searches see none of it until the caller commits."""
    writer.clear()
    done = 0
    for docs in repository.every_paper(session, batch_size=batch_size):
        writer.add(docs)
        done += len(docs)
        progress(len(docs))
    return done


def paper_count(session: Session) -> int:
    return repository.paper_count(session)


def forget_pending(session: Session, queued: list[tuple[str, datetime]]) -> int:
    """Take off the queue what a finished rebuild read; a paper queued again since then stays."""
    return repository.forget_pending(session, queued)
