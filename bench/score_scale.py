"""`papertide score` at scale: today's full recluster and rewrite against incremental topics, same run.

    .venv/bin/python bench/score_scale.py [--papers 1000000] [--quick]

Builds an N-paper database directly (COPY of synthetic papers whose words and 384-d unit vectors
come from the same ~150 clusters, upvotes and views on the last month's
papers; setup is not what is measured), listed at arXiv's pace (25,000 a month: the 12 weeks that
topics describe hold about 70,000 papers whatever N is; `--per-month` changes it). Then times
`jobs.score` as the scheduler runs it:

- cold: no topics yet (the full fit);
- steady: 15 minutes later, nothing new (the every-15-minutes case);
- +day: a day later, 1,000 new papers (assigned to the nearest topic);
- +month: a month later, 25,000 new papers (a month of arXiv: the corpus moved past the refit
  threshold, so the topics are refitted and only the papers whose topic changed are written);
- baseline: today's path on the same final database (every paper's topic set to NULL, the window
  reclustered and rewritten, topics and trending in Python), kept below as `baseline_rescore`.

Each row: seconds for topics, trending, the whole job (commit and run record included), and the
paper rows the run wrote (counted by their `xmin`: rows a run rewrites are dead rows for VACUUM).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "src/papertide/data/hf_daily_papers.json.gz"
sys.path.insert(0, str(ROOT / "bench"))

from ingest import fresh_database  # noqa: E402  (bench/ingest.py: a migrated database on pgserver)

AS_OF = datetime(2026, 11, 27, 12, tzinfo=UTC)
DIM = 384
CLUSTERS = 150
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
PER_DAY = 1_000
PER_MONTH = 25_000
CHUNK = 50_000


# --- the corpus: words and vectors from the same clusters --------------------------------------


@dataclass
class Corpus:
    """Cluster centres and words; `next_id` numbers papers across batches."""

    seed: int
    vocabulary: list[str] = field(default_factory=list)
    cluster_words: list[list[str]] = field(default_factory=list)
    centres: Any = None
    next_id: int = 0
    rng: Any = None

    def __post_init__(self) -> None:
        import numpy as np

        self.rng = np.random.default_rng(self.seed)
        self.vocabulary = _vocabulary()
        self.cluster_words = [
            list(self.rng.choice(self.vocabulary, size=25, replace=False)) for _ in range(CLUSTERS)
        ]
        # Two levels, as in real embeddings: fields, then topics inside them, plus a direction
        # every text shares (unrelated papers are not orthogonal).
        shared = _unit(self.rng.standard_normal(DIM))
        fields = _unit(self.rng.standard_normal((20, DIM)))
        centres = fields[self.rng.integers(20, size=CLUSTERS)] + 0.8 * _unit(
            self.rng.standard_normal((CLUSTERS, DIM))
        )
        self.centres = _unit(_unit(centres) + 0.5 * shared)


def _unit(x: Any) -> Any:
    import numpy as np

    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _vocabulary() -> list[str]:
    days = json.loads(gzip.decompress(SAMPLE.read_bytes()))
    counts: Counter[str] = Counter()
    for items in days.values():
        for item in items:
            counts.update(re.findall(r"[a-z][a-z\-]{3,}[a-z]", item["paper"]["summary"].lower()))
    return [word for word, _ in counts.most_common(6000)]


@dataclass
class Batch:
    ids: list[str]
    listed: list[datetime]
    clusters: Any  # cluster of each paper (numpy ints)


def new_batch(corpus: Corpus, count: int, *, newest: datetime, span: timedelta) -> Batch:
    """`count` papers listed evenly over (newest - span, newest]."""
    step = span / count
    ids = [f"sc{corpus.next_id + n:08d}" for n in range(count)]
    corpus.next_id += count
    listed = [newest - step * n for n in range(count)]
    return Batch(ids=ids, listed=listed, clusters=corpus.rng.integers(CLUSTERS, size=count))


def _texts(corpus: Corpus, clusters: Any) -> Iterator[tuple[str, str]]:
    """(title, abstract): a quarter of the words from the paper's cluster."""
    rng, vocab = corpus.rng, corpus.vocabulary
    general = rng.integers(len(vocab), size=(len(clusters), 100))
    local = rng.integers(25, size=(len(clusters), 32))
    for row, cluster in enumerate(clusters):
        own = corpus.cluster_words[int(cluster)]
        title = " ".join(own[k] for k in local[row, :8])
        words = [own[k] for k in local[row, 8:]] + [vocab[k] for k in general[row]]
        yield title, " ".join(words)


