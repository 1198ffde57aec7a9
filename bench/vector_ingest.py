"""New vectors into a large HNSW index: today's path (every batch inserted into the graph) vs the fresh part.

    .venv/bin/python bench/vector_ingest.py [--papers 1000000] [--new 100000] [--quick]

1. N papers (bare rows) and N vectors, each a real embedding of one of the bundled sample's papers
   (the real model, on this machine) plus Gaussian noise of norm 0.75 (cosine ~0.8 to its source),
   written by the worker's write path (embeddings.repository.write_embeddings, batches of 4,096)
   into a table with no graph yet: the large-backlog case.
2. The graph built once over them (refresh_graph, the worker's step), with the build session sized
   to the machine; on a --default-build-papers subset, the same build with PostgreSQL's defaults
   (maintenance_work_mem 64 MB, 2 parallel workers) and with the sized settings, side by side.
3. Baseline: --baseline-new vectors written as today's code wrote them, into the graph, one batch
   of 4,096 at a time (the same COPY + merge, every row inside the graph's watermark).
4. Ours: --new vectors through write_embeddings, into the fresh part; then nearest() over the
   graph plus the fresh part (latency per fresh size; every new vector is found by its own query).
5. The rebuild that folds the fresh part into the graph (refresh_graph), timed.

Runs on a new embedded PostgreSQL in a temporary DATA_DIR, sized by papertide to the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from ingest import fresh_database  # noqa: E402  (bench/ingest.py: a migrated database on pgserver)

SAMPLE = ROOT / "src/papertide/data/hf_daily_papers.json.gz"
MODEL = "bench-synthetic-384"
BATCH = 4096  # the worker's batch on a GPU (worker/jobs.py)
NOISE = 0.75


class Row(NamedTuple):
    """What write_embeddings reads of a paper."""

    id: str
    text_hash: str


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def real_vectors(limit: int) -> Any:
    """The real model's embeddings of up to `limit` sample papers (unit length, float32)."""
    from papertide.embeddings.encoder import get_encoder, paper_text
    from papertide.ingest.sources import sample

    records = sample.parse_sample(SAMPLE).records[:limit]
    start = time.perf_counter()
    vectors = get_encoder().encode([paper_text(r.title, r.abstract) for r in records])
    log(f"embedded {len(records)} sample papers with the real model in {time.perf_counter() - start:.0f}s")
    return vectors


def synthetic(real: Any, first: int, count: int) -> Any:
    """Vectors first..first+count: real[i % len(real)] + noise, deterministic per index."""
    import numpy as np

    rng = np.random.default_rng(first)
    centres = real[np.arange(first, first + count) % len(real)]
    noise = rng.standard_normal(centres.shape).astype(np.float32) * (NOISE / np.sqrt(real.shape[1]))
    out = centres + noise
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def rows(first: int, count: int) -> list[Row]:
    return [Row(f"bench-{i:08d}", f"h{i}") for i in range(first, first + count)]


def add_papers(total: int) -> None:
    from sqlalchemy import text

    from papertide.db import unit_of_work

    with unit_of_work() as session:
        session.execute(
            text(
                "INSERT INTO paper (id, title, abstract, authors, categories, source, text_hash) "
                "SELECT 'bench-' || lpad(g::text, 8, '0'), 'Paper ' || g, 'About ' || g, '{}', '{}', 'bench', 'h' || g "
                "FROM generate_series(0, :n - 1) AS g"
            ),
            {"n": total},
        )


def write_fresh(real: Any, first: int, count: int) -> float:
    """The worker's write path, one committed batch at a time (from `first`, every BATCH); returns seconds."""
    from papertide.db import unit_of_work
    from papertide.embeddings import repository

    start = time.perf_counter()
    for offset in range(first, first + count, BATCH):
        n = min(BATCH, first + count - offset)
        with unit_of_work() as session:
            repository.write_embeddings(session, rows(offset, n), synthetic(real, offset, n), model=MODEL)
        if (offset - first) % (50 * BATCH) == 0:
            log(f"  written {offset + n - first:,} of {count:,}")
    return time.perf_counter() - start


