"""Search at scale: an N-paper corpus built and indexed the product's way, searched through the HTTP API.

    .venv/bin/python bench/search_scale.py [--papers 1000000] [--queries 200] [--keep DIR] [--quick]

1. Corpus. N papers in the Kaggle snapshot's format, made from the real text in this repository
   (the bundled Hugging Face sample and the first 200 snapshot lines in tests/fixtures: ~1,400
   papers): each takes 40-90% of one real abstract's sentences and 1-3 of a topically near one's
   (or, one time in four, any other's), a title spliced from the two real titles, the first one's
   authors and categories, and a new arXiv id whose month spreads the corpus over 2007-2026.
   Loaded by papertide's bulk path (load_snapshot: parser processes, COPY + merge), then the
   keyword index is built as the worker builds it (jobs.index_keywords).
2. Vectors. The real model embeds every real sentence, title and paper once (about 700k tokens:
   minutes on a CPU; cached in the user's cache folder, keyed by the text and the model). A
   synthetic encoder stands in for the GPU worker: a paper's vector is the sum of its sentences'
   real embeddings (each with half its paper's title vector), plus noise made of the real papers'
   own residuals (real embedding minus that reconstruction), scaled so that the corpus grows as
   dense as real papers do: its median nearest-neighbour cosine at 1,380, 10,000 and 50,000 papers
   against the real papers' own curve (measured on subsets of them, extrapolated with its fitted
   intrinsic dimension; the printed spread check). So vectors lie where real ones lie, between
   them, not in near-duplicate clusters around the ~1,400 real papers. They
   go through the worker's own path (jobs.embed: claim, encode, write, and the HNSW index as the
   product builds it); a thread watches pg_stat_progress_create_index to time the HNSW build.
3. Latency. `papertide serve` in a subprocess on the built database; one HTTP client asks
   /api/v1/search the same queries in each mode (after a warm-up): titles, 2-4 word phrases and
   questions, drawn with a seeded RNG from the corpus text. p50/p95/p99 per mode and per kind of
   query, and per step from the API's Server-Timing header (embed, keyword, vector, fuse, load...).
4. Recall. HNSW recall@10 against an exact scan (indexes off) for 100 query embeddings, per
   hnsw.ef_search, and through the product's own nearest() as search calls it.

--keep DIR keeps the corpus (database, keyword index) in DIR: a rerun with the
same --papers measures again without rebuilding. Progress goes to stderr; tables to stdout, in
markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from ingest import fresh_database  # noqa: E402  (bench/ingest.py: a migrated database on pgserver)

SAMPLE = ROOT / "src/papertide/data/hf_daily_papers.json.gz"
SNAPSHOT = ROOT / "tests/fixtures/kaggle_arxiv_snapshot/arxiv-metadata-oai-snapshot.first200.jsonl"
DATABASE = "bench_search_scale"
STATE = "search_scale.json"  # in --keep DIR: what was built, and how long each step took
EF_SEARCH = (10, 20, 40, 64, 100, 200, 300, 400, 500, 600, 800)
# Issue 10's targets, on a 2-core machine at 1M papers.
TARGET_P95_MS = {"keyword": 30.0, "semantic": 30.0, "hybrid": 50.0}
TARGET_RECALL = 0.95
TARGET_HNSW_S = 600.0
FIRST_MONTH = (2007, 4)  # the snapshot's first new-style ids
LAST_MONTH = (2026, 11)
# The sample's papers carry no categories: theirs are drawn from the Daily Papers' usual mix.
ML_CATEGORIES = ("cs.CL", "cs.LG", "cs.CV", "cs.AI", "cs.RO", "stat.ML", "cs.IR")
# Phrases neither start nor end with one of these.
_STOP = (
    "a an and are as at be by can do does for from has have how in into is it its of on or "
    "our that the their these they this to using via we what when which while with without but not also "
    "however such than both more most only each other"
)
STOPWORDS = frozenset(_STOP.split())
QUESTIONS = (
    "how can {} be improved",
    "what is {}",
    "how does {} work",
    "what are the limits of {}",
    "which methods are used for {}",
    "how to evaluate {}",
)
NEIGHBOURS = 10
# A sentence ends at . ! or ? before a space and a capital (on whitespace-collapsed text). Written to
# start with the space, which the regex engine scans for fast: it splits a million abstracts.
_SENTENCE_END = re.compile(r" (?=[A-Z])(?<=[.!?] )")
_WORD = re.compile(r"[A-Za-z][A-Za-z-]*[A-Za-z]")


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- the real text ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RealPaper:
    title: str
    sentences: tuple[str, ...]
    authors: tuple[str, ...]
    categories: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


@dataclass
class Material:
    """The real papers, and every kept sentence with the paper it came from."""

    papers: list[RealPaper]
    sentences: list[str] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)
    sentence_id: dict[str, int] = field(default_factory=dict)
    # Each real paper's nearest real papers by embedding (set by with_neighbours): a synthetic
    # paper mixes its main paper with one of them, so papers fill the space between real ones.
    neighbours: list[list[int]] = field(default_factory=list)

    def with_neighbours(self, vectors: Any, k: int = NEIGHBOURS) -> Material:
        import numpy as np

        sims = vectors @ vectors.T
        np.fill_diagonal(sims, -1.0)
        self.neighbours = np.argsort(-sims, axis=1)[:, :k].tolist()
        return self

    def __post_init__(self) -> None:
        for index, paper in enumerate(self.papers):
            for sentence in paper.sentences:
                if sentence not in self.sentence_id:
                    self.sentence_id[sentence] = len(self.sentences)
                    self.sentences.append(sentence)
                    self.parent.append(index)


def split_sentences(abstract: str) -> tuple[str, ...]:
    """Sentences that split back exactly when joined with a space (each ends in . ! ? and starts uppercase)."""
    pieces = _SENTENCE_END.split(" ".join(abstract.split()))
    return tuple(s for s in pieces if len(s.split()) >= 4 and s[0].isupper() and s[-1] in ".!?")


def real_material() -> Material:
    """The bundled sample's papers and the snapshot fixture's, parsed by papertide's own parsers."""
    from papertide.ingest.sources import kaggle, sample
    from papertide.papers.schemas import PaperIn

    records = list(sample.parse_sample(SAMPLE).records)
    lines = SNAPSHOT.read_text().splitlines()
    records += [r for r in kaggle.iter_records(lines, location=SNAPSHOT.name) if isinstance(r, PaperIn)]
    papers = []
    for record in records:
        sentences = split_sentences(record.abstract)
        title = " ".join(record.title.replace(". ", " ").split())
        if len(sentences) >= 3 and len(title.split()) >= 3:
            papers.append(RealPaper(title, sentences, tuple(record.authors), tuple(record.categories)))
    return Material(papers)


# --- the corpus ---------------------------------------------------------------------------------


def _months() -> list[tuple[int, int]]:
    (y, m), months = FIRST_MONTH, []
    while (y, m) <= LAST_MONTH:
        months.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


MONTHS = _months()


