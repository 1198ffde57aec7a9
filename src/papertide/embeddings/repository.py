"""SQL for claiming papers that need an embedding, writing the vectors, and each model's index.

One HNSW graph per embedding model: vectors carry their model, the index follows the model in use.
pgvector indexes need a fixed dimension, and the column holds any (migration 0005), so each model
gets a partial expression index, `((embedding::vector(DIM)) vector_cosine_ops) WHERE model = NAME`.

A vector written into an HNSW graph costs a search of the graph and updates of its neighbours:
about 100 vectors a second into a million-vector graph on a 2-core machine (docs/benchmarks.md),
far below a GPU worker's thousands. So a graph holds the vectors embedded up to its watermark
(`AND embedded_at <= W` in the index's predicate), and later writes land "fresh": in the table and
a small btree over them, never in the graph, at COPY speed. Search (`nearest`) walks the graph and
scans the fresh part exactly, so a vector is found the moment its transaction commits. Once the
fresh part reaches EMBEDDING_FRESH_LIMIT the worker builds a new graph over everything
(`refresh_graph`) and drops the old one (`drop_old_graphs`): one bulk build, sized to the graph,
instead of one insert at a time, which also makes a large backlog (a first embedding run, a bulk
load) one build at its end. The watermark is in the index's name:
`ix_paper_embedding_hnsw_<model digest>_<microseconds since 1970>`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from pgvector.psycopg import register_vector
from sqlalchemy import func, or_, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from papertide import bulk
from papertide.models import Paper, PaperEmbedding

# What pgvector's build needs per vector beyond its values (neighbour lists, element headers):
# measured as 64 MB filling up after 28,365 384-d vectors, 2,366 bytes each (issue 10).
_GRAPH_BYTES_PER_VECTOR = 1024
# pgvector's m (neighbours per node) stays at its default; ef_construction (how widely a build
# searches for each node's neighbours) goes from 64 to 128. On 200,000 of the 1M bench's vectors
# (bench/search_scale.py --compare-graphs): recall@10 at ef_search 200 0.906 -> 0.954 for a build
# 1.8x as long; 200 gave 0.974 at 2.7x, and m 24 gave less than 16 at the same ef_construction.
GRAPH_M = 16
GRAPH_EF_CONSTRUCTION = 128
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
log = logging.getLogger(__name__)
_made: set[tuple[str, str, int]] = set()


def vector_bytes(vector: Any) -> Any:
    """A vector column read in pgvector's binary form (vector_send): a 384-d vector as text is
    parsed number by number in Python, ten times the CPU of these bytes (a digest run loads
    thousands: its candidates and its background sample). `from_vector_bytes` reads them."""
    return func.vector_send(vector)


def from_vector_bytes(data: bytes) -> np.ndarray[Any, Any]:
    """vector_send's bytes as float32: a 16-bit dimension, 16 unused bits, big-endian float4s."""
    return np.frombuffer(data, dtype=">f4", offset=4).astype(np.float32)


@dataclass(frozen=True)
class Graph:
    """A model's HNSW index: it holds the model's vectors embedded at or before `watermark`."""

    name: str
    watermark: datetime


def index_name(model: str, dim: int) -> str:
    """The prefix of every graph's name of `model` at `dim`; the whole name of the index made before watermarks."""
    digest = hashlib.sha1(f"{model}:{dim}".encode()).hexdigest()[:12]
    return f"ix_paper_embedding_hnsw_{digest}"


def graph_of(session: Session, *, model: str, dim: int) -> Graph | None:
    """The model's newest valid graph, or None (none built yet, or only an index from before watermarks)."""
    prefix = index_name(model, dim) + "_"
    name = session.scalar(
        text(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'paper_embedding'::regclass AND i.indisvalid AND starts_with(c.relname, :prefix) "
            "ORDER BY c.relname DESC LIMIT 1"
        ),
        {"prefix": prefix},
    )
    if name is None:
        return None
    return Graph(name=name, watermark=_EPOCH + timedelta(microseconds=int(name[len(prefix) :])))


