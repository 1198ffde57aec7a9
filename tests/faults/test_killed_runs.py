"""kill -9 of `papertide ingest`, `embed` and `worker` at seeded random points, then a clean rerun:
every paper stored once and as a clean load stores it, every paper embedded once from its current
text, and every killed run shows `abandoned` after the next run, never `running` (issue 8)."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.config import DEFAULT_EMBEDDING_MODEL
from papertide.embeddings.encoder import paper_text
from papertide.embeddings.repository import count_stale
from papertide.models import JobRun, JobStatus, Paper, PaperEmbedding
from papertide.papers.schemas import text_hash
from tests.conftest import TEMPLATE_DB
from tests.factories import make_paper
from tests.faults.processes import (
    Zygote,
    cli_env,
    database_activity,
    empty_database,
    libpq_url,
    log_tail,
    run_cli,
    start_cli,
    stop_cli,
)
from tests.helpers import wait_until

pytestmark = pytest.mark.slow
TRIALS = 20  # per command, each with its own seeded kill point
Embeddings = dict[str, tuple[str, datetime]]


@pytest.fixture(scope="module")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    """One warm process (model loaded) that forks each killed command."""
    log = tmp_path_factory.mktemp("zygote") / "zygote.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
    warm = Zygote({**env, "HF_HUB_OFFLINE": "1"}, log)
    yield warm
    warm.close()


@dataclass
class Kills:
    """Each kill's process, and the run records it left `running` (those must become `abandoned`)."""

    pids: list[int] = field(default_factory=list)
    mid_run: list[int] = field(default_factory=list)

    def assert_abandoned(self, session: Session) -> None:
        statuses = dict(_rows(session, select(JobRun.id, JobRun.status).where(JobRun.id.in_(self.mid_run))))
        assert set(statuses.values()) <= {JobStatus.ABANDONED}, statuses


def _rows(session: Session, stmt: Any) -> list[Any]:
    """What is committed now; no transaction is left open."""
    try:
        return list(session.execute(stmt).all())
    finally:
        session.rollback()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def kill_somewhere(
    zygote: Zygote,
    session: Session,
    args: list[str],
    env: dict[str, str],
    log: Path,
    *,
    kills: Kills,
    rng: random.Random,
    window: float,
) -> None:
    """Start `papertide ARGS`, wait for its first run record, SIGKILL it after a seeded delay in [0, window)."""
    pid = zygote.start(args, env, log)
    runs_of = select(JobRun.id, JobRun.status).where(JobRun.pid == pid)
    try:
        wait_until(
            lambda: _rows(session, runs_of),
            timeout=60,
            what=f"{args[0]} to start",
            alive=lambda: _alive(pid),
            diagnose=lambda: f"{zygote.stacks(pid, log)}\n{database_activity(env['PAPERTIDE_DATABASE_URL'])}",
        )
    except BaseException:
        os.kill(pid, signal.SIGKILL)  # a stuck child would outlive the test, holding what it holds
        zygote.wait(pid)
        raise
    kills.assert_abandoned(session)  # the earlier kills' runs: this run's start marked them
    time.sleep(rng.uniform(0, window))
    os.kill(pid, signal.SIGKILL)
    assert zygote.wait(pid) in (-signal.SIGKILL, 0), log.read_text()[-3000:]  # 0: it had ended
    kills.pids.append(pid)
    kills.mid_run += [run_id for run_id, status in _rows(session, runs_of) if status == JobStatus.RUNNING]


def assert_nothing_left_running(session: Session, kills: Kills) -> None:
    """After a clean run: no record is `running`, and each one a kill interrupted is `abandoned`."""
    running = select(JobRun.id, JobRun.job, JobRun.pid, JobRun.started_at, JobRun.heartbeat_at)
    left = _rows(session, running.where(JobRun.status == JobStatus.RUNNING))
    assert left == [], f"still running: {left}; the killed processes: {kills.pids}"
    kills.assert_abandoned(session)
    assert kills.mid_run, "at least one kill landed while a run was going on"


