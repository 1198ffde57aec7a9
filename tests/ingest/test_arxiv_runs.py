"""arXiv runs against a real local HTTP server playing recorded responses: paging, resume, retries, limits."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from papertide.ingest import arxiv_api as arxiv_api_run
from papertide.ingest.ratelimit import wait_turn
from papertide.ingest.service import IngestError, IngestSummary
from papertide.models import JobRun, JobStatus, Paper, SourceState
from papertide.worker import ingest as ingest_jobs
from tests.helpers import FIXTURES, FakeClock, fetcher, ok, recorded_api
from tests.source_server import Reply, serve

OAI = FIXTURES / "arxiv_oai_pmh"
API = FIXTURES / "arxiv_api"


def paper_count(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Paper)) or 0


def test_oai_follows_the_resumption_token_and_checkpoints_each_page(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    def reply(path: str, query: dict[str, str]) -> Reply:
        return ok(
            OAI / ("arxiv-physics-hep-th.xml" if "resumptionToken" in query else "ListRecordsResponse.xml")
        )

    with serve(reply) as server:
        monkeypatch.setenv("PAPERTIDE_ARXIV_OAI_URL", server.url + "/oai")
        from papertide.config import get_settings

        get_settings.cache_clear()
        clock = FakeClock()
        summary = ingest_jobs.harvest_oai(set_spec="physics", fetcher=fetcher("arxiv-oai", clock))

    assert summary.status == JobStatus.OK
    assert summary.counts["new"] == 9
    assert [q.get("resumptionToken") for _, q, _ in server.requests] == [None, "726959|1001"]
    assert server.requests[0][1]["metadataPrefix"] == "arXiv"
    assert all("papertide" in headers["User-Agent"] for _, _, headers in server.requests)
    assert clock.sleeps, "the second request waited for its turn"
    assert min(clock.sleeps) >= 3.0 - 1e-6, "and the turn is 3 s after the first"
    state = session.get(SourceState, "arxiv-oai:physics")
    assert state is not None
    assert "token" not in state.state
    assert state.state["next_from"]


def test_a_killed_oai_harvest_resumes_from_its_token(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = {"second_page": True}

    def reply(path: str, query: dict[str, str]) -> Reply:
        if "resumptionToken" in query:
            if down["second_page"]:
                return 500, {}, b"Internal Server Error"
            return ok(OAI / "arxiv-physics-hep-th.xml")
        return ok(OAI / "ListRecordsResponse.xml")

    with serve(reply) as server:
        monkeypatch.setenv("PAPERTIDE_ARXIV_OAI_URL", server.url + "/oai")
        from papertide.config import get_settings

        get_settings.cache_clear()
        with pytest.raises(IngestError, match=r"gave up .* after 2 attempts; last error: HTTP 500"):
            ingest_jobs.harvest_oai(set_spec="physics", fetcher=fetcher("arxiv-oai", FakeClock(), attempts=2))
        assert paper_count(session) == 6, "the first page is committed"
        saved = session.get(SourceState, "arxiv-oai:physics")
        assert saved is not None
        assert saved.state["token"] == "726959|1001"

        down["second_page"] = False
        server.requests.clear()
        resumed = ingest_jobs.harvest_oai(set_spec="physics", fetcher=fetcher("arxiv-oai", FakeClock()))

    assert [q.get("resumptionToken") for _, q, _ in server.requests] == ["726959|1001"]
    assert resumed.counts["new"] == 3
    assert paper_count(session) == 9
    runs = session.scalars(select(JobRun).order_by(JobRun.id)).all()
    assert [r.status for r in runs] == [JobStatus.FAILED, JobStatus.OK]
    assert "HTTP 500" in (runs[0].error or "")


def harvest_after(
    answers: list[Reply], monkeypatch: pytest.MonkeyPatch
) -> tuple[IngestSummary, list[tuple[str, dict[str, str], dict[str, str]]], FakeClock]:
    """An OAI harvest whose first requests get `answers`, then the recorded page: the run's summary,
    the requests the server saw and the clock the fetcher slept on."""
    waiting = iter(answers)

    def reply(path: str, query: dict[str, str]) -> Reply:
        return next(waiting, None) or ok(OAI / "arxiv-physics-hep-th.xml")

    with serve(reply) as server:
        monkeypatch.setenv("PAPERTIDE_ARXIV_OAI_URL", server.url + "/oai")
        from papertide.config import get_settings

        get_settings.cache_clear()
        clock = FakeClock()
        summary = ingest_jobs.harvest_oai(
            set_spec="hep-th", fetcher=fetcher("arxiv-oai", clock, limit_key=None)
        )
    return summary, server.requests, clock


def test_503_retry_after_and_429_are_retried_then_ok(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary, requests, clock = harvest_after(
        [(503, {"Retry-After": "7"}, b"busy"), (429, {}, b"slow down")], monkeypatch
    )

    assert summary.status == JobStatus.OK
    assert summary.counts["new"] == 3
    assert len(requests) == 3
    assert clock.sleeps[0] == 7.0, "Retry-After is honoured"
    assert 0 <= clock.sleeps[1] <= 4.0, "then exponential backoff with jitter"


def test_a_retry_after_date_too_large_to_read_falls_back_to_backoff(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"  # overflows the date parser
    summary, _, clock = harvest_after([(503, {"Retry-After": huge}, b"busy")], monkeypatch)

    assert summary.status == JobStatus.OK
    assert summary.counts["new"] == 3
    assert 0 <= clock.sleeps[0] <= 2.0, "the first backoff step, as if no Retry-After came"


def test_500_forever_fails_the_run_and_writes_nothing(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(lambda path, query: (500, {}, b"<html>oops</html>")) as server:
        monkeypatch.setenv("PAPERTIDE_ARXIV_API_URL", server.url + "/api/query")
        from papertide.config import get_settings

        get_settings.cache_clear()
        clock = FakeClock()
        with pytest.raises(
            IngestError, match=r"arxiv-api: gave up .* after 4 attempts; last error: HTTP 500"
        ):
            ingest_jobs.query_api(query="cat:cs.CL", fetcher=fetcher("arxiv-api", clock, limit_key=None))

    assert len(server.requests) == 4
    assert len(clock.sleeps) == 3
    assert paper_count(session) == 0
    run = session.scalars(select(JobRun)).one()
    assert (run.status, run.source) == (JobStatus.FAILED, "arxiv-api")
    assert "HTTP 500" in (run.error or "")


def test_an_unreachable_host_fails_clearly(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERTIDE_ARXIV_API_URL", "http://127.0.0.1:9/api/query")  # discard port: refused
    from papertide.config import get_settings

    get_settings.cache_clear()
    with pytest.raises(IngestError, match="last error: ConnectError"):
        ingest_jobs.query_api(
            ids=["2104.12255"], fetcher=fetcher("arxiv-api", FakeClock(), attempts=2, limit_key=None)
        )
    assert session.scalars(select(JobRun.status)).one() == JobStatus.FAILED


def test_api_query_pages_until_max_results(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = {"0": "q_testing_s0_m10_bc5a6c384fe9.json", "10": "q_testing_s10_m10_34e56e15aaac.json"}

    def reply(path: str, query: dict[str, str]) -> Reply:
        return 200, {}, recorded_api(pages[query["start"]])

    with serve(reply) as server:
        monkeypatch.setenv("PAPERTIDE_ARXIV_API_URL", server.url + "/api/query")
        from papertide.config import get_settings

        get_settings.cache_clear()
        monkeypatch.setattr(arxiv_api_run, "PAGE_SIZE", 10)
        summary = ingest_jobs.query_api(
            query="testing", max_results=20, fetcher=fetcher("arxiv-api", FakeClock())
        )

    assert [(q["start"], q["max_results"]) for _, q, _ in server.requests] == [("0", "10"), ("10", "10")]
    assert summary.counts["fetched"] == 20
    assert paper_count(session) == summary.counts["new"]


def test_two_workers_never_request_closer_than_the_interval(database: str) -> None:
    """Two threads, each on its own fake clock starting at the same moment, share the Postgres schedule."""
    times: list[datetime] = []
    lock = threading.Lock()

    def worker() -> None:
        clock = FakeClock()
        for _ in range(4):
            wait_turn("arxiv-test", interval=timedelta(seconds=3), clock=clock)
            with lock:
                times.append(clock.now())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ordered = sorted(times)
    gaps = [(b - a).total_seconds() for a, b in pairwise(ordered)]
    assert len(ordered) == 8
    assert min(gaps) >= 3.0
    assert ordered[-1] - ordered[0] == timedelta(seconds=21), "and no slot is wasted"
