"""A fleet on one Postgres: two `serve`, two `worker` and two `scheduler` processes. After an ingest
every paper is embedded once, one scheduler leads, each digest goes once (two senders at once), and
the subscribe rate limit holds across both web processes (issue 8)."""

from __future__ import annotations

import functools
import json
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from papertide.config import DEFAULT_EMBEDDING_MODEL
from papertide.embeddings.repository import count_stale
from papertide.models import JobRun, JobStatus, Paper
from papertide.worker.scheduler import LEADER_LOCK_KEY
from tests.faults.processes import cli_env, libpq_url, run_cli, start_cli
from tests.helpers import Inbox, digest_ready, free_port, smtp_server, wait_until

pytestmark = pytest.mark.slow
PAPERS = 50
LIMIT = 3  # sign-ups per client per hour, for the whole fleet
SUBSCRIBERS = [f"reader{n}@example.org" for n in range(5)]
LEADS = "papertide.worker.scheduler: scheduler is the leader:"  # the log line of the one that leads


@contextmanager
def running(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A fleet member; stopped with SIGTERM (as docker stop does) at the end, and it must end cleanly."""
    process = start_cli(args, env, log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        assert code == 0, f"papertide {args[0]} ended with {code}:\n{log.read_text()[-3000:]}"


def _scalar(session: Session, stmt: object) -> int:
    try:
        return int(session.scalar(stmt) or 0)  # type: ignore[call-overload]
    finally:
        session.rollback()


def _stale(session: Session) -> int:
    try:
        return count_stale(session, model=DEFAULT_EMBEDDING_MODEL)
    finally:
        session.rollback()


def _papers_file(path: Path) -> Path:
    records = [
        {"id": f"2613.{n:05d}", "title": f"Fleet paper {n}", "abstract": f"On shared work, part {n}."}
        for n in range(PAPERS)
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def _sign_up(url: str, email: str) -> int:
    with httpx.Client(base_url=url, timeout=30) as client:
        form = client.get("/subscribe").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf, form
        return client.post("/subscribe", data={"email": email, "csrf": csrf.group(1)}).status_code


def _lock_holders(url: str) -> int:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid::bigint = %s AND granted",
            (LEADER_LOCK_KEY,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_fleet_embeds_once_leads_once_sends_once_and_shares_the_rate_limit(
    database: str, session: Session, tmp_path: Path
) -> None:
    inbox = Inbox()
    env = cli_env(
        database, tmp_path / "data", embedding_batch_size="4", subscribe_rate_limit_per_hour=str(LIMIT)
    )
    logs = {name: tmp_path / f"{name}.log" for name in ("serve", "worker", "scheduler", "cli")}
    ports = [free_port(), free_port()]
    with ExitStack() as fleet:
        smtp_port = fleet.enter_context(smtp_server(inbox))
        schedulers = [
            fleet.enter_context(running(["scheduler", "--check-seconds", "1"], env, tmp_path / f"s{n}.log"))
            for n in range(2)
        ]
        workers = [
            fleet.enter_context(running(["worker", "--idle-seconds", "0.5"], env, logs["worker"]))
            for _ in range(2)
        ]
        for port in ports:
            fleet.enter_context(running(["serve", "--port", str(port)], env, logs["serve"]))
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url in urls:
            wait_until(functools.partial(_answers, url), timeout=60, what=f"{url} to answer")

        # An ingest by the CLI, while both workers wait for work.
        run_cli(["ingest", "jsonl", str(_papers_file(tmp_path / "papers.jsonl"))], env, logs["cli"])
        # The rate limit: one client, alternating between the two web processes.
        codes = [_sign_up(urls[n % 2], f"new{n}@example.org") for n in range(LIMIT + 4)]
        # Two senders at once, each told to send the same day's digests.
        digest_ready(SUBSCRIBERS)
        send_env = {**env, "PAPERTIDE_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}"}
        senders = [
            start_cli(["digest", "send", "--date", "2026-11-24", "--force"], send_env, logs["cli"])
            for _ in "ab"
        ]
        assert [sender.wait(timeout=120) for sender in senders] == [0, 0], logs["cli"].read_text()[-3000:]

        wait_until(
            lambda: (
                _scalar(session, select(func.count()).select_from(Paper)) >= PAPERS and _stale(session) == 0
            ),
            timeout=180,
            what="the workers to embed every paper",
            alive=lambda: all(w.poll() is None for w in workers),
        )
        leaders = wait_until(
            lambda: [n for n in range(len(schedulers)) if LEADS in (tmp_path / f"s{n}.log").read_text()],
            timeout=60,
            what="a scheduler to lead",
        )
        lock_holders = _lock_holders(database)

    # Every process has ended (SIGTERM, exit 0): every embed run has recorded its count.
    papers = _scalar(session, select(func.count()).select_from(Paper))
    embed_runs = session.scalars(select(JobRun).where(JobRun.job == "embed")).all()
    assert [r for r in embed_runs if r.status in (JobStatus.RUNNING, JobStatus.ABANDONED)] == []
    assert sum(int(r.counts.get("embedded", 0)) for r in embed_runs) == papers, "each paper embedded once"
    assert len(leaders) == 1, "one scheduler leads"
    assert lock_holders == 1
    assert sorted(m["To"] for m in inbox.messages) == sorted(SUBSCRIBERS), "each digest went once"
    assert codes == [200] * LIMIT + [429] * 4, (
        "the sign-up limit counts every web process's requests (PAPERTIDE_SUBSCRIBE_RATE_LIMIT_PER_HOUR)"
    )


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