# --- ingest -----------------------------------------------------------------------------------


def _jsonl_files(directory: Path) -> list[Path]:
    """Four overlapping files of 300 records; a record is the same in every file that has it."""
    files = []
    for k in range(4):
        path = directory / f"papers-{k}.jsonl"
        records = [
            {
                "id": f"2612.{n:05d}",
                "title": f"Fault-tolerant paper {n}",
                "abstract": f"We study failure mode {n} and how a loader survives it. " * (1 + n % 3),
                "authors": [f"Author {n}", "B. Second"],
                "categories": ["cs.DC", "cs.DB"][: 1 + n % 2],
                "published_at": f"2026-11-{1 + n % 25:02d}T00:00:00Z",
            }
            for n in range(k * 150, k * 150 + 300)
        ]
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
        files.append(path)
    return files


def _stored_papers(url: str) -> list[tuple[Any, ...]]:
    """Every paper as stored, without the times of the load itself."""
    with psycopg.connect(libpq_url(url)) as conn:
        papers = conn.execute(
            "SELECT id, title, abstract, authors, categories, published_at, updated_at, announced_at,"
            " announce_type, version, abs_url, pdf_url, code_url, project_url, source, text_hash"
            " FROM paper ORDER BY id"
        ).fetchall()
        signals = conn.execute("SELECT paper_id, kind, value FROM paper_signal ORDER BY 1, 2").fetchall()
        queued = conn.execute("SELECT paper_id FROM keyword_pending ORDER BY 1").fetchall()
    return [*papers, ("signals", *signals), ("queued for the keyword index", *queued)]


def test_killed_ingests_store_every_paper_once_as_a_clean_load_does(
    zygote: Zygote, database: str, session: Session, pg_admin_uri: str, tmp_path: Path
) -> None:
    rng, kills, log = random.Random(8), Kills(), tmp_path / "ingest.log"
    files = _jsonl_files(tmp_path)
    env = cli_env(database, tmp_path / "data")

    for trial in range(TRIALS):
        args = ["ingest", "jsonl", str(files[trial % len(files)])]
        kill_somewhere(zygote, session, args, env, log, kills=kills, rng=rng, window=1.0)
    for path in files:
        run_cli(["ingest", "jsonl", str(path)], env, log)  # a real process, to the end

    assert_nothing_left_running(session, kills)
    with empty_database(pg_admin_uri, template=TEMPLATE_DB) as clean:
        clean_env = cli_env(clean, tmp_path / "clean")
        for path in files:
            assert zygote.wait(zygote.start(["ingest", "jsonl", str(path)], clean_env, log)) == 0
        expected = _stored_papers(clean)
    assert len(expected) == 750 + 2
    assert _stored_papers(database) == expected


# --- embed and worker -------------------------------------------------------------------------


def _add_work(session: Session, rng: random.Random) -> None:
    """New papers to embed, and two whose text changed (their embedding is stale)."""
    for _ in range(14):
        make_paper(session, abstract=f"An abstract about {rng.choice(['graphs', 'proteins', 'speech'])}.")
    for paper in rng.sample(list(session.scalars(select(Paper))), 2):
        paper.abstract = f"{paper.abstract} Revised {rng.random():.6f}."
        paper.text_hash = text_hash(paper.title, paper.abstract)
    session.commit()


def _embeddings(session: Session) -> tuple[Embeddings, dict[str, str]]:
    """Each embedding's text hash and time, and each paper's current text hash."""
    embedded = {
        pid: (h, at)
        for pid, h, at in _rows(
            session, select(PaperEmbedding.paper_id, PaperEmbedding.text_hash, PaperEmbedding.embedded_at)
        )
    }
    return embedded, dict(_rows(session, select(Paper.id, Paper.text_hash)))


def _stale(session: Session) -> int:
    try:
        return count_stale(session, model=DEFAULT_EMBEDDING_MODEL)
    finally:
        session.rollback()


