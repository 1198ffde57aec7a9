"""The model's HNSW graph and its fresh part: new vectors are searchable at once without entering the
graph one at a time; a backlog is indexed by one build at its end; builds are sized and never doubled."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from papertide.config import get_settings
from papertide.db import session_factory
from papertide.embeddings import repository
from papertide.embeddings.encoder import paper_text
from papertide.worker import jobs
from tests.factories import FakeEncoder, make_paper

MODEL = FakeEncoder.name


def graph(session: Session) -> repository.Graph | None:
    session.rollback()  # a fresh snapshot: workers committed in other sessions
    return repository.graph_of(session, model=MODEL, dim=FakeEncoder.dim)


def in_graph(session: Session, found: repository.Graph) -> int:
    """How many vectors the graph index holds (its predicate, counted)."""
    count = session.scalar(
        text(
            f"SELECT count(*) FROM paper_embedding WHERE model = :m AND embedded_at <= '{found.watermark.isoformat()}'"
        ),
        {"m": MODEL},
    )
    session.rollback()  # no lock left on the table: a worker's DROP INDEX CONCURRENTLY would wait for it
    return count or 0


def hnsw_indexes(session: Session) -> list[str]:
    return list(
        session.scalars(
            text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'paper_embedding' AND indexdef ILIKE '%hnsw%'"
            )
        )
    )


def nearest_id(session: Session, encoder: FakeEncoder, title: str, abstract: str) -> str:
    vector = encoder.encode([paper_text(title, abstract)])[0]
    return repository.nearest(session, vector=vector, model=MODEL, limit=1)[0][0]


@pytest.fixture
def fresh_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """A limit a test reaches with a handful of papers."""
    monkeypatch.setenv("PAPERTIDE_EMBEDDING_FRESH_LIMIT", "4")
    get_settings.cache_clear()
    return 4


def test_a_new_vector_is_found_the_moment_its_batch_commits_without_entering_the_graph(
    session: Session, fake_encoder: FakeEncoder, fresh_limit: int
) -> None:
    for n in range(4):
        make_paper(session, title=f"Graph paper {n}", abstract=f"Older work on topic {n}.")
    session.commit()
    jobs.embed(encoder=fake_encoder, batch_size=8)
    before = graph(session)
    assert before is not None
    assert in_graph(session, before) == 4

    new = make_paper(session, title="Speech synthesis with diffusion", abstract="Neural text to speech.")
    session.commit()
    jobs.embed(encoder=fake_encoder, batch_size=8)

    assert graph(session) == before, "one fresh vector, under the limit: no rebuild"
    assert in_graph(session, before) == 4, "the new vector is not in the graph"
    assert nearest_id(session, fake_encoder, new.title, new.abstract) == new.id


@pytest.fixture
def one_graph(session: Session, fake_encoder: FakeEncoder) -> repository.Graph:
    """One paper embedded by the worker's job, which builds the graph over it."""
    make_paper(session)
    session.commit()
    jobs.embed(encoder=fake_encoder, batch_size=8)
    found = graph(session)
    assert found is not None
    return found


def test_search_walks_the_graph_and_reads_the_fresh_part_by_its_index(
    session: Session, one_graph: repository.Graph
) -> None:
    found = one_graph
    query = "[" + ",".join(["0.05"] * 384) + "]"
    session.execute(
        text("SET LOCAL enable_seqscan = off")
    )  # a handful of rows: make the planner show its index choice

    plan = "\n".join(
        session.scalars(
            text("EXPLAIN " + repository.nearest_sql(dim=384, graph=found)),
            {"query": query, "model": MODEL, "limit": 10},
        )
    )

    assert f"Index Scan using {found.name}" in plan
    assert "Index Scan using ix_paper_embedding_fresh_" in plan


def test_the_graph_is_built_to_search_widely_for_neighbours(
    session: Session, one_graph: repository.Graph
) -> None:
    # ef_construction 128, not pgvector's 64: recall@10 0.91 -> 0.95 on 200,000 of the bench's vectors.
    options = session.scalar(
        text("SELECT reloptions FROM pg_class WHERE relname = :name"), {"name": one_graph.name}
    )

    assert sorted(options) == ["ef_construction=128", "m=16"]


def test_a_large_backlog_is_embedded_first_and_indexed_by_one_build_at_its_end(
    session: Session, fresh_limit: int
) -> None:
    papers = [make_paper(session, title=f"Backlog paper {n}", abstract=f"Abstract {n}.") for n in range(12)]
    session.commit()
    graphs_seen: list[repository.Graph | None] = []

    class Watching(FakeEncoder):
        def encode(self, texts: list[str]) -> np.ndarray[Any, Any]:
            with session_factory()() as other:
                graphs_seen.append(repository.graph_of(other, model=MODEL, dim=self.dim))
            return super().encode(texts)

    assert jobs.embed(encoder=Watching(), batch_size=4) == 12

    after = graph(session)
    assert after is not None
    assert len(graphs_seen) == 3
    assert len(set(graphs_seen)) == 1, "no build between the batches"
    assert graphs_seen[0] != after, "one build at the end"
    assert in_graph(session, after) == 12, "the graph holds the whole backlog"
    assert hnsw_indexes(session) == [after.name], "the empty graph from the start is gone"
    assert nearest_id(session, FakeEncoder(), papers[7].title, papers[7].abstract) == papers[7].id