def _vectors(corpus: Corpus, clusters: Any) -> Any:
    import numpy as np

    noise = corpus.rng.standard_normal((len(clusters), DIM), dtype=np.float32) * 0.07
    return _unit(corpus.centres[clusters].astype(np.float32) + noise).astype(np.float32)


# --- loading: COPY straight into the tables ----------------------------------------------------


def load(corpus: Corpus, batch: Batch, *, model: str, embedded_at: datetime) -> None:
    """Papers, their vectors, and signals for the ones listed in the last month of the batch."""
    from papertide.db import unit_of_work

    for start in range(0, len(batch.ids), CHUNK):
        part = Batch(
            ids=batch.ids[start : start + CHUNK],
            listed=batch.listed[start : start + CHUNK],
            clusters=batch.clusters[start : start + CHUNK],
        )
        with unit_of_work() as session:
            raw: Any = session.connection().connection.driver_connection
            hashes = _copy_papers(raw, corpus, part)
            _copy_vectors(raw, corpus, part, hashes, model=model, embedded_at=embedded_at)
            _copy_signals(raw, corpus, part)


def _copy_papers(raw: Any, corpus: Corpus, batch: Batch) -> list[str]:
    from papertide.papers.schemas import text_hash

    lines, hashes = [], []
    for pid, listed, (title, abstract) in zip(
        batch.ids, batch.listed, _texts(corpus, batch.clusters), strict=True
    ):
        digest = text_hash(title, abstract)
        hashes.append(digest)
        published = (listed - timedelta(days=1)).isoformat()
        lines.append(
            f"{pid}\t{title}\t{abstract}\t{{A. Author}}\t{{cs.LG}}\t{published}\t{listed.isoformat()}"
            f"\tbench\t{digest}\t{listed.isoformat()}\n"
        )
    columns = "id, title, abstract, authors, categories, published_at, announced_at, source, text_hash, first_seen_at"
    with raw.cursor() as cursor, cursor.copy(f"COPY paper ({columns}) FROM STDIN") as copy:
        copy.write("".join(lines).encode())
    return hashes


def _copy_vectors(
    raw: Any, corpus: Corpus, batch: Batch, hashes: list[str], *, model: str, embedded_at: datetime
) -> None:
    """One binary COPY built by numpy: every field has a fixed width here."""
    import numpy as np

    vectors = _vectors(corpus, batch.clusters)
    m, h = model.encode(), len(hashes[0])
    row = np.dtype(
        [
            ("fields", ">i2"),
            ("l_id", ">i4"), ("id", "S10"),
            ("l_model", ">i4"), ("model", f"S{len(m)}"),
            ("l_dim", ">i4"), ("dim", ">i4"),
            ("l_hash", ">i4"), ("hash", f"S{h}"),
            ("l_vec", ">i4"), ("vdim", ">i2"), ("unused", ">i2"), ("vec", ">f4", (DIM,)),
            ("l_at", ">i4"), ("at", ">i8"),
        ]
    )  # fmt: skip
    rows = np.zeros(len(batch.ids), dtype=row)
    rows["fields"] = 6
    rows["l_id"], rows["id"] = 10, batch.ids
    rows["l_model"], rows["model"] = len(m), m
    rows["l_dim"], rows["dim"] = 4, DIM
    rows["l_hash"], rows["hash"] = h, hashes
    rows["l_vec"], rows["vdim"], rows["vec"] = 4 + 4 * DIM, DIM, vectors
    rows["l_at"], rows["at"] = 8, (embedded_at - PG_EPOCH) // timedelta(microseconds=1)
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    data = header + rows.tobytes() + struct.pack(">h", -1)
    statement = "COPY paper_embedding (paper_id, model, dim, text_hash, embedding, embedded_at) FROM STDIN (FORMAT BINARY)"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(data)