def batch_starts(first: int, count: int, most: int = 30) -> list[int]:
    """Indexes whose vector synthetic() makes again alone (each batch's first), at most `most` of them."""
    starts = list(range(first, first + count, BATCH))
    return starts[:: max(1, len(starts) // most)]


def write_into_graph(real: Any, first: int, count: int, watermark: datetime) -> float:
    """Today's write: the same COPY + merge, each row inside the graph (as every row was, before)."""
    from pgvector.psycopg import register_vector
    from sqlalchemy import text

    from papertide.db import unit_of_work

    start = time.perf_counter()
    for offset in range(first, first + count, BATCH):
        n = min(BATCH, first + count - offset)
        with unit_of_work() as session:
            session.execute(
                text("CREATE TEMP TABLE IF NOT EXISTS graph_staging (paper_id text, embedding vector)")
            )
            raw: Any = session.connection().connection.driver_connection
            register_vector(raw)
            with raw.cursor() as cursor, cursor.copy("COPY graph_staging FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["text", "vector"])
                for row, vector in zip(rows(offset, n), synthetic(real, offset, n), strict=True):
                    copy.write_row((row.id, vector))
            session.execute(
                text(
                    "INSERT INTO paper_embedding (paper_id, model, dim, text_hash, embedding, embedded_at) "
                    "SELECT paper_id, :model, 384, 'h', embedding, :at FROM graph_staging"
                ),
                {"model": MODEL, "at": watermark},
            )
            session.execute(text("TRUNCATE graph_staging"))
        log(f"  baseline: {offset + n - first:,} of {count:,} in {time.perf_counter() - start:.0f}s")
    return time.perf_counter() - start


def spilled(session: Any) -> list[str]:
    """Collects pgvector's notices on this session's connection: "hnsw graph no longer fits ..."."""
    notices: list[str] = []
    raw: Any = session.connection().connection.driver_connection
    raw.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
    return notices


def refresh() -> tuple[int, float, str]:
    """The worker's step: a new graph over every vector (limit 1: always), dropping the old one."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from papertide.db import get_engine, unit_of_work
    from papertide.embeddings import repository

    start = time.perf_counter()
    with unit_of_work() as session:
        notices = spilled(session)
        built = repository.refresh_graph(session, model=MODEL, dim=384, fresh_limit=1)
    seconds = time.perf_counter() - start
    with get_engine().connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        repository.drop_old_graphs(Session(bind=connection), model=MODEL, dim=384)
        connection.execute(text("CHECKPOINT"))  # the build's WAL written out before the next timing
    return built or 0, seconds, " ".join(notices) or "fits"


def build_subset(papers: int, *, sized: bool) -> tuple[float, str]:
    """A graph over the first `papers` vectors in a transaction rolled back: defaults vs sized settings."""
    from sqlalchemy import text

    from papertide.db import session_factory
    from papertide.embeddings import repository

    with session_factory()() as session:
        notices = spilled(session)
        if sized:
            repository.size_build_session(session, vectors=papers, dim=384)
        else:
            session.execute(text("SET LOCAL maintenance_work_mem = '64MB'"))
            session.execute(text("SET LOCAL max_parallel_maintenance_workers = 2"))
        start = time.perf_counter()
        session.execute(
            text(
                "CREATE INDEX bench_subset ON paper_embedding USING hnsw ((embedding::vector(384)) "
                f"vector_cosine_ops) WHERE paper_id < 'bench-{papers:08d}'"
            )
        )
        seconds = time.perf_counter() - start
        session.rollback()
    return seconds, " ".join(notices) or "fits"


def search_ms(real: Any, probes: list[int], *, k: int = 10) -> tuple[float, float]:
    """Median nearest() time in ms over `probes`, and the share of probes whose own vector came first."""
    from papertide.db import unit_of_work
    from papertide.embeddings import repository

    times, found = [], 0
    with unit_of_work() as session:
        for i in probes:
            vector = synthetic(real, i, 1)[0]
            start = time.perf_counter()
            hits = repository.nearest(session, vector=vector, model=MODEL, limit=k)
            times.append((time.perf_counter() - start) * 1000)
            found += bool(hits) and hits[0][0] == f"bench-{i:08d}"
    return statistics.median(times), found / len(probes)


def settings_line() -> str:
    from sqlalchemy import text

    from papertide.db import unit_of_work

    names = ("shared_buffers", "maintenance_work_mem", "max_parallel_maintenance_workers", "work_mem")
    with unit_of_work() as session:
        return ", ".join(f"{n} {session.scalar(text(f'SHOW {n}'))}" for n in names)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--papers", type=int, default=1_000_000, help="vectors in the graph")
    parser.add_argument("--new", type=int, default=100_000, help="new vectors through the fresh part")
    parser.add_argument("--baseline-new", type=int, default=8192, help="new vectors through today's path")
    parser.add_argument("--default-build-papers", type=int, default=100_000, help="0: skip that comparison")
    parser.add_argument("--real", type=int, default=1219, help="sample papers embedded by the real model")
    parser.add_argument("--quick", action="store_true", help="40k papers, 10k new: a smoke run")
    args = parser.parse_args()
    if args.quick:  # past 28k vectors the default-settings build spills out of 64 MB here too
        args.papers, args.new, args.baseline_new, args.real = 40_000, 10_000, 2048, 200
        args.default_build_papers = 35_000
    log(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    from papertide import db, embedded_pg

    with tempfile.TemporaryDirectory() as tmp:
        fresh_database(Path(tmp), "bench_vectors")
        os.environ.setdefault("PAPERTIDE_SECRET_KEY", "bench")
        try:
            run(args)
        finally:
            db.reset()
            embedded_pg.release((Path(tmp) / "pg").resolve())  # stopped before its directory goes
    log(f"load average {os.getloadavg()[0]:.2f}")


def run(args: argparse.Namespace) -> None:
    from papertide.db import unit_of_work
    from papertide.embeddings import repository

    log(settings_line())
    real = real_vectors(args.real)
    n, new, base = args.papers, args.new, args.baseline_new
    add_papers(n + base + new)
    rates = [("backlog into an empty table (no graph yet), before its one build", n, write_fresh(real, 0, n))]
    log(f"backlog of {n:,} vectors written (no graph) in {rates[0][2]:.0f}s")
    built, build_s, note = refresh()
    builds = [(f"graph built once over the {built:,}-vector backlog, sized session", build_s, note)]
    log(f"{builds[-1]}")
    for sized in (False, True) if args.default_build_papers else ():
        label = "sized session" if sized else "PostgreSQL's defaults (64 MB, 2 workers)"
        builds.append(
            (
                f"{args.default_build_papers:,}-vector graph, {label}",
                *build_subset(args.default_build_papers, sized=sized),
            )
        )
        log(f"{builds[-1]}")
    with unit_of_work() as session:
        graph = repository.graph_of(session, model=MODEL, dim=384)
    assert graph is not None
    today = (
        "today: each batch inserted into the graph",
        base,
        write_into_graph(real, n, base, graph.watermark),
    )
    searches = [("0", *search_ms(real, batch_starts(0, n)))]
    written, write_s, probes = 0, 0.0, []
    for size in sorted({m for m in (5_000, 20_000, 50_000) if m < new} | {new}):
        write_s += write_fresh(real, n + base + written, size - written)
        probes += batch_starts(n + base + written, size - written)
        written = size
        searches.append((f"{size:,}", *search_ms(real, probes[:: max(1, len(probes) // 30)])))
        log(f"fresh part of {size:,}: nearest() {searches[-1][1]:.1f} ms")
    ours = ("ours: each batch into the fresh part (searched exactly until the rebuild)", new, write_s)
    rebuilt, rebuild_s, note = refresh()
    builds.append(
        (f"rebuild folding {new:,} fresh vectors in ({rebuilt:,} in the new graph)", rebuild_s, note)
    )
    searches.append(("0 (after the rebuild)", *search_ms(real, probes[:: max(1, len(probes) // 30)])))
    report(n, [today, ours, *rates], builds, searches)


def report(
    n: int,
    rates: list[tuple[str, int, float]],
    builds: list[tuple[str, float, str]],
    searches: list[tuple[str, float, float]],
) -> None:
    print(f"\n### {n:,} vectors in the graph, 384-d, batches of {BATCH:,}\n")
    print("| path | vectors | seconds | vectors/s |\n|---|---:|---:|---:|")
    for label, count, seconds in rates:
        print(f"| {label} | {count:,} | {seconds:.1f} | {count / seconds:,.0f} |")
    today, ours = (count / seconds for _, count, seconds in rates[:2])
    print(f"\nratio ours / today: {ours / today:.0f}x\n")
    print("| build | seconds | graph in maintenance_work_mem |\n|---|---:|---|")
    for label, seconds, note in builds:
        print(f"| {label} | {seconds:.0f} | {note} |")
    print("\n| fresh vectors | nearest() median ms | own vector first |\n|---:|---:|---:|")
    for label, ms, found in searches:
        print(f"| {label} | {ms:.1f} | {found:.0%} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