def assert_not_embedded_twice(before: tuple[Embeddings, dict[str, str]], session: Session) -> None:
    """An embedding that was current stays as it was: nobody embedded that text again."""
    (embedded, texts), (after, _) = before, _embeddings(session)
    again = [pid for pid, (h, at) in embedded.items() if texts[pid] == h and after[pid] != (h, at)]
    assert again == [], f"embedded again although their text had not changed: {again}"


def assert_every_paper_embedded_from_its_text(session: Session, encoder: Any) -> None:
    rows = _rows(
        session,
        select(Paper.title, Paper.abstract, Paper.text_hash, PaperEmbedding)
        .outerjoin(PaperEmbedding, PaperEmbedding.paper_id == Paper.id)
        .order_by(Paper.id),
    )
    missing = [title for title, _, h, e in rows if e is None or e.text_hash != h or e.model != encoder.name]
    assert missing == [], f"not embedded from their current text: {missing}"
    sample = random.Random(3).sample(rows, 8)
    expected = encoder.encode([paper_text(title, abstract) for title, abstract, _, _ in sample])
    stored = np.array([np.asarray(e.embedding, dtype=np.float32) for _, _, _, e in sample])
    assert np.allclose(np.sum(expected * stored, axis=1), 1.0, atol=1e-2), "each vector is its paper's text"


def test_killed_embeds_embed_every_paper_once_from_its_text(
    zygote: Zygote, database: str, session: Session, tmp_path: Path, real_encoder: Any
) -> None:
    rng, kills, log = random.Random(11), Kills(), tmp_path / "embed.log"
    env = cli_env(database, tmp_path / "data", embedding_batch_size="2")

    for _ in range(TRIALS):
        _add_work(session, rng)
        before = _embeddings(session)
        kill_somewhere(zygote, session, ["embed"], env, log, kills=kills, rng=rng, window=0.5)
        assert_not_embedded_twice(before, session)
    _add_work(session, rng)
    before = _embeddings(session)
    run_cli(["embed"], env, log)  # a real process, to the end

    assert_not_embedded_twice(before, session)
    assert_every_paper_embedded_from_its_text(session, real_encoder)
    assert_nothing_left_running(session, kills)


def test_killed_workers_embed_every_paper_once_from_its_text(
    zygote: Zygote, database: str, session: Session, tmp_path: Path, real_encoder: Any
) -> None:
    rng, kills, log = random.Random(12), Kills(), tmp_path / "worker.log"
    env = cli_env(database, tmp_path / "data", embedding_batch_size="2")
    worker = ["worker", "--idle-seconds", "0.2"]

    for _ in range(TRIALS):
        _add_work(session, rng)
        before = _embeddings(session)
        kill_somewhere(zygote, session, worker, env, log, kills=kills, rng=rng, window=0.8)
        assert_not_embedded_twice(before, session)
    _add_work(session, rng)
    before = _embeddings(session)
    clean = start_cli(worker, env, log)  # a real process, stopped once the work is done
    try:
        wait_until(
            lambda: _rows(session, select(JobRun.id).where(JobRun.pid == clean.pid)) and not _stale(session),
            timeout=120,
            what="the worker to embed everything",
            alive=lambda: clean.poll() is None,
            diagnose=lambda: f"{log_tail(log)}\n{database_activity(database)}",
        )
    finally:
        code = stop_cli(clean, log)
    # Exit 0, or the end a shell expects of a Ctrl-C'd process (death by SIGINT, as CPython ends
    # on an unhandled KeyboardInterrupt). About one run in five under load, only here (the one
    # worker that loads the real model after twenty killed ones), it ends the second way with no
    # traceback; the cause is not found. What Ctrl-C owes the user is checked below either way:
    # every run record closed, nothing embedded twice or left stale.
    assert code in (0, -signal.SIGINT), log.read_text()[-3000:]

    assert_not_embedded_twice(before, session)
    assert_every_paper_embedded_from_its_text(session, real_encoder)
    assert_nothing_left_running(session, kills)
