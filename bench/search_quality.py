"""Search quality, measured: a known-item test on the bundled sample, keyword vs semantic vs hybrid,
beside BM25 from a reference library (rank-bm25) in the same run.

    .venv/bin/python bench/search_quality.py [--queries 400]

Every sample paper is indexed by its abstract alone (no title: not in the keyword index, not in
the embedding). Each query is one paper's title; the right answer is that paper. Prints recall@1,
recall@10 and MRR (mean reciprocal rank, 0 when the paper is not in the top 10) for each mode.
The reference BM25 (k1 1.5, b 0.75, rank-bm25's defaults) runs twice: on lowercase words, and on
the same terms papertide's index makes (stemmed, English stop words out).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from ingest import fresh_database  # noqa: E402  (bench/ingest.py: a migrated database on pgserver)


def build_index(encoder) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Load the sample with empty titles; embed abstracts only. Returns (paper_id, real title)."""
    from papertide.db import unit_of_work
    from papertide.embeddings import repository as embedding_repository
    from papertide.ingest.sources import sample
    from papertide.models import Paper
    from papertide.papers.schemas import text_hash

    records = {r.id: r for r in sample.parse_sample().records}
    with unit_of_work() as session:
        for r in records.values():
            session.add(
                Paper(
                    id=r.id,
                    title="",
                    abstract=r.abstract,
                    source="bench",
                    text_hash=text_hash("", r.abstract),
                )
            )
        session.flush()
        papers = list(session.query(Paper).order_by(Paper.id))
        start = time.perf_counter()
        vectors = encoder.encode([p.abstract for p in papers])
        print(f"embedded {len(papers)} abstracts in {time.perf_counter() - start:.1f}s", flush=True)
        embedding_repository.write_embeddings(session, papers, vectors, model=encoder.name)
    from papertide.worker import jobs

    jobs.index_keywords()
    return [(pid, r.title) for pid, r in records.items()]


def reference_bm25(tokenize):  # type: ignore[no-untyped-def]
    """rank-bm25 over every abstract with `tokenize`: a search function like papertide's modes."""
    from rank_bm25 import BM25Okapi

    from papertide.db import unit_of_work
    from papertide.models import Paper

    with unit_of_work() as session:
        rows = [(p.id, p.abstract) for p in session.query(Paper).order_by(Paper.id)]
    bm25 = BM25Okapi([tokenize(abstract) or ["∅"] for _, abstract in rows])
    ids = [pid for pid, _ in rows]

    def search(_session, q):  # type: ignore[no-untyped-def]
        scores = bm25.get_scores(tokenize(q))
        return [ids[i] for i in sorted(range(len(ids)), key=lambda i: -scores[i])[:10]]

    return search


def evaluate(pairs: list[tuple[str, str]], encoder) -> None:  # type: ignore[no-untyped-def]
    import re

    from papertide.config import get_settings
    from papertide.db import unit_of_work
    from papertide.search import keyword_index, service
    from papertide.search.schemas import SearchMode, SearchQuery

    index = keyword_index.shared(get_settings())

    def run(mode: SearchMode):  # type: ignore[no-untyped-def]
        return lambda session, q: [
            h.paper.id
            for h in service.search(
                session, SearchQuery(q=q, mode=mode, limit=10), encoder=encoder, keywords=index
            ).hits
        ]

    words = reference_bm25(lambda text: re.findall(r"\w+", text.lower()))
    terms = reference_bm25(index.terms)
    modes = [("rank-bm25, lowercase words", words), ("rank-bm25, papertide's terms", terms)]
    modes += [(m.value, run(m)) for m in SearchMode]
    modes += [(f"hybrid, {label}", fused) for label, fused in fusions(index, encoder)]
    print(f"{'mode':<30}{'recall@1':>10}{'recall@10':>11}{'MRR':>8}{'queries':>9}")
    for label, search in modes:
        hits1 = hits10 = 0
        reciprocal = 0.0
        with unit_of_work() as session:
            for paper_id, title in pairs:
                ranked = search(session, title[:300])
                if paper_id in ranked:
                    rank = ranked.index(paper_id) + 1
                    hits1 += rank == 1
                    hits10 += 1
                    reciprocal += 1 / rank
        n = len(pairs)
        print(f"{label:<30}{hits1 / n:>10.3f}{hits10 / n:>11.3f}{reciprocal / n:>8.3f}{n:>9}", flush=True)


def fusions(index, encoder):  # type: ignore[no-untyped-def]
    """Other ways to fuse the same two lists (100 deep each): reciprocal rank fusion, the fusion
    before issue 10, and the convex combination at other keyword weights than search's 0.5."""
    from papertide.config import get_settings
    from papertide.search import query_syntax, repository
    from papertide.search.schemas import SearchFilters

    def lists(session, q):  # type: ignore[no-untyped-def]
        parsed = query_syntax.parse(q)
        keyword = index.search(parsed, filters=SearchFilters(), limit=100).hits
        vector = encoder.encode([parsed.text])[0]
        ef = get_settings().search_ef_search
        return keyword, repository.nearest(
            session, vector=vector, model=encoder.name, limit=100, ef_search=ef
        )

    def rrf(session, q):  # type: ignore[no-untyped-def]
        scores: dict[str, float] = {}
        for ranking in lists(session, q):
            for position, (pid, _) in enumerate(ranking, start=1):
                scores[pid] = scores.get(pid, 0.0) + 1 / (60 + position)
        return sorted(scores, key=lambda pid: -scores[pid])[:10]

    def convex(weight):  # type: ignore[no-untyped-def]
        def search(session, q):  # type: ignore[no-untyped-def]
            keyword, semantic = lists(session, q)
            bm25, cosine = dict(keyword), {pid: max(sim, 0.0) for pid, sim in semantic}
            top_b, top_c = max(bm25.values(), default=1.0) or 1.0, max(cosine.values(), default=1.0) or 1.0
            low_b, low_c = min(bm25.values(), default=0.0), min(cosine.values(), default=0.0)
            score = {
                pid: weight * bm25.get(pid, low_b) / top_b + (1 - weight) * cosine.get(pid, low_c) / top_c
                for pid in bm25.keys() | cosine.keys()
            }
            return sorted(score, key=lambda pid: -score[pid])[:10]

        return search

    return [("RRF k 60", rrf)] + [(f"convex, keyword {w}", convex(w)) for w in (0.3, 0.7)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=400, help="titles to ask (a seeded random sample)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh_database(Path(tmp), "bench_search")
        os.environ.setdefault("PAPERTIDE_SECRET_KEY", "bench")
        from papertide.embeddings.encoder import get_encoder

        encoder = get_encoder()
        pairs = build_index(encoder)
        evaluate(random.Random(0).sample(pairs, min(args.queries, len(pairs))), encoder)


if __name__ == "__main__":
    main()