def ensure_index(session: Session, *, model: str, dim: int) -> None:
    """Build the model's graph if it has none; cheap after the first call in a process."""
    key = (str(session.connection().engine.url), model, dim)
    if key in _made or graph_of(session, model=model, dim=dim) is not None:
        _made.add(key)
        return
    # Workers that start together would both build; the lock makes the second wait for the
    # first's commit, then find the graph there.
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": _lock_key(model)})
    if graph_of(session, model=model, dim=dim) is None:
        _build(session, model=model, dim=dim)
    _made.add(key)


def fresh_count(session: Session, *, model: str, graph: Graph, limit: int) -> int:
    """How many of the model's vectors came after `graph` was built, counted up to `limit`."""
    fresh = (
        select(PaperEmbedding.paper_id)
        .where(PaperEmbedding.model == model, PaperEmbedding.embedded_at > graph.watermark)
        .limit(limit)
    )
    return session.scalar(select(func.count()).select_from(fresh.subquery())) or 0


def refresh_graph(session: Session, *, model: str, dim: int, fresh_limit: int) -> int | None:
    """Rebuild the model's graph if its fresh part reached `fresh_limit` (or it has none).

    Returns the vectors the new graph holds, or None when nothing was built: no need, or another
    worker is building it now (it is not waited for). One transaction, so a worker killed midway
    leaves the old graph and the fresh part as they were, and the next pass builds again."""
    graph = graph_of(session, model=model, dim=dim)
    if graph is not None and fresh_count(session, model=model, graph=graph, limit=fresh_limit) < fresh_limit:
        return None
    locked = session.scalar(
        text("SELECT pg_try_advisory_xact_lock(hashtext(:key))"), {"key": _lock_key(model)}
    )
    if not locked or graph_of(session, model=model, dim=dim) != graph:
        return None  # building now, or just built, by another worker
    return _build(session, model=model, dim=dim)


def _build(session: Session, *, model: str, dim: int) -> int:
    """A new graph over every vector of the model there is (drop_old_graphs drops the older). Returns its size."""
    # SHARE: searches go on (on the old graph), writers wait; nothing is written while it builds,
    # so the watermark is exactly the newest vector the graph holds.
    session.execute(text("LOCK TABLE paper_embedding IN SHARE MODE"))
    stats = session.execute(
        select(func.count(), func.max(PaperEmbedding.embedded_at)).where(PaperEmbedding.model == model)
    ).one()
    count, watermark = int(stats[0]), stats[1] or _EPOCH
    size_build_session(session, vectors=count, dim=dim)
    usec = (watermark - _EPOCH) // timedelta(microseconds=1)
    name, stamp = f"{index_name(model, dim)}_{usec:016d}", f"'{watermark.isoformat()}'::timestamptz"
    literal = model.replace("'", "''")  # DDL takes no bind parameters; the name is quoted as a literal
    _create_graph(
        session,
        f'CREATE INDEX "{name}" ON paper_embedding USING hnsw ((embedding::vector({int(dim)})) '
        f"vector_cosine_ops) WITH (m = {GRAPH_M}, ef_construction = {GRAPH_EF_CONSTRUCTION}) "
        f"WHERE model = '{literal}' AND embedded_at <= {stamp}",
    )
    session.execute(
        text(
            f'CREATE INDEX "{_fresh_name(name)}" ON paper_embedding (embedded_at) '
            f"WHERE model = '{literal}' AND embedded_at > {stamp}"
        )
    )
    return count


def _create_graph(session: Session, ddl: str) -> None:
    """Run the graph's CREATE INDEX; again without parallel workers if their shared memory ran out."""
    try:
        with session.begin_nested():
            session.execute(text(ddl))
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) not in ("53100", "53200"):  # disk_full, out_of_memory
            raise
        # A parallel build keeps the graph in dynamic shared memory (/dev/shm), as large as
        # maintenance_work_mem, and a container's is 64 MB unless given more: "could not resize
        # shared memory segment". One process builds in its own memory instead, more slowly.
        log.warning("parallel HNSW build out of shared memory (%s); building without workers", error.orig)
        session.execute(text("SELECT set_config('max_parallel_maintenance_workers', '0', true)"))
        session.execute(text(ddl))