def paper_id(i: int, n: int) -> tuple[str, tuple[int, int]]:
    """A new-style arXiv id; papers spread evenly over the months, numbered within their month."""
    month = i * len(MONTHS) // n
    first = -(-month * n // len(MONTHS))  # the first paper of this month
    year, number = MONTHS[month]
    return f"{year % 100:02d}{number:02d}.{i - first + 1:05d}", (year, number)


def _splice(first: str, second: str, rng: random.Random) -> str:
    """The head of one real title and the tail of another (at a colon when the first has one)."""
    a, b = first.split(), second.split(": ", 1)[-1].split()
    if ": " in first:
        head = [first.split(": ", 1)[0] + ":"]
        cut = rng.randint(0, len(b) // 3)
    else:
        head = a[: max(2, rng.randint(len(a) // 3, max(len(a) // 3, 2 * len(a) // 3)))]
        cut = rng.randint(1, max(1, len(b) // 2))
    while cut < len(b) - 2 and b[cut].lower() in STOPWORDS:
        cut += 1  # the tail starts with a word that carries meaning
    return " ".join(head + b[cut:])


def synthetic_paper(
    i: int, n: int, material: Material, seed: int, *, main_index: int | None = None
) -> dict[str, Any]:
    """Paper i of n as a snapshot record; the same (i, n, seed) always gives the same paper.

    Its main real paper gives 40-90% of its sentences (in their order), a topical neighbour of it
    (or, one time in four, any paper) one to three more, inserted anywhere.
    """
    rng = random.Random(f"{seed}:{i}")
    papers = material.papers
    main_index = rng.randrange(len(papers)) if main_index is None else main_index
    near = material.neighbours[main_index] if material.neighbours and rng.random() < 0.75 else None
    main = papers[main_index]
    other = papers[rng.choice(near)] if near else papers[rng.randrange(len(papers))]
    share = rng.uniform(0.4, 0.9)
    kept = sorted(rng.sample(range(len(main.sentences)), max(2, round(len(main.sentences) * share))))
    sentences = [main.sentences[k] for k in kept]
    for sentence in rng.sample(other.sentences, min(len(other.sentences), rng.randint(1, 3))):
        sentences.insert(rng.randint(1, len(sentences)), sentence)
    identifier, (year, month) = paper_id(i, n)
    created = datetime(year, month, rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59), tzinfo=UTC)
    authors = list(main.authors[:8]) or ["A. Author"]
    rng.shuffle(authors)
    categories = main.categories or (rng.choice(ML_CATEGORIES), rng.choice(ML_CATEGORIES))
    return {
        "id": identifier,
        "title": _splice(main.title, other.title, rng),
        "authors": ", ".join(a.replace(",", " ") for a in authors),
        "abstract": " ".join(sentences),
        "categories": " ".join(dict.fromkeys(categories)),
        "versions": [{"version": "v1", "created": created.strftime("%a, %-d %b %Y %H:%M:%S GMT")}],
        "update_date": created.date().isoformat(),
    }


def write_snapshot(path: Path, n: int, material: Material, seed: int) -> int:
    with path.open("w") as out:
        for i in range(n):
            out.write(json.dumps(synthetic_paper(i, n, material, seed)) + "\n")
            if (i + 1) % 100_000 == 0:
                log(f"  generated {i + 1:,} of {n:,} papers")
    return n


# --- the vectors --------------------------------------------------------------------------------


@dataclass
class RealVectors:
    """The real model's embeddings of the material: sentences, titles, and whole papers."""

    model: str
    sentences: Any  # float32 (sentences, dim), unit length
    titles: Any  # float32 (papers, dim)
    papers: Any  # float32 (papers, dim): paper_text(title, abstract), as the worker embeds a paper


def real_vectors(material: Material, encoder: Any) -> RealVectors:
    """Embed the material with the real model, or read the embeddings an earlier run cached."""
    import numpy as np
    import platformdirs

    from papertide.embeddings.encoder import paper_text

    texts = [encoder.name, *material.sentences, *(p.title for p in material.papers)]
    key = hashlib.sha1("\n".join(texts).encode()).hexdigest()[:16]
    cache = Path(platformdirs.user_cache_dir("papertide")) / "bench" / f"search_scale_real_{key}.npz"
    if cache.exists():
        saved = np.load(cache)
        return RealVectors(encoder.name, saved["sentences"], saved["titles"], saved["papers"])
    start = time.perf_counter()
    log(f"embedding {len(material.sentences):,} sentences and {len(material.papers):,} papers (real model)")
    vectors = RealVectors(
        encoder.name,
        encoder.encode(material.sentences),
        encoder.encode([p.title for p in material.papers]),
        encoder.encode([paper_text(p.title, p.text) for p in material.papers]),
    )
    log(f"  embedded in {time.perf_counter() - start:.0f}s; cached in {cache}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, sentences=vectors.sentences, titles=vectors.titles, papers=vectors.papers)
    return vectors


def _unit(x: Any) -> Any:
    import numpy as np

    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class SyntheticEncoder:
    """Texts to vectors without a model: a paper's vector from the real embeddings of its sentences.

    vector = unit(unit(sum over its sentences of (sentence vector + TITLE_WEIGHT * its paper's title
    vector)) + noise_scale * noise), the noise a Gaussian mix of NOISE_TERMS real residuals (a real
    paper's embedding minus its own reconstruction). Deterministic per text. `seconds` counts the
    time spent here, so the write path's own rate can be told apart.
    """

    TITLE_WEIGHT = 0.5
    NOISE_TERMS = 4
    # Stands in for a GPU worker, so jobs.embed picks the product's GPU batch size.
    device = "cuda"

    def __init__(self, material: Material, real: RealVectors, *, noise_scale: float = 1.0) -> None:
        import numpy as np

        self.name, self.dim = real.model, int(real.sentences.shape[1])
        self.lookup, self.noise_scale = material.sentence_id, noise_scale
        # A sentence's share of a paper's vector: its own embedding and its paper's title's.
        self.parts = real.sentences + self.TITLE_WEIGHT * real.titles[np.asarray(material.parent)]
        own: list[list[int]] = [[] for _ in material.papers]
        for sentence, paper in enumerate(material.parent):
            own[paper].append(sentence)  # a sentence two papers share counts for the first
        self.residuals = real.papers - self.reconstruct([ids or [0] for ids in own])
        self.weights = np.random.default_rng(0).standard_normal((65536, self.NOISE_TERMS)).astype(np.float32)
        self.seconds = 0.0

    def reconstruct(self, sentence_ids: list[list[int]]) -> Any:
        """The noise-free vector of each text, given the ids of its sentences."""
        import numpy as np
        from scipy import sparse

        flat = np.fromiter((s for ids in sentence_ids for s in ids), dtype=np.int64)
        ends = np.cumsum([len(ids) for ids in sentence_ids])
        # One sparse (texts x sentences) product sums each text's sentence rows.
        members = sparse.csr_matrix(
            (np.ones(len(flat), dtype=np.float32), flat, np.concatenate([[0], ends])),
            shape=(len(sentence_ids), len(self.parts)),
        )
        return _unit(np.asarray(members @ self.parts))

    def encode(self, texts: list[str]) -> Any:
        import numpy as np

        start = time.perf_counter()
        lookup = self.lookup
        ids = [[lookup[s] for s in _SENTENCE_END.split(t) if s in lookup] or [0] for t in texts]
        digests = b"".join(hashlib.blake2b(t.encode(), digest_size=8).digest() for t in texts)
        hashes = np.frombuffer(digests, dtype=np.uint64)
        picks = np.stack(
            [(hashes >> np.uint64(16 * k)) % np.uint64(len(self.residuals)) for k in range(self.NOISE_TERMS)],
            axis=1,
        ).astype(np.int64)
        weights = self.weights[((hashes * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(48)).astype(np.int64)]
        noise = np.einsum("nk,nkd->nd", weights, self.residuals[picks]) / np.sqrt(self.NOISE_TERMS)
        vectors = _unit(self.reconstruct(ids) + self.noise_scale * noise).astype(np.float32)
        self.seconds += time.perf_counter() - start
        return vectors


def _nearest_similarity(vectors: Any, *, sample: int = 1000, seed: int = 0) -> float:
    """Median cosine similarity of (up to `sample` of) the vectors to their nearest other vector."""
    import numpy as np

    rows = np.random.default_rng(seed).choice(len(vectors), min(sample, len(vectors)), replace=False)
    sims = vectors[rows] @ vectors.T
    sims[np.arange(len(rows)), rows] = -1.0
    return float(np.median(sims.max(axis=1)))


# Sizes at which the synthetic corpus's spread is compared with the real papers': the real ones'
# own count, and two larger sizes where near-duplicate clusters would show (a corpus made of a
# few real papers' remixes grows dense around each of them much faster than real papers do).
SPREAD_SIZES = (1_380, 10_000, 50_000)
NOISE_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


@dataclass(frozen=True)
class SpreadCurve:
    """How close real papers' nearest neighbours get as the corpus grows: nearest-neighbour chord
    distance d(N) = scale * N ** (-1 / dimension), fitted on random subsets of the real papers (the
    law of nearest-neighbour distances in a space of that intrinsic dimension)."""

    scale: float
    dimension: float
    measured: int  # the real papers' own count: beyond it the curve is extrapolated

    def similarity(self, n: int) -> float:
        distance = self.scale * math.pow(n, -1.0 / self.dimension)
        return 1.0 - distance * distance / 2.0

    @classmethod
    def of(cls, vectors: Any, *, draws: int = 5) -> SpreadCurve:
        import numpy as np

        rng = np.random.default_rng(0)
        sizes = [s for s in (100, 200, 400, 800) if s < len(vectors)] + [len(vectors)]
        logs_n, logs_d = [], []
        for size in sizes:
            for draw in range(draws if size < len(vectors) else 1):
                subset = vectors[rng.choice(len(vectors), size, replace=False)]
                similarity = _nearest_similarity(subset, seed=draw)
                logs_n.append(np.log(size))
                logs_d.append(np.log(np.sqrt(2.0 - 2.0 * similarity)))
        slope, intercept = np.polyfit(logs_n, logs_d, 1)
        return cls(float(np.exp(intercept)), float(-1.0 / slope), len(vectors))


def calibrated_encoder(
    material: Material, real: RealVectors, seed: int, n: int
) -> tuple[SyntheticEncoder, str]:
    """The noise scale at which the corpus grows as dense as real papers would.

    The corpus's own first papers at each of SPREAD_SIZES (up to n) against the real papers'
    SpreadCurve at the same size (measured at their own count, extrapolated beyond it); the scale
    with the least squared error in median nearest-neighbour cosine is used."""
    from papertide.embeddings.encoder import paper_text

    curve = SpreadCurve.of(real.papers)
    sizes = [s for s in SPREAD_SIZES if s <= n] or [n]
    papers = (synthetic_paper(i, n, material, seed) for i in range(max(sizes)))
    texts = [paper_text(p["title"], p["abstract"]) for p in papers]
    targets = [curve.similarity(s) for s in sizes]
    best: tuple[float, float, list[float]] | None = None
    for scale in NOISE_SCALES:
        vectors = SyntheticEncoder(material, real, noise_scale=scale).encode(texts)
        spread = [_nearest_similarity(vectors[:s]) for s in sizes]
        error = sum((a - b) ** 2 for a, b in zip(spread, targets, strict=True))
        if best is None or error < best[0]:
            best = (error, scale, spread)
    assert best is not None
    _, scale, spread = best
    pairs = ", ".join(
        f"{s:,}: {t:.3f} real{'' if s <= curve.measured else ' (extrapolated)'} / {v:.3f} synthetic"
        for s, t, v in zip(sizes, targets, spread, strict=True)
    )
    note = (
        f"spread check, median cosine to the nearest neighbour at each corpus size ({pairs}); noise "
        f"scale {scale}; the real papers' nearest-neighbour dimension {curve.dimension:.1f}, so at "
        f"{n:,} papers real ones would sit at {curve.similarity(n):.3f}"
    )
    return SyntheticEncoder(material, real, noise_scale=scale), note


# --- building, the product's way (each call in its own small function: the lead fixes drift here) --


def load_papers(path: Path) -> int:
    """papertide's bulk path: the Kaggle snapshot loader (COPY + merge, one transaction per chunk)."""
    from papertide.worker.ingest import load_snapshot

    return int(load_snapshot(path, progress=True).counts["new"])


def index_keywords() -> int:
    """The keyword index, as the worker builds it."""
    from papertide.worker.jobs import index_keywords

    return int(index_keywords(progress=True))


def write_vectors(encoder: SyntheticEncoder) -> int:
    """The worker's embedding job with the synthetic encoder: claim, encode, write (and index) vectors."""
    from papertide.worker.jobs import embed

    return int(embed(encoder=encoder, progress=True))


def build_vector_index(encoder: SyntheticEncoder) -> int:
    """The model's HNSW index as the product makes it (a no-op when the write step already made it)."""
    from papertide.db import unit_of_work
    from papertide.embeddings import service as embedding_service

    with unit_of_work() as session:
        embedding_service.ensure_index(session, encoder=encoder)
    return 0


def sql(statement: str, params: dict[str, Any] | None = None, *, settings: Sequence[str] = ()) -> list[Any]:
    """Rows of one read-only statement, in its own transaction (SET LOCAL `settings` first)."""
    from sqlalchemy import text

    from papertide.db import unit_of_work

    with unit_of_work() as session:
        for setting in settings:
            session.execute(text(f"SET LOCAL {setting}"))
        return list(session.execute(text(statement), params or {}))


def vector_indexes() -> list[tuple[str, int]]:
    return [
        (r.indexname, int(r.size))
        for r in sql(
            "SELECT indexname, pg_relation_size(format('%I', indexname)::regclass) AS size "
            "FROM pg_indexes WHERE tablename = 'paper_embedding' AND indexdef ILIKE '%hnsw%'"
        )
    ]


def wait_for_autovacuum(limit_s: float = 900.0) -> None:
    """Let autovacuum finish with the fresh tables (it analyzes them), so it does not run under the timings."""
    start = time.perf_counter()
    quiet = 0
    while time.perf_counter() - start < limit_s and quiet < 3:
        busy = sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")[0][0]
        quiet = 0 if busy else quiet + 1
        time.sleep(2.0)


class IndexBuildWatch:
    """Watches pg_stat_progress_create_index for paper_embedding from a thread: when a CREATE INDEX
    ran (whichever step of the product ran it), how long it took, and its progress meanwhile."""

    def __init__(self) -> None:
        import threading

        self.first: float | None = None
        self.last: float | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> IndexBuildWatch:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()

    @property
    def seconds(self) -> float | None:
        return None if self.first is None or self.last is None else self.last - self.first

    def _poll(self) -> None:
        said = 0.0
        while not self.stop.wait(0.25):
            rows = sql(
                "SELECT phase, tuples_done, blocks_done, blocks_total FROM pg_stat_progress_create_index "
                "WHERE relid = 'paper_embedding'::regclass"
            )
            if not rows:
                continue
            now = time.perf_counter()
            self.first, self.last = self.first or now, now
            if now - said > 30:
                said = now
                phase, tuples, done, total = rows[0]
                log(
                    f"  CREATE INDEX on paper_embedding: {phase}, {tuples:,} tuples, {done:,}/{total:,} blocks"
                )


@dataclass
class Build:
    papers: int
    steps: list[tuple[str, int, float]]  # (step, items, seconds)
    hnsw_note: str
    hnsw_seconds: float
    spread: str


def rebuild_graph_timed() -> float:
    """The product's HNSW build (embeddings.repository._build, as the worker's refresh_graph runs it)
    over the kept corpus, timed. The graph there already has the name the build gives (it is named
    by its watermark), so the same transaction renames it out of the way first and drops it once
    the new one is built: the kept corpus then has the graph today's code builds (its parameters
    may have changed since the corpus was made)."""
    from sqlalchemy import text

    from papertide.db import unit_of_work
    from papertide.embeddings import repository as embedding_repository

    with unit_of_work() as session:
        model, dim = session.execute(
            text("SELECT model, vector_dims(embedding) FROM paper_embedding LIMIT 1")
        ).one()
        names = session.scalars(
            text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'paper_embedding' AND "
                "(indexname LIKE 'ix_paper_embedding_hnsw_%' OR indexname LIKE 'ix_paper_embedding_fresh_%')"
            )
        ).all()
        for name in names:
            session.execute(text(f'ALTER INDEX "{name}" RENAME TO "{name[:40]}_kept"'))
        log(f"rebuilding the HNSW graph of {model} (it replaces the kept one)")
        started = time.perf_counter()
        count = embedding_repository._build(session, model=model, dim=dim)
        seconds = time.perf_counter() - started
        log(f"  {count:,} vectors in {seconds:.0f} s")
        for name in names:
            session.execute(text(f'DROP INDEX "{name[:40]}_kept"'))
    return seconds


def keyword_pass_timed(work: Path) -> list[tuple[str, int, float]]:
    """The deferred keyword pass over the whole kept corpus, twice, each into a new empty index in
    `work` (the kept index is not touched): the product's (`jobs.index_keywords`, which finds the
    index empty, queues every paper and adds them), and the baseline, the same batches written as
    every pass wrote them before, each paper replaced (a delete, then an add)."""
    from papertide.config import get_settings
    from papertide.db import unit_of_work
    from papertide.search import keyword_index
    from papertide.search import service as search_service
    from papertide.worker.jobs import index_keywords

    kept = os.environ["PAPERTIDE_DATA_DIR"]
    rows: list[tuple[str, int, float]] = []
    try:
        for label in ("baseline: each paper replaced", "ours: jobs.index_keywords, added to the empty index"):
            folder = work / f"keyword-pass-{len(rows)}"
            shutil.rmtree(folder, ignore_errors=True)
            os.environ["PAPERTIDE_DATA_DIR"] = str(folder)
            get_settings.cache_clear()
            keyword_index.forget_all()
            log(f"keyword pass, {label} ...")
            start = time.perf_counter()
            if label.startswith("ours"):
                done = index_keywords(progress=True)
            else:
                with unit_of_work() as session:
                    search_service.queue_everything(session)
                done = 0
                with keyword_index.shared(get_settings()).writer() as writer:
                    while True:
                        with unit_of_work() as session:
                            count = search_service.index_pending(session, writer, limit=20_000)
                            writer.commit()
                        if count == 0:
                            break
                        done += count
            rows.append((label, done, time.perf_counter() - start))
            log(f"  {done:,} papers in {rows[-1][2]:.0f} s")
            keyword_index.forget_all()
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        os.environ["PAPERTIDE_DATA_DIR"] = kept
        get_settings.cache_clear()
        keyword_index.forget_all()
    return rows


def report_keyword_pass(rows: list[tuple[str, int, float]]) -> None:
    print("\n### The deferred keyword pass over the whole corpus (--rebuild-keywords)\n")
    print("| path | papers | seconds | papers/s |\n|---|---:|---:|---:|")
    for label, done, seconds in rows:
        print(f"| {label} | {done:,} | {seconds:,.1f} | {done / seconds:,.0f} |")
    if len(rows) == 2:
        print(f"\nOurs / baseline: {rows[0][2] / rows[1][2]:.2f}x.")


class Steps(list[tuple[str, int, float]]):
    """(step, items, seconds) of the build, each step logged as it runs."""

    def timed(self, label: str, step: Callable[[], int | None]) -> float:
        log(f"{label} ...")
        start = time.perf_counter()
        items = step() or 0
        seconds = time.perf_counter() - start
        self.append((label, items, seconds))
        log(f"  {label}: {items:,} in {seconds:.1f}s")
        return seconds


def build(work: Path, n: int, seed: int, material: Material, real: RealVectors, state: Path | None) -> Build:
    """Load, index and embed the corpus; each step timed."""
    steps = Steps()
    snapshot = work / "snapshot.jsonl"
    steps.timed("generate the snapshot file", lambda: write_snapshot(snapshot, n, material, seed))
    steps.timed("bulk load (load_snapshot)", lambda: load_papers(snapshot))
    snapshot.unlink()
    steps.timed("keyword index (jobs.index_keywords)", index_keywords)
    result = build_vectors(steps, n, seed, material, real)
    if state is not None:
        state.write_text(json.dumps({"papers": n, "seed": seed, "built": True, "build": asdict(result)}))
    return result


def build_vectors(steps: Steps, n: int, seed: int, material: Material, real: RealVectors) -> Build:
    """The vectors through the worker's path, and the HNSW graph as the product builds it; timed."""
    encoder, spread = calibrated_encoder(material, real, seed, n)
    log(spread)
    with IndexBuildWatch() as watch:
        write_s = steps.timed("vectors (jobs.embed, synthetic encoder)", lambda: write_vectors(encoder))
        vectors = steps[-1][1]
        made_by_writes = bool(vector_indexes())
        created_in_writes = watch.seconds or 0.0
        index_s = steps.timed(
            "HNSW index (embedding_service.ensure_index)", lambda: build_vector_index(encoder)
        )
    # What the write path itself costs: less the stand-in encoder and any index build inside jobs.embed.
    alone = write_s - encoder.seconds - created_in_writes
    steps.insert(-1, ("vectors: the write path alone (less the encoder and CREATE INDEX)", vectors, alone))
    # The HNSW build target counts the CREATE INDEX itself when it ran over the vectors; when the
    # index was made empty before them (each batch then inserted into it), all of the write step.
    created_s = watch.seconds or 0.0
    if created_s > 1.0:
        hnsw_s, note = created_s, f"one CREATE INDEX over the vectors took {created_s:,.0f}s"
    elif made_by_writes:
        hnsw_s, note = write_s, f"filled batch by batch while the vectors were written ({write_s:,.0f}s)"
    else:
        hnsw_s, note = index_s, f"built after the vectors ({index_s:,.0f}s)"
    steps.timed("autovacuum settles", wait_for_autovacuum)
    return Build(n, list(steps), note, hnsw_s, spread)


def rebuild_vectors(state: Path, n: int, seed: int, material: Material, real: RealVectors) -> Build:
    """Every vector of the kept corpus written again (with today's calibration) and its graph built
    again, as a first build does: the papers, their text and the keyword index are kept."""
    from sqlalchemy import text

    from papertide.db import unit_of_work

    saved = json.loads(state.read_text())
    kept = [
        step for step in saved["build"]["steps"] if not step[0].startswith(("vectors", "HNSW", "autovacuum"))
    ]
    with unit_of_work() as session:
        for name in session.scalars(
            text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'paper_embedding' AND "
                "(indexname LIKE 'ix_paper_embedding_hnsw_%' OR indexname LIKE 'ix_paper_embedding_fresh_%')"
            )
        ).all():
            session.execute(text(f'DROP INDEX "{name}"'))
        session.execute(text("TRUNCATE paper_embedding"))
    log("dropped the kept vectors and their graph")
    steps = Steps(tuple(step) for step in kept)
    built = build_vectors(steps, n, seed, material, real)
    saved["build"] = asdict(built)
    state.write_text(json.dumps(saved))
    return built


def prepare(data_dir: Path, state: Path | None, n: int, seed: int) -> bool:
    """Point papertide at the corpus database; True when a finished build with the same size is there."""
    import psycopg

    from papertide import embedded_pg

    if state is not None and state.exists():
        saved = json.loads(state.read_text())
        if saved.get("built") and saved.get("papers") == n and saved.get("seed") == seed:
            fresh_database(data_dir, DATABASE)
            return True
    # Start over: a new database, and nothing left in DATA_DIR but PostgreSQL's own files.
    data_dir.mkdir(parents=True, exist_ok=True)
    admin = embedded_pg.admin_uri(data_dir)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    for entry in data_dir.iterdir():
        if entry.name not in ("pg", "pg.users", "pg.lock"):
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    if state is not None:
        state.write_text(json.dumps({"papers": n, "seed": seed, "built": False}))
    fresh_database(data_dir, DATABASE)
    return False


# --- queries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    kind: str  # title, phrase or question
    text: str


def _phrase(text: str, rng: random.Random) -> str | None:
    """2-4 consecutive words of `text`, lowercase, neither the first nor the last a stop word."""
    words = _WORD.findall(text)
    for _ in range(20):
        length = rng.randint(2, 4)
        if len(words) < length:
            return None
        start = rng.randint(0, len(words) - length)
        span = [w.lower() for w in words[start : start + length]]
        if span[0] not in STOPWORDS and span[-1] not in STOPWORDS:
            return " ".join(span)
    return None


def make_queries(count: int, n: int, material: Material, seed: int) -> list[Query]:
    """Titles, 2-4 word phrases (from a title or an abstract) and questions, from random corpus papers, in turn."""
    rng = random.Random(seed)
    queries: list[Query] = []
    while len(queries) < count:
        paper = synthetic_paper(rng.randrange(n), n, material, seed)
        kind = ("title", "phrase", "question")[len(queries) % 3]
        title = paper["title"].split(": ", 1)[-1]
        if kind == "title":
            queries.append(Query(kind, paper["title"][:300]))
        elif kind == "phrase" and (
            phrase := _phrase(
                title if rng.random() < 0.5 else rng.choice(split_sentences(paper["abstract"])), rng
            )
        ):
            queries.append(Query(kind, phrase))
        elif kind == "question" and (phrase := _phrase(title, rng)):
            queries.append(Query(kind, rng.choice(QUESTIONS).format(phrase)))
    return queries


# --- the web app and the measurements -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_web(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`papertide serve` on the corpus database (same DATA_DIR: the keyword index is there); waits for /healthz."""
    import httpx

    port = _free_port()
    env = {
        **os.environ,
        "PAPERTIDE_DATABASE_URL": os.environ["PAPERTIDE_DATABASE_URL"],
        "PAPERTIDE_DATA_DIR": os.environ["PAPERTIDE_DATA_DIR"],
        "PAPERTIDE_SECRET_KEY": "bench-search-scale",
        "PAPERTIDE_BASE_URL": f"http://127.0.0.1:{port}",
    }
    command = [sys.executable, "-m", "papertide", "serve", "--host", "127.0.0.1", "--port", str(port)]
    output = (work / "web.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit(f"the web app did not start:\n{(work / 'web.log').read_text()[-3000:]}")


def stop_web(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


@dataclass
class Sample:
    query: Query
    ms: float
    results: int
    steps: dict[str, float]


def parse_server_timing(header: str | None) -> dict[str, float]:
    """`embed;dur=7.5, keyword;dur=3.1` -> {"embed": 7.5, "keyword": 3.1}; empty without the header."""
    steps: dict[str, float] = {}
    for part in (header or "").split(","):
        name, _, params = part.strip().partition(";")
        duration = re.search(r"dur=([0-9.]+)", params)
        if name and duration:
            steps[name] = float(duration.group(1))
    return steps


class Client:
    """One keep-alive HTTP/1.1 connection with the standard library's client: httpx adds about a
    millisecond of its own per request on this CPU, which is the client's time, not the server's."""

    def __init__(self, url: str) -> None:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)

    def get(self, path: str, params: dict[str, str]) -> tuple[int, bytes, str | None]:
        from urllib.parse import urlencode

        self.connection.request("GET", f"{path}?{urlencode(params)}")
        response = self.connection.getresponse()
        return response.status, response.read(), response.getheader("server-timing")

    def close(self) -> None:
        self.connection.close()


def search(client: Client, query: Query, mode: str) -> Sample:
    """One search through the API, as a client sees it (the page size is the API's default)."""
    start = time.perf_counter()
    status, body, timing = client.get("/api/v1/search", {"q": query.text, "mode": mode})
    ms = (time.perf_counter() - start) * 1000
    if status != 200:
        raise SystemExit(f"{mode} search for {query.text!r} answered {status}: {body[:500]!r}")
    results = len(json.loads(body).get("results", []))
    return Sample(query, ms, results, parse_server_timing(timing))


def measure(
    url: str, queries: dict[str, list[Query]], warm_up: dict[str, list[Query]]
) -> tuple[dict[str, list[Sample]], dict[str, list[Sample]]]:
    """A server just started, then one in service: each mode's warm-up queries, timed (the first
    semantic one loads the model; the first few hundred read the HNSW graph and the paper rows
    into PostgreSQL's buffers), then each mode's measured queries. Every mode and phase has queries
    of its own (another seed), so no mode is answered from what an earlier one left behind (the
    server's query vectors, the graph pages those queries read): a server in service has
    searched, but not for these."""
    fresh: dict[str, list[Sample]] = {}
    samples: dict[str, list[Sample]] = {}
    client = Client(url)
    try:
        for phase, sets, out in (("warm-up", warm_up, fresh), ("measured", queries, samples)):
            for mode in TARGET_P95_MS:
                out[mode] = []
                asked = sets[mode]
                for k, query in enumerate(asked, start=1):
                    out[mode].append(search(client, query, mode))
                    if k % 50 == 0:
                        log(f"  {phase} {mode}: {k} of {len(asked)} queries")
    finally:
        client.close()
    return fresh, samples


def _pct(values: Sequence[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# --- recall -------------------------------------------------------------------------------------


def vector_statement(*, dim: int, model: str) -> str:
    """The product's nearest-vector SQL for the model's current HNSW index (binds :query, :model, :limit).

    Its own statement where the embeddings repository has one (the index's predicate repeated, so
    the planner can use it), else the cast and model filter of the index from before watermarks."""
    from papertide.db import unit_of_work
    from papertide.embeddings import repository as embedding_repository

    nearest_sql = getattr(embedding_repository, "nearest_sql", None)
    if nearest_sql is None:
        distance = f"embedding::vector({dim}) <=> CAST(:query AS vector({dim}))"
        return (
            f"SELECT paper_id, 1 - ({distance}) AS similarity FROM paper_embedding "
            f"WHERE model = :model ORDER BY {distance} LIMIT :limit"
        )
    with unit_of_work() as session:
        graph = embedding_repository.graph_of(session, model=model, dim=dim)
    return str(nearest_sql(dim=dim, graph=graph))


def _literal(vector: Any) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


@dataclass
class Neighbours:
    ids: list[str]
    similarities: list[float]
    ms: float


def _nearest(statement: str, vector: Any, *, model: str, settings: Sequence[str]) -> Neighbours:
    """The 10 nearest papers, and the milliseconds the statement took."""
    start = time.perf_counter()
    rows = sql(statement, {"model": model, "query": _literal(vector), "limit": 10}, settings=settings)
    ms = (time.perf_counter() - start) * 1000
    return Neighbours([r.paper_id for r in rows], [float(r.similarity) for r in rows], ms)


def _uses_hnsw(statement: str, vector: Any, *, model: str) -> bool:
    plan = sql(f"EXPLAIN {statement}", {"model": model, "query": _literal(vector), "limit": 10})
    return any("Index Scan" in str(row[0]) for row in plan)


def product_ef_search() -> tuple[int | None, str]:
    """The ef_search search runs with: a setting's, else search()'s default; and where it comes from."""
    import inspect

    from papertide.config import get_settings
    from papertide.search import service as search_service

    settings = get_settings()
    for name in type(settings).model_fields:
        if "ef_search" in name:
            return int(getattr(settings, name)), f"PAPERTIDE_{name.upper()}"
    parameter = inspect.signature(search_service.search).parameters.get("ef_search")
    if parameter is not None and isinstance(parameter.default, int):
        return parameter.default, "search()'s default"
    return None, "set by nearest() itself"


_HNSW_SCANS = """
    SELECT coalesce(sum(pg_stat_get_xact_numscans(i.indexrelid)), 0) FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
    WHERE i.indrelid = 'paper_embedding'::regclass AND a.amname = 'hnsw'
"""


def product_nearest(vector: Any, *, model: str, ef_search: int | None) -> tuple[list[str], bool]:
    """The product's own vector query, at the depth search asks it for, cut to the top 10; and
    whether it walked an HNSW index: the backend's not yet reported index scan counts, read before
    and after it in one transaction (they may hold earlier transactions' scans too, hence the difference)."""
    import inspect

    from sqlalchemy import text

    from papertide.db import unit_of_work
    from papertide.search import repository as search_repository
    from papertide.search import service as search_service

    depth = int(getattr(search_service, "CANDIDATES", 50))
    options: dict[str, Any] = {}
    if ef_search is not None and "ef_search" in inspect.signature(search_repository.nearest).parameters:
        options["ef_search"] = ef_search
    with unit_of_work() as session:
        before = session.scalar(text(_HNSW_SCANS))
        rows = search_repository.nearest(session, vector=vector, model=model, limit=depth, **options)
        walked = session.scalar(text(_HNSW_SCANS)) != before
    return [paper_id for paper_id, _ in rows][:10], walked


@dataclass
class Recall:
    # (ef_search label, recall@10, p50 ms, p95 ms, how much less similar the top 10 found is than
    # the exact top 10: the mean over queries of the difference of their mean cosines)
    rows: list[tuple[str, float, float, float, float]]
    product: float
    product_label: str
    product_walked: int  # queries for which the product's nearest() used an HNSW index
    uses_hnsw: bool
    similarity: tuple[float, float]  # median cosine of a query's 1st and 10th exact neighbour


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _recall(found: list[list[str]], exact: list[list[str]]) -> float:
    return sum(len(set(f) & set(e)) for f, e in zip(found, exact, strict=True)) / (10 * len(exact))


def measure_recall(encoder: Any, queries: list[Query]) -> Recall:
    """recall@10 of the HNSW index against an exact scan, per ef_search and through the product's nearest()."""
    from papertide.search import service as search_service

    model = encoder.name
    vectors = encoder.encode([q.text for q in queries])
    statement = vector_statement(dim=len(vectors[0]), model=model)
    log(f"  exact search for {len(vectors)} queries (a full scan each)")
    exact = [_nearest(statement, v, model=model, settings=("enable_indexscan = off",)) for v in vectors]
    exact_ids = [e.ids for e in exact]
    configured, source = product_ef_search()
    rows: list[tuple[str, float, float, float, float]] = []
    for ef in sorted({*EF_SEARCH, *([configured] if configured else [])}):
        runs = [_nearest(statement, v, model=model, settings=(f"hnsw.ef_search = {ef}",)) for v in vectors]
        recall = _recall([r.ids for r in runs], exact_ids)
        label = f"{ef}" + (f" (configured: {source})" if ef == configured else "")
        shortfall = sum(
            _mean(e.similarities) - _mean(r.similarities) for e, r in zip(exact, runs, strict=True)
        )
        ms = [r.ms for r in runs]
        rows.append((label, recall, _pct(ms, 50), _pct(ms, 95), shortfall / len(runs)))
        log(f"  recall@10 at ef_search {ef}: {recall:.3f}")
    product = [product_nearest(v, model=model, ef_search=configured) for v in vectors]
    depth = getattr(search_service, "CANDIDATES", 50)
    return Recall(
        rows,
        _recall([ids for ids, _ in product], exact_ids),
        f"search's nearest() (depth {depth}, top 10 kept)",
        sum(walked for _, walked in product),
        _uses_hnsw(statement, vectors[0], model=model),
        (_pct([e.similarities[0] for e in exact], 50), _pct([e.similarities[-1] for e in exact], 50)),
    )


GRAPH_PARAMETERS = (
    (16, 64),
    (16, 128),
    (16, 200),
    (24, 128),
)  # (m, ef_construction): pgvector's default first


def compare_graphs(encoder: Any, queries: list[Query], n: int) -> list[tuple[str, float, float, float]]:
    """HNSW graphs over the first `n` kept vectors, built with each (m, ef_construction) in turn on
    an unlogged copy (dropped after): build seconds and recall@10 against an exact scan at
    ef_search 100 and 200. Why papertide builds with ef_construction 128."""
    import psycopg

    from papertide import db

    vectors = encoder.encode([q.text for q in queries])
    url = db.database_url().replace("postgresql+psycopg://", "postgresql://")
    rows: list[tuple[str, float, float, float]] = []
    with psycopg.connect(url, autocommit=True) as conn:
        dim = len(vectors[0])
        conn.execute("SET maintenance_work_mem = '2GB'")
        conn.execute("DROP TABLE IF EXISTS bench_graph_probe")
        conn.execute(
            f"CREATE UNLOGGED TABLE bench_graph_probe AS SELECT paper_id, embedding::vector({dim}) AS v "
            f"FROM paper_embedding ORDER BY paper_id LIMIT {int(n)}"
        )

        def nearest(vector: Any) -> set[str]:
            statement = "SELECT paper_id FROM bench_graph_probe ORDER BY v <=> %s::vector LIMIT 10"
            return {row[0] for row in conn.execute(statement, (_literal(vector),))}

        try:
            conn.execute("SET enable_indexscan = off")
            exact = [nearest(v) for v in vectors]
            conn.execute("SET enable_indexscan = on")
            for m, construction in GRAPH_PARAMETERS:
                conn.execute("DROP INDEX IF EXISTS bench_graph_probe_hnsw")
                log(f"  graph over {n:,} vectors, m {m}, ef_construction {construction} ...")
                start = time.perf_counter()
                conn.execute(
                    "CREATE INDEX bench_graph_probe_hnsw ON bench_graph_probe USING hnsw "
                    f"(v vector_cosine_ops) WITH (m = {m}, ef_construction = {construction})"
                )
                seconds = time.perf_counter() - start
                at: dict[int, float] = {}
                for ef in (100, 200):
                    conn.execute(f"SET hnsw.ef_search = {ef}")
                    at[ef] = _recall([sorted(nearest(v)) for v in vectors], [sorted(e) for e in exact])
                rows.append((f"m {m}, ef_construction {construction}", seconds, at[100], at[200]))
        finally:
            conn.execute("DROP TABLE IF EXISTS bench_graph_probe")
    return rows


def report_graphs(rows: list[tuple[str, float, float, float]], n: int) -> None:
    print(f"\n### HNSW build parameters over {n:,} of the vectors (--compare-graphs)\n")
    print("| graph | build s | recall@10, ef_search 100 | recall@10, ef_search 200 |\n|---|---:|---:|---:|")
    for label, seconds, at_100, at_200 in rows:
        print(f"| {label} | {seconds:,.0f} | {at_100:.3f} | {at_200:.3f} |")


# --- the report ---------------------------------------------------------------------------------


def server_settings() -> str:
    names = ("shared_buffers", "work_mem", "maintenance_work_mem", "max_parallel_maintenance_workers")
    return ", ".join(f"{name} {sql(f'SHOW {name}')[0][0]}" for name in names)


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def report_build(built: Build, data_dir: Path) -> None:
    print(f"\n### Build ({built.papers:,} papers)\n")
    print("| step | items | seconds | items/s |\n|---|---:|---:|---:|")
    for label, items, seconds in built.steps:
        rate = f"{items / seconds:,.0f}" if seconds > 0 and items else ""
        print(f"| {label} | {f'{items:,}' if items else ''} | {seconds:,.1f} | {rate} |")
    hnsw = vector_indexes()
    keyword_bytes = sum(_size(p) for p in data_dir.iterdir() if p.is_dir() and p.name != "pg")
    print(f"\nHNSW index: {built.hnsw_note}; size {sum(s for _, s in hnsw) / 2**20:,.0f} MiB.")
    print(f"Keyword index files under DATA_DIR: {keyword_bytes / 2**20:,.0f} MiB.")
    print(f"Vectors: {built.spread}.")
    print(f"PostgreSQL: {server_settings()}.")


def report_fresh(fresh: dict[str, list[Sample]]) -> None:
    """The warm-up, timed: its first 200 queries per mode (a server just started) and its last 200."""
    count = len(next(iter(fresh.values())))
    print(f"\n### The warm-up: {count:,} other queries per mode, from the server's start\n")
    print("| mode | queries | p50 | p95 | p99 | max |\n|---|---|---:|---:|---:|---:|")
    for mode, rows in fresh.items():
        rows = rows if mode == "keyword" else rows[1:]  # the first semantic query loads the model
        spans = [("first 200", rows[:200])] + ([("last 200", rows[-200:])] if len(rows) > 400 else [])
        for label, span in spans:
            ms = [s.ms for s in span]
            print(
                f"| {mode} | {label} | {_pct(ms, 50):,.1f} ms | {_pct(ms, 95):,.1f} ms "
                f"| {_pct(ms, 99):,.1f} ms | {max(ms):,.1f} ms |"
            )
    print(
        "\nModes run in turn (keyword, then semantic, then hybrid), so the first semantic queries pay for "
        "reading the HNSW graph into PostgreSQL's buffers; the first semantic query (the model loading) "
        "is left out."
    )


def report_latency(samples: dict[str, list[Sample]]) -> None:
    count = len(next(iter(samples.values())))
    print(f"\n### Latency through HTTP, one client, a server in service ({count} queries per mode)\n")
    print("| mode | p50 | p95 | p99 | max | mean results | target p95 | met |")
    print("|---|---:|---:|---:|---:|---:|---:|:---:|")
    for mode, rows in samples.items():
        ms = [s.ms for s in rows]
        target = TARGET_P95_MS[mode]
        met = "yes" if _pct(ms, 95) <= target else "**no**"
        mean_results = sum(s.results for s in rows) / len(rows)
        print(
            f"| {mode} | {_pct(ms, 50):,.1f} ms | {_pct(ms, 95):,.1f} ms | {_pct(ms, 99):,.1f} ms "
            f"| {max(ms):,.1f} ms | {mean_results:.1f} | ≤ {target:.0f} ms | {met} |"
        )
    print("\nBy kind of query (p50 / p95, ms):\n")
    kinds = ("title", "phrase", "question")
    print("| mode | " + " | ".join(kinds) + " |\n|---|" + "---:|" * len(kinds))
    for mode, rows in samples.items():
        cells = []
        for kind in kinds:
            ms = [s.ms for s in rows if s.query.kind == kind]
            cells.append(f"{_pct(ms, 50):,.1f} / {_pct(ms, 95):,.1f}")
        print(f"| {mode} | " + " | ".join(cells) + " |")
    print("\nSlowest queries:\n")
    for mode, rows in samples.items():
        slowest = sorted(rows, key=lambda s: -s.ms)[:3]
        print(f"- {mode}: " + "; ".join(f"{s.ms:,.0f} ms {s.query.text[:70]!r}" for s in slowest))


def report_steps(samples: dict[str, list[Sample]]) -> None:
    names = list(dict.fromkeys(name for rows in samples.values() for s in rows for name in s.steps))
    print("\n### Where the time goes (Server-Timing, p50 / p95 ms)\n")
    if not names:
        print("The API sent no Server-Timing header: no per-step times.")
        return
    print("| mode | " + " | ".join(names) + " | client total |\n|---|" + "---:|" * (len(names) + 1))
    for mode, rows in samples.items():
        cells = []
        for name in names:
            values = [s.steps[name] for s in rows if name in s.steps]
            cells.append(f"{_pct(values, 50):,.1f} / {_pct(values, 95):,.1f}" if values else "")
        ms = [s.ms for s in rows]
        print(f"| {mode} | " + " | ".join(cells) + f" | {_pct(ms, 50):,.1f} / {_pct(ms, 95):,.1f} |")
    if "total" in names:
        print(
            "\n`total` is the server's time until the response object exists; the client's total adds "
            "serialising the JSON and HTTP on the loopback."
        )


def report_recall(recall: Recall, count: int) -> None:
    print(f"\n### HNSW recall@10 against exact search ({count} queries)\n")
    print(
        "| hnsw.ef_search | recall@10 | p50 ms | p95 ms | mean cosine of the top 10 below the exact top 10's |\n"
        "|---|---:|---:|---:|---:|"
    )
    for label, value, p50, p95, shortfall in recall.rows:
        print(f"| {label} | {value:.3f} | {p50:,.1f} | {p95:,.1f} | {shortfall:.4f} |")
    print(f"| product: {recall.product_label} | {recall.product:.3f} | | | |")
    hnsw = "yes" if recall.uses_hnsw else "**no** (an exact scan: the rows above mean nothing)"
    walked = recall.product_walked
    product = (
        "every one of the" if walked == count else f"**{walked} of {count}** (the others: an exact scan)"
    )
    first, tenth = recall.similarity
    print(
        f"\nThe ef_search rows run the embeddings repository's statement; the planner walks the HNSW "
        f"index for it: {hnsw}. The product's nearest() walked it for {product} queries. A query's exact "
        f"neighbours: median cosine {first:.3f} for the 1st, {tenth:.3f} for the 10th."
    )


def report_targets(samples: dict[str, list[Sample]], recall: Recall, built: Build, count: int) -> None:
    print("\n### Targets (issue 10)\n")
    print("| target | measured | met |\n|---|---:|:---:|")
    for mode, target in TARGET_P95_MS.items():
        p95 = _pct([s.ms for s in samples[mode]], 95)
        print(f"| {mode} p95 ≤ {target:.0f} ms | {p95:,.1f} ms | {'yes' if p95 <= target else '**no**'} |")
    # An exact scan finds every neighbour: recall counts only when the product's query walked the index.
    met = recall.product >= TARGET_RECALL and recall.product_walked == count
    print(
        f"| recall@10 ≥ {TARGET_RECALL} (product's nearest()) | {recall.product:.3f} | {'yes' if met else '**no**'} |"
    )
    met = built.hnsw_seconds <= TARGET_HNSW_S
    print(f"| HNSW build ≤ 10 min | {built.hnsw_seconds / 60:,.1f} min | {'yes' if met else '**no**'} |")


# --- main ---------------------------------------------------------------------------------------


@dataclass
class Options:
    papers: int
    queries: int
    recall_queries: int
    seed: int
    keep: Path | None
    rebuild_hnsw: bool = False
    rebuild_keywords: bool = False
    rebuild_vectors: bool = False
    recall_only: bool = False
    compare_graphs: int = 0
    warm_up: int = 1000


def parse_args() -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--papers", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="queries per mode")
    parser.add_argument("--recall-queries", type=int, default=100)
    parser.add_argument(
        "--rebuild-keywords",
        action="store_true",
        help="with --keep and a kept corpus: time the keyword pass (ours and the replace-each baseline) again",
    )
    parser.add_argument(
        "--rebuild-vectors",
        action="store_true",
        help="with --keep and a kept corpus: write every vector again (today's calibration) and build its graph",
    )
    parser.add_argument(
        "--recall-only", action="store_true", help="measure recall only (no web app, no latency)"
    )
    parser.add_argument(
        "--compare-graphs",
        type=int,
        default=0,
        metavar="N",
        help="with a kept corpus: build HNSW graphs over N of its vectors with several parameters",
    )
    parser.add_argument(
        "--warm-up", type=int, default=1000, help="queries per mode before the measured ones (timed too)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep (and reuse) the built corpus in this folder"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20,000 papers, 50 queries")
    parser.add_argument(
        "--rebuild-hnsw",
        action="store_true",
        help="with --keep and a kept corpus: time the product's HNSW build again; it replaces the kept graph",
    )
    args = parser.parse_args()
    if args.quick:
        args.papers, args.queries, args.warm_up = 20_000, 50, 20
    return Options(
        papers=args.papers,
        queries=args.queries,
        recall_queries=args.recall_queries,
        seed=args.seed,
        keep=args.keep,
        rebuild_hnsw=args.rebuild_hnsw,
        rebuild_keywords=args.rebuild_keywords,
        rebuild_vectors=args.rebuild_vectors,
        recall_only=args.recall_only,
        compare_graphs=args.compare_graphs,
        warm_up=args.warm_up,
    )


@dataclass
class Workspace:
    root: Path
    data_dir: Path
    state: Path | None


@contextmanager
def workspace(keep: Path | None) -> Iterator[Workspace]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield Workspace(keep, keep / "data", keep / STATE)
        return
    with tempfile.TemporaryDirectory(prefix="search-scale-") as tmp:
        yield Workspace(Path(tmp), Path(tmp) / "data", None)


def run(options: Options, space: Workspace) -> None:
    os.environ.setdefault("PAPERTIDE_SECRET_KEY", "bench-search-scale")
    reuse = prepare(space.data_dir, space.state, options.papers, options.seed)
    from papertide.embeddings.encoder import get_encoder

    material = real_material()
    log(f"material: {len(material.papers):,} real papers, {len(material.sentences):,} sentences")
    encoder = get_encoder()
    real = real_vectors(material, encoder)
    material.with_neighbours(real.papers)
    keyword_pass: list[tuple[str, int, float]] = []
    graphs: list[tuple[str, float, float, float]] = []
    if reuse:
        assert space.state is not None
        built = Build(**json.loads(space.state.read_text())["build"])
        log(f"reusing the corpus in {space.root} ({options.papers:,} papers)")
        if options.rebuild_vectors:
            built = rebuild_vectors(space.state, options.papers, options.seed, material, real)
        if options.rebuild_hnsw:
            seconds = rebuild_graph_timed()
            built.hnsw_seconds = seconds
            built.hnsw_note = f"rebuilt in this run (--rebuild-hnsw) by the product's build in {seconds:.0f}s"
            # The kept graph is this one now: later runs report its build.
            saved = json.loads(space.state.read_text())
            saved["build"] = asdict(built)
            space.state.write_text(json.dumps(saved))
        if options.rebuild_keywords:
            keyword_pass = keyword_pass_timed(space.root)
        if options.compare_graphs:
            graphs = compare_graphs(
                encoder,
                make_queries(options.recall_queries, options.papers, material, options.seed),
                options.compare_graphs,
            )
    else:
        built = build(space.root, options.papers, options.seed, material, real, space.state)
    queries = make_queries(
        max(options.queries, options.recall_queries), options.papers, material, options.seed
    )
    # Each mode its own queries (recall reuses keyword's): see measure().
    measured = {
        mode: queries[: options.queries]
        if n == 0
        else make_queries(options.queries, options.papers, material, options.seed + n)
        for n, mode in enumerate(TARGET_P95_MS)
    }
    warm_up = {
        mode: make_queries(options.warm_up, options.papers, material, options.seed + 7 + n)
        for n, mode in enumerate(TARGET_P95_MS)
    }
    if options.recall_only:
        log("recall against exact search")
        recall = measure_recall(encoder, queries[: options.recall_queries])
        print(f"\n## Search at scale: {options.papers:,} papers, recall only ({machine()})")
        report_build(built, space.data_dir)
        report_recall(recall, options.recall_queries)
        return
    log("starting the web app")
    process, url = start_web(space.root)
    try:
        fresh, samples = measure(url, measured, warm_up)
    finally:
        stop_web(process)
    log("recall against exact search")
    recall = measure_recall(encoder, queries[: options.recall_queries])
    print(f"\n## Search at scale: {options.papers:,} papers ({machine()})")
    report_build(built, space.data_dir)
    report_fresh(fresh)
    report_latency(samples)
    report_steps(samples)
    report_recall(recall, options.recall_queries)
    report_targets(samples, recall, built, options.recall_queries)
    if keyword_pass:
        report_keyword_pass(keyword_pass)
    if graphs:
        report_graphs(graphs, options.compare_graphs)
    sys.stdout.flush()


def main() -> None:
    options = parse_args()
    with workspace(options.keep) as space:
        try:
            run(options, space)
        finally:
            release_database(space.data_dir)


def machine() -> str:
    """The date, the cores, the memory and the Python the numbers came from."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    python = sys.version.split()[0]
    return f"{datetime.now():%Y-%m-%d}, {cores} cores, {memory:.0f} GiB, Python {python}, load average {os.getloadavg()[0]:.1f}"


def release_database(data_dir: Path) -> None:
    """Stop the embedded server before its folder goes (a temporary one is deleted next)."""
    from papertide import db, embedded_pg

    db.reset()
    embedded_pg.release((data_dir / "pg").resolve())


if __name__ == "__main__":
    main()