def _copy_signals(raw: Any, corpus: Corpus, batch: Batch) -> None:
    """Upvotes (two observations: velocity has work) and page views for 40% of the month's papers."""
    rng = corpus.rng
    newest = max(batch.listed)
    signals, views = io.StringIO(), io.StringIO()
    for pid, listed in zip(batch.ids, batch.listed, strict=True):
        if newest - listed > timedelta(days=30) or rng.random() > 0.4:
            continue
        first = int(rng.integers(1, 30))
        later = first + int(rng.integers(0, 60))
        if listed < newest:
            early = listed + (newest - listed) / 2
            signals.write(f"{pid}\tupvotes\t{first}\tbench\t{early.isoformat()}\n")
        signals.write(f"{pid}\tupvotes\t{later}\tbench\t{newest.isoformat()}\n")
        views.write(
            f"{pid}\t{newest.date().isoformat()}\t{int(rng.integers(1, 20))}\t{int(rng.integers(0, 3))}\n"
        )
    with raw.cursor() as cursor:
        with cursor.copy("COPY paper_signal (paper_id, kind, value, source, observed_at) FROM STDIN") as copy:
            copy.write(signals.getvalue().encode())
        with cursor.copy("COPY paper_view (paper_id, day, views, clicks) FROM STDIN") as copy:
            copy.write(views.getvalue().encode())


@contextmanager
def bulk_mode() -> Iterator[None]:
    """The paper and signal indexes built once, after the load."""
    from sqlalchemy import text

    from papertide.db import unit_of_work

    with unit_of_work() as session:
        kept = session.execute(
            text(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname "
                "JOIN pg_index x ON x.indexrelid = c.oid WHERE i.tablename IN ('paper', 'paper_signal') "
                "AND NOT x.indisprimary AND NOT x.indisunique"
            )
        ).all()
        for name, _ in kept:
            session.execute(text(f'DROP INDEX "{name}"'))
    try:
        yield
    finally:
        with unit_of_work() as session:
            session.execute(text("SET maintenance_work_mem = '1GB'"))
            for _, definition in kept:
                session.execute(text(definition))
    vacuum()


def vacuum() -> None:
    from papertide.db import get_engine

    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    topics: float = 0.0
    trending: float = 0.0
    total: float = 0.0
    written: int = 0
    topic_count: int = 0
    cpu: float = 0.0  # this process and every PostgreSQL process together