def drop_old_graphs(session: Session, *, model: str, dim: int) -> list[str]:
    """Drop the model's graphs older than its newest (and their fresh btrees); the session must autocommit.

    Search uses the newest graph from its commit on. DROP INDEX CONCURRENTLY waits for searches
    still on an old one without holding up new ones (a plain DROP would queue every search behind
    it); one it cannot finish within the lock timeout stays for the next run."""
    newest = graph_of(session, model=model, dim=dim)
    if newest is None:
        return []  # an index from before watermarks serves until a graph replaces it
    dropped = []
    session.execute(text("SELECT set_config('lock_timeout', '30s', false)"))
    try:
        for name in _graphs(session, model=model, dim=dim):
            if name != newest.name:
                session.execute(text(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"'))
                session.execute(text(f'DROP INDEX CONCURRENTLY IF EXISTS "{_fresh_name(name)}"'))
                dropped.append(name)
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) != "55P03":  # lock_not_available
            raise
    finally:
        session.execute(text("RESET lock_timeout"))
    return dropped


def size_build_session(session: Session, *, vectors: int, dim: int) -> None:
    """Give this transaction's index build the memory its graph needs and the server's parallel workers.

    Past maintenance_work_mem pgvector goes on inserting one vector at a time ("hnsw graph no
    longer fits into maintenance_work_mem"), several times slower. The need is bounded by half the
    server's effective_cache_size, the server's own word for its memory; never below the setting."""
    need = vectors * (4 * dim + _GRAPH_BYTES_PER_VECTOR) + 64 * 1024 * 1024
    session.execute(
        text(
            "SELECT set_config('maintenance_work_mem', greatest("
            "  pg_size_bytes(current_setting('maintenance_work_mem')),"
            "  least(CAST(:need AS bigint), pg_size_bytes(current_setting('effective_cache_size')) / 2)"
            ") / 1024 || 'kB', true),"
            " set_config('max_parallel_maintenance_workers', greatest("
            "  current_setting('max_parallel_maintenance_workers')::int,"
            "  current_setting('max_parallel_workers')::int - 1)::text, true)"
        ),
        {"need": need},
    )


def _graphs(session: Session, *, model: str, dim: int) -> list[str]:
    """Every graph index of the model, the one from before watermarks included, valid or not."""
    return list(
        session.scalars(
            text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'paper_embedding' "
                "AND (indexname = :name OR starts_with(indexname, :name || '_'))"
            ),
            {"name": index_name(model, dim)},
        )
    )


def _fresh_name(graph_name: str) -> str:
    return graph_name.replace("_hnsw_", "_fresh_", 1)


def _lock_key(model: str) -> str:
    return f"papertide:embedding-index:{model}"


def nearest(
    session: Session, *, vector: Any, model: str, limit: int, exclude: str | None = None
) -> list[tuple[str, float]]:
    """(paper_id, cosine similarity) of the `limit` nearest vectors of `model`: the graph's, by HNSW,
    and the fresh part's, exactly (a vector counts from its commit on)."""
    dim = len(vector)
    # ef_search bounds how many candidates HNSW returns; raise it past the page size.
    session.execute(text("SELECT set_config('hnsw.ef_search', :ef, true)"), {"ef": str(max(100, limit * 2))})
    query = "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"
    params = {"query": query, "model": model, "limit": limit + (1 if exclude else 0)}
    graph = graph_of(session, model=model, dim=dim)
    rows = session.execute(text(nearest_sql(dim=dim, graph=graph)), params)
    found = [(r.paper_id, float(r.similarity)) for r in rows]
    return [row for row in found if row[0] != exclude][:limit]


def nearest_sql(*, dim: int, graph: Graph | None) -> str:
    """The nearest-vectors statement (binds :query, :model, :limit) for the model's current graph.

    Each branch repeats the index's own cast and predicate, so the planner proves the partial index
    applies: the graph branch walks the HNSW graph, the fresh branch reads the fresh btree and
    ranks those few rows exactly. With no graph (none yet, or one from before watermarks) one scan
    serves, by that index if there is one."""
    distance = f"embedding::vector({int(dim)}) <=> CAST(:query AS vector({int(dim)}))"
    part = (
        "(SELECT paper_id, {d} AS distance FROM paper_embedding WHERE model = :model{where} "
        "ORDER BY {d} LIMIT :limit)"
    )
    if graph is None:
        branches = part.format(d=distance, where="")
    else:
        stamp = f"'{graph.watermark.isoformat()}'::timestamptz"
        branches = (
            part.format(d=distance, where=f" AND embedded_at <= {stamp}")
            + " UNION ALL "
            + part.format(d=distance, where=f" AND embedded_at > {stamp}")
        )
    return f"SELECT paper_id, 1 - distance AS similarity FROM ({branches}) AS near ORDER BY distance LIMIT :limit"