def test_a_build_a_killed_worker_left_undone_is_done_by_the_next_run(
    session: Session, fresh_limit: int
) -> None:
    from papertide.embeddings import service

    for n in range(8):
        make_paper(session, title=f"Paper {n}", abstract=f"Abstract {n}.")
    session.commit()
    encoder = FakeEncoder()
    # A worker that embedded everything and was killed before its end-of-run build.
    with session_factory()() as worker:
        service.ensure_index(worker, encoder=encoder)
        worker.commit()
        while service.embed_batch(worker, encoder=encoder, batch_size=3):
            worker.commit()
    empty = graph(session)
    assert empty is not None
    assert in_graph(session, empty) == 0

    assert jobs.embed(encoder=encoder, batch_size=3) == 0, "nothing left to embed"

    rebuilt = graph(session)
    assert rebuilt is not None
    assert rebuilt != empty
    assert in_graph(session, rebuilt) == 8


def test_a_second_worker_does_not_wait_for_or_repeat_a_build_in_progress(
    session: Session, fake_encoder: FakeEncoder
) -> None:
    for n in range(3):
        make_paper(session, title=f"Paper {n}", abstract=f"Abstract {n}.")
    session.commit()
    jobs.embed(encoder=fake_encoder, batch_size=8)
    first = graph(session)
    assert first is not None
    results: dict[str, int | None] = {}

    with session_factory()() as building:
        results["a"] = repository.refresh_graph(building, model=MODEL, dim=384, fresh_limit=0)
        # Worker B asks while A's build is uncommitted: it returns at once, building nothing.
        thread = threading.Thread(target=lambda: results.update(b=_refresh_in_own_session(fresh_limit=0)))
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the second worker waited for the first"
        building.commit()

    assert results == {"a": 3, "b": None}
    built = graph(session)
    assert built is not None
    assert built != first
    assert sorted(hnsw_indexes(session)) == sorted([first.name, built.name])
    session.rollback()
    jobs.embed(encoder=fake_encoder, batch_size=8)
    assert hnsw_indexes(session) == [built.name], "the next run drops the graph it replaced"


def _refresh_in_own_session(*, fresh_limit: int) -> int | None:
    with session_factory()() as other:
        built = repository.refresh_graph(other, model=MODEL, dim=384, fresh_limit=fresh_limit)
        other.commit()
    return built


def test_an_index_from_before_watermarks_serves_until_a_graph_replaces_it(
    session: Session, fake_encoder: FakeEncoder
) -> None:
    paper = make_paper(session, title="Protein folding", abstract="Structures of proteins.")
    session.commit()
    vector = fake_encoder.encode([paper_text(paper.title, paper.abstract)])
    repository.write_embeddings(session, [paper], vector, model=MODEL)  # writes build no index
    legacy = repository.index_name(MODEL, 384)
    session.execute(
        text(
            f'CREATE INDEX "{legacy}" ON paper_embedding USING hnsw ((embedding::vector(384)) vector_cosine_ops) '
            f"WHERE model = '{MODEL}'"
        )
    )
    session.commit()

    assert graph(session) is None
    assert nearest_id(session, fake_encoder, paper.title, paper.abstract) == paper.id
    session.rollback()
    jobs.embed(encoder=fake_encoder, batch_size=8)

    replaced = graph(session)
    assert replaced is not None
    assert hnsw_indexes(session) == [replaced.name]
    assert in_graph(session, replaced) == 1


def test_the_build_session_gets_the_graphs_memory_and_the_servers_workers(tx_session: Session) -> None:
    def show(name: str) -> int:
        return int(tx_session.scalar(text(f"SELECT pg_size_bytes(current_setting('{name}'))")) or 0)

    server_default = show("maintenance_work_mem")
    cache = show("effective_cache_size")

    repository.size_build_session(tx_session, vectors=100_000, dim=384)
    graph_sized = show("maintenance_work_mem")
    repository.size_build_session(tx_session, vectors=10_000_000, dim=384)
    bounded = show("maintenance_work_mem")
    workers = tx_session.scalar(text("SELECT current_setting('max_parallel_maintenance_workers')::int"))
    server_workers = tx_session.scalar(text("SELECT current_setting('max_parallel_workers')::int"))

    assert graph_sized == 100_000 * (4 * 384 + 1024) + 64 * 1024 * 1024 > server_default
    assert bounded == cache // 2, "never more than half of what the server says it has"
    assert workers == (server_workers or 0) - 1


def test_a_build_short_of_shared_memory_for_parallel_workers_builds_without_them(
    session: Session, fake_encoder: FakeEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    # A parallel build asks /dev/shm for its whole maintenance_work_mem (here 2 TB, more than any
    # machine has) as a Docker container's 64 MB falls short of a real one's: PostgreSQL says
    # "could not resize shared memory segment". The worker's build must still end in a graph.
    for n in range(20):
        make_paper(session, title=f"Paper {n}", abstract=f"Abstract {n}.")
    session.commit()
    jobs.embed(encoder=fake_encoder, batch_size=32)
    session.rollback()
    with session_factory()() as worker:
        worker.execute(text("SET LOCAL min_parallel_table_scan_size = 0"))  # a tiny table gets workers too
        worker.execute(text("SET LOCAL max_parallel_maintenance_workers = 2"))
        worker.execute(text("SET LOCAL maintenance_work_mem = '2147483647kB'"))
        built = repository.refresh_graph(worker, model=MODEL, dim=384, fresh_limit=1)
        worker.commit()

    rebuilt = graph(session)
    assert "building without workers" in caplog.text, "the parallel build did run out"
    assert built == 20
    assert rebuilt is not None
    assert in_graph(session, rebuilt) == 20