# The CPU is shared (other jobs run beside a bench on a 2-core box): CPU seconds, this process's
# and the database server's, say what a run costs when its wall time says how busy the box was.
PG_DIR: list[Path] = []


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and the PostgreSQL server (Linux /proc; 0 elsewhere)."""
    used = time.process_time()
    if not PG_DIR or not Path("/proc").is_dir():
        return used
    postmaster = int((PG_DIR[0] / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended meanwhile
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == postmaster:  # with its ended children's (backends, parallel workers) time
            used += sum(int(f) for f in fields[11:15]) / tick
        elif ppid == postmaster:
            used += sum(int(f) for f in fields[11:13]) / tick
    return used


@contextmanager
def timing(step: Step) -> Iterator[None]:
    """Time the service's two steps where the job calls them, and count the paper rows written."""
    from sqlalchemy import text

    from papertide.db import unit_of_work
    from papertide.ranking import service

    with unit_of_work() as session:
        before = int(session.scalar(text("SELECT txid_current()")) or 0)
    originals = {name: getattr(service, name) for name in ("compute_topics", "compute_scores")}

    def timed(name: str, attribute: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return originals[name](*args, **kwargs)
            finally:
                setattr(step, attribute, getattr(step, attribute) + time.perf_counter() - start)

        return call

    service.compute_topics = timed("compute_topics", "topics")  # type: ignore[assignment]
    service.compute_scores = timed("compute_scores", "trending")  # type: ignore[assignment]
    start, cpu = time.perf_counter(), cpu_seconds()
    try:
        yield
    finally:
        step.total = time.perf_counter() - start
        step.cpu = cpu_seconds() - cpu
        for name, function in originals.items():
            setattr(service, name, function)
    with unit_of_work() as session:
        # Epoch 0 in a fresh database: a row's xmin is the low 32 bits of the transaction that wrote it.
        step.written = int(
            session.scalar(text("SELECT count(*) FROM paper WHERE xmin::text::bigint > :t"), {"t": before})
            or 0
        )
        step.topic_count = int(session.scalar(text("SELECT count(*) FROM topic")) or 0)


def run_score(name: str, now: datetime) -> Step:
    from papertide.worker import jobs

    step = Step(name)
    with timing(step):
        jobs.score(now=now)
    print(f"  {name}: {step.total:.1f}s ({step.cpu:.1f} cpu s)", flush=True)
    return step


def run_baseline(now: datetime) -> Step:
    from papertide.config import get_settings
    from papertide.db import unit_of_work

    step = Step("baseline (today)")
    with timing(step), unit_of_work() as session:
        baseline_rescore(session, now=now, settings=get_settings(), step=step)
    print(f"  baseline: {step.total:.1f}s ({step.cpu:.1f} cpu s)", flush=True)
    return step


# --- the baseline: today's score path, kept as it was ------------------------------------------


def baseline_rescore(session: Any, *, now: datetime, settings: Any, step: Step) -> None:
    from papertide.ranking import repository, service

    repository.lock_scoring(session)  # as today: one transaction, one score run at a time
    start = time.perf_counter()
    baseline_topics(
        session, now=now, model=settings.embedding_model, baseline_weeks=settings.topic_baseline_weeks
    )
    step.topics = time.perf_counter() - start
    start = time.perf_counter()
    baseline_scores(session, now=now, params=service.params_from(settings))
    step.trending = time.perf_counter() - start


def baseline_topics(session: Any, *, now: datetime, model: str, baseline_weeks: int) -> None:
    """compute_topics as of issue 10: cluster the window, then NULL every paper's topic and rewrite."""
    import numpy as np

    from papertide.ranking import service, topics

    clock = service.current_clock(session, now=now)
    papers = _baseline_embedded_papers(session, model=model, since=clock.as_of - topics.WINDOW)
    if len(papers) < 4:
        return
    vectors = np.stack([np.asarray(p[3], dtype=np.float32) for p in papers])
    labels = topics.spherical_kmeans(vectors, topics.cluster_count(len(papers)))
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    previous = {p[0]: p[4] for p in papers if p[4] is not None}
    next_id = max(previous.values(), default=0) + 1
    clusters = topics.assign_ids(
        [[papers[i][0] for i in g] for g in groups.values()], previous, next_id=next_id
    )
    frequencies = topics.document_frequencies([p[2] for p in papers])
    by_id = {p[0]: p for p in papers}
    rows = []
    for cluster in clusters:
        members = [by_id[pid] for pid in cluster.paper_ids]
        listed = [m[1] for m in members]
        terms = topics.label_terms([m[2] for m in members], frequencies, len(papers))
        rows.append(
            {
                "id": cluster.topic_id,
                "label": " · ".join(terms) or f"topic {cluster.topic_id}",
                "terms": terms,
                "size": len(members),
                "momentum": topics.momentum(listed, as_of=clock.as_of, baseline_weeks=baseline_weeks),
                "weekly": topics.weekly_sizes(listed, as_of=clock.as_of),
            }
        )
    _baseline_save_topics(session, rows, {pid: c.topic_id for c in clusters for pid in c.paper_ids})


def _baseline_embedded_papers(session: Any, *, model: str, since: datetime) -> list[tuple[Any, ...]]:
    from sqlalchemy import func, select

    from papertide.models import Paper, PaperEmbedding

    listed_at = func.coalesce(Paper.announced_at, Paper.published_at, Paper.first_seen_at)
    stmt = (
        select(Paper.id, listed_at, Paper.title, Paper.abstract, PaperEmbedding.embedding, Paper.topic_id)
        .join(PaperEmbedding, PaperEmbedding.paper_id == Paper.id)
        .where(PaperEmbedding.model == model, listed_at > since)
        .order_by(Paper.id)
    )
    return [(r[0], r[1], f"{r[2]} {r[3]}", r[4], r[5]) for r in session.execute(stmt)]


def _baseline_save_topics(session: Any, rows: list[dict[str, Any]], assignment: dict[str, int]) -> None:
    from sqlalchemy import delete, update
    from sqlalchemy.dialects.postgresql import insert

    from papertide.models import Paper, Topic

    session.execute(update(Paper).values(topic_id=None))
    session.execute(delete(Topic))
    session.execute(insert(Topic), rows)
    by_topic: dict[int, list[str]] = {}
    for paper_id, topic_id in assignment.items():
        by_topic.setdefault(topic_id, []).append(paper_id)
    for topic_id, paper_ids in by_topic.items():
        session.execute(update(Paper).where(Paper.id.in_(paper_ids)).values(topic_id=topic_id))


def baseline_scores(session: Any, *, now: datetime, params: Any) -> None:
    """compute_scores as of issue 10: ids sent back as IN lists, every topic's momentum, ORM inserts."""
    from sqlalchemy import delete
    from sqlalchemy.dialects.postgresql import insert

    from papertide.models import PaperScore
    from papertide.ranking import service
    from papertide.ranking.trending import PERIODS, rank

    clock = service.current_clock(session, now=now)
    activity = _baseline_activity(
        session, since=clock.as_of - max(PERIODS.values()), as_of=clock.as_of, params=params
    )
    for period in PERIODS:
        scored = rank(activity, as_of=clock.as_of, period=period, params=params)
        session.execute(delete(PaperScore).where(PaperScore.period == period))
        if scored:
            rows = [
                {"paper_id": pid, "period": period, "score": score, "components": parts, "as_of": clock.as_of}
                for pid, score, parts in scored
            ]
            session.execute(insert(PaperScore), rows)


def _baseline_activity(session: Any, *, since: datetime, as_of: datetime, params: Any) -> list[Any]:
    from sqlalchemy import func, select

    from papertide.models import Paper, PaperView, Topic
    from papertide.ranking.trending import Activity

    listed_at = func.coalesce(Paper.announced_at, Paper.published_at, Paper.first_seen_at)
    papers = session.execute(
        select(Paper.id, listed_at.label("listed_at")).where(listed_at > since, listed_at <= as_of)
    ).all()
    ids = [p.id for p in papers]
    windows = {period: params.velocity_window(period) for period in params.velocity_window_hours}
    current = _baseline_values_at(session, ids, at=as_of)
    earlier = {period: _baseline_values_at(session, ids, at=as_of - w) for period, w in windows.items()}
    momentum = {
        row[0]: float(row[1])
        for row in session.execute(select(Paper.id, Topic.momentum).join(Topic, Topic.id == Paper.topic_id))
    }
    attention = {}
    for period, window in windows.items():
        stmt = (
            select(PaperView.paper_id, func.sum(PaperView.views), func.sum(PaperView.clicks))
            .where(
                PaperView.paper_id.in_(ids),
                PaperView.day > (as_of - window).date(),
                PaperView.day <= as_of.date(),
            )
            .group_by(PaperView.paper_id)
        )
        attention[period] = {
            r[0]: {"views": float(r[1]), "clicks": float(r[2])} for r in session.execute(stmt)
        }

    def known(values: dict[str, float]) -> dict[str, float]:
        return {kind: values[kind] for kind in ("upvotes", "github_stars", "comments") if kind in values}

    return [
        Activity(
            paper_id=p.id,
            listed_at=p.listed_at,
            momentum=momentum.get(p.id, 1.0),
            attention={period: counts.get(p.id, {}) for period, counts in attention.items()},
            earlier={period: known(values.get(p.id, {})) for period, values in earlier.items()},
            **known(current.get(p.id, {})),
        )
        for p in papers
    ]


def _baseline_values_at(session: Any, ids: list[str], *, at: datetime) -> dict[str, dict[str, float]]:
    from sqlalchemy import select
    from sqlalchemy.dialects.postgresql import distinct_on

    from papertide.models import PaperSignal

    latest = (
        select(PaperSignal.paper_id, PaperSignal.kind, PaperSignal.value)
        .where(PaperSignal.observed_at <= at, PaperSignal.paper_id.in_(ids))
        .ext(distinct_on(PaperSignal.paper_id, PaperSignal.kind))
        .order_by(PaperSignal.paper_id, PaperSignal.kind, PaperSignal.observed_at.desc())
    )
    values: dict[str, dict[str, float]] = {}
    for row in session.execute(latest):
        values.setdefault(row.paper_id, {})[row.kind] = row.value
    return values


# --- the run -----------------------------------------------------------------------------------


def build(corpus: Corpus, papers: int, per_month: int, *, model: str) -> None:
    start = time.perf_counter()
    span = timedelta(days=30) * (papers / per_month)
    # Embedded days ago by the database's clock (embedded_at is real time, unlike the listing dates).
    embedded = datetime.now(UTC) - timedelta(days=2)
    with bulk_mode():
        load(corpus, new_batch(corpus, papers, newest=AS_OF, span=span), model=model, embedded_at=embedded)
    print(
        f"built {papers:,} papers over {span / timedelta(days=1):.1f} days in {time.perf_counter() - start:.0f}s",
        flush=True,
    )


def add(corpus: Corpus, count: int, *, newest: datetime, span: timedelta, model: str) -> None:
    load(
        corpus, new_batch(corpus, count, newest=newest, span=span), model=model, embedded_at=datetime.now(UTC)
    )
    vacuum()  # what autovacuum does after a load; not measured


def report(steps: list[Step], papers: int) -> None:
    print(f"\n{papers:,} papers")
    print(
        f"{'run':<22}{'topics s':>10}{'trending s':>12}{'job s':>9}{'cpu s':>8}{'rows written':>14}{'topics':>8}"
    )
    for s in steps:
        print(
            f"{s.name:<22}{s.topics:>10.2f}{s.trending:>12.2f}{s.total:>9.2f}{s.cpu:>8.2f}{s.written:>14,}{s.topic_count:>8}"
        )
    base = next(s for s in steps if s.name.startswith("baseline"))
    for s in steps:
        if s is not base:
            print(f"ratio baseline / {s.name}: {base.total / s.total:.1f}x wall, {base.cpu / s.cpu:.1f}x cpu")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--papers", type=int, default=1_000_000)
    parser.add_argument("--per-month", type=int, default=PER_MONTH, help="listing pace (default arXiv's)")
    parser.add_argument("--quick", action="store_true", help="20,000 papers: a smoke run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    papers = 20_000 if args.quick else args.papers
    with tempfile.TemporaryDirectory() as tmp:
        fresh_database(Path(tmp), "bench_score")
        PG_DIR.append((Path(tmp) / "pg").resolve())
        from papertide import embedded_pg
        from papertide.config import get_settings

        model = get_settings().embedding_model
        corpus = Corpus(seed=args.seed)
        build(corpus, papers, args.per_month, model=model)
        steps = [run_score("cold (full fit)", AS_OF)]
        steps.append(run_score("steady (nothing new)", AS_OF + timedelta(minutes=15)))
        day = AS_OF + timedelta(days=1)
        add(corpus, PER_DAY, newest=day, span=timedelta(days=1), model=model)
        steps.append(run_score(f"+day ({PER_DAY:,} new)", day))
        month = day + timedelta(days=30)
        add(corpus, PER_MONTH, newest=month, span=timedelta(days=30), model=model)
        steps.append(run_score(f"+month ({PER_MONTH:,} new)", month))
        steps.append(run_baseline(month))
        embedded_pg.release((Path(tmp) / "pg").resolve())  # stop the server before its folder goes
    report(steps, papers)


if __name__ == "__main__":
    main()