def _stale(model: str) -> Any:
    return or_(
        PaperEmbedding.paper_id.is_(None),
        PaperEmbedding.model != model,
        PaperEmbedding.text_hash != Paper.text_hash,
    )


def count_stale(session: Session, *, model: str) -> int:
    """Papers with no embedding from `model` for their current text."""
    stmt = (
        select(func.count())
        .select_from(Paper)
        .outerjoin(PaperEmbedding, PaperEmbedding.paper_id == Paper.id)
        .where(_stale(model))
    )
    return session.scalar(stmt) or 0


def claim_stale(session: Session, *, model: str, limit: int) -> list[Paper]:
    """Lock up to `limit` stale papers; rows another worker holds are skipped, not waited for."""
    locked = (
        select(Paper.id)
        .outerjoin(PaperEmbedding, PaperEmbedding.paper_id == Paper.id)
        .where(_stale(model))
        .order_by(Paper.announced_at.desc().nulls_last(), Paper.id)
        .limit(limit)
        .with_for_update(of=Paper, skip_locked=True)
    )
    while ids := list(session.scalars(locked)):
        if papers := _still_stale(session, ids, model=model):
            return papers
    return []


def _still_stale(session: Session, ids: list[str], *, model: str) -> list[Paper]:
    # A worker that committed just before we took the locks wrote paper_embedding, not paper, so
    # Postgres' recheck of the locked paper rows still saw them stale. Ask again with a fresh
    # snapshot (READ COMMITTED) and keep only what is still stale, or it would be embedded twice.
    fresh = (
        select(Paper)
        .outerjoin(PaperEmbedding, PaperEmbedding.paper_id == Paper.id)
        .where(Paper.id.in_(ids), _stale(model))
        .order_by(Paper.announced_at.desc().nulls_last(), Paper.id)
    )
    return list(session.scalars(fresh))  # empty: all were just embedded elsewhere; claim the next ones


_CREATE_STAGING = text(
    "CREATE TEMP TABLE IF NOT EXISTS embedding_staging "
    "(paper_id text, model text, dim int4, text_hash text, embedding vector) ON COMMIT DELETE ROWS"
)
_MERGE = text(
    """
    INSERT INTO paper_embedding (paper_id, model, dim, text_hash, embedding, embedded_at)
    SELECT paper_id, model, dim, text_hash, embedding, now() FROM embedding_staging
    ON CONFLICT (paper_id) DO UPDATE SET model = excluded.model, dim = excluded.dim,
        text_hash = excluded.text_hash, embedding = excluded.embedding, embedded_at = excluded.embedded_at
    """
)


def write_embeddings(
    session: Session, papers: Sequence[Paper], vectors: np.ndarray[Any, Any], *, model: str
) -> None:
    """Upsert one vector per paper, tagged with the model and the hash of the text it came from.

    One binary COPY into a staging table and one merge: a GPU worker writes thousands of vectors a
    second, more than row-by-row inserts of 384 numbers as text keep up with. The rows land after
    the graph's watermark (embedded_at is now()), in the fresh part: no HNSW insert.
    """
    dim = int(vectors.shape[1])
    session.execute(_CREATE_STAGING)
    register_vector(bulk.driver_connection(session))  # numpy arrays written as pgvector's binary form
    bulk.copy_rows(
        session,
        "embedding_staging",
        ("paper_id", "model", "dim", "text_hash", "embedding"),
        ("text", "text", "int4", "text", "vector"),
        (
            (paper.id, model, dim, paper.text_hash, vector)
            for paper, vector in zip(papers, vectors, strict=True)
        ),
    )
    session.execute(_MERGE)
