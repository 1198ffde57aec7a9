"""Every source through its run: RSS with details, hf-daily live, idempotency, status and schedules."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from papertide.cli import app
from papertide.config import Settings, get_settings
from papertide.ingest import service
from papertide.ingest.service import IngestSummary
from papertide.models import JobStatus, KeywordPending, Paper, PaperSignal
from papertide.web.app import create_app
from papertide.worker import ingest as ingest_jobs
from papertide.worker.scheduler import build_scheduler
from tests.factories import make_paper, paper_rows
from tests.helpers import FIXTURES, FakeClock, fetcher, ok, recorded_api
from tests.source_server import Reply, SourceServer, serve

RSS = FIXTURES / "arxiv_rss" / "rss_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_laya-reader.xml"
HF = FIXTURES / "hf_daily_papers"
PAPER_COLUMNS = (
    "id",
    "title",
    "abstract",
    "authors",
    "categories",
    "published_at",
    "updated_at",
    "version",
    "announced_at",
    "announce_type",
    "abs_url",
    "pdf_url",
    "code_url",
    "text_hash",
    "modified_at",
)


def signals(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(PaperSignal)) or 0


def api_entry_for(paper_ids: list[str]) -> bytes:
    """The API's Atom answer for feed papers, written from the feed's fields plus a publication date.

    No API recording of these papers exists; the API and the feed carry the same text and names.
    """
    from papertide.ingest.sources import arxiv_rss

    items = {i.paper.id: i.paper for i in arxiv_rss.parse_feed(RSS.read_bytes(), location="rss").items}
    entries = "".join(
        f"<entry><id>http://arxiv.org/abs/{pid}v{items[pid].version or 1}</id><published>2026-09-23T17:59:00Z</published>"
        f"<updated>2026-09-23T17:59:00Z</updated><title>{escape(items[pid].title)}</title>"
        f"<summary>{escape(items[pid].abstract)}</summary>"
        + "".join(f"<author><name>{escape(a)}</name></author>" for a in items[pid].authors)
        + "".join(f'<category term="{c}"/>' for c in items[pid].categories)
        + "</entry>"
        for pid in paper_ids
    )
    return (
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">'
        f"<opensearch:totalResults>{len(paper_ids)}</opensearch:totalResults>"
        "<opensearch:startIndex>0</opensearch:startIndex>"
        f"<opensearch:itemsPerPage>{len(paper_ids)}</opensearch:itemsPerPage>{entries}</feed>"
    ).encode()


@pytest.fixture
def arxiv_server(database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SourceServer]:
    def reply(path: str, query: dict[str, str]) -> Reply:
        if path.startswith("/rss/"):
            return ok(RSS)
        if path == "/api/query" and query.get("id_list") == "2104.12255":
            return 200, {}, recorded_api("id_2104.12255v1_s0_m100_6ae69987ffe1.json")
        if path == "/api/query" and "id_list" in query:
            return 200, {}, api_entry_for(query["id_list"].split(","))
        if path == "/oai":
            return ok(FIXTURES / "arxiv_oai_pmh" / "arxiv-physics-hep-th.xml")
        return 404, {}, b"not here"

    with serve(reply) as server:
        monkeypatch.setenv("PAPERTIDE_ARXIV_RSS_URL", server.url + "/rss")
        monkeypatch.setenv("PAPERTIDE_ARXIV_API_URL", server.url + "/api/query")
        monkeypatch.setenv("PAPERTIDE_ARXIV_OAI_URL", server.url + "/oai")
        get_settings.cache_clear()
        yield server


def test_rss_keeps_announce_types_and_fetches_details_only_for_unseen_ids(
    arxiv_server: SourceServer, session: Session
) -> None:
    make_paper(session, id="2205.06398", title="Seen before", abstract="Already stored.")
    make_paper(session, id="2009.13987", title="Also seen", abstract="Already stored.")
    session.commit()

    summary = ingest_jobs.fetch_rss(categories=["cs.LG", "cs.AI"], fetcher=fetcher("arxiv-rss", FakeClock()))

    assert summary.counts["fetched"] == 4
    paths = [(path, query.get("id_list")) for path, query, _ in arxiv_server.requests]
    assert paths[0] == ("/rss/cs.LG+cs.AI", None)
    assert [ids for path, ids in paths[1:]] == ["2609.26811,2609.26820"]
    types = dict(session.execute(select(Paper.id, Paper.announce_type)).all())
    assert types == {"2609.26811": "new", "2609.26820": "new", "2205.06398": "cross", "2009.13987": "replace"}
    detailed = session.get(Paper, "2609.26811")
    assert detailed is not None
    assert detailed.published_at is not None, "the API record brings the publication date the feed lacks"
    assert detailed.announced_at is not None, "and the feed's announcement date is kept"


def test_every_source_loaded_twice_leaves_identical_rows(
    arxiv_server: SourceServer, session: Session
) -> None:
    loads: dict[str, Callable[[], IngestSummary]] = {
        "arxiv-oai": lambda: ingest_jobs.harvest_oai(
            set_spec="hep-th", fetcher=fetcher("arxiv-oai", FakeClock())
        ),
        "arxiv-rss": lambda: ingest_jobs.fetch_rss(
            categories=["cs.LG"], fetcher=fetcher("arxiv-rss", FakeClock())
        ),
        "arxiv-api": lambda: ingest_jobs.query_api(
            ids=["2104.12255"], fetcher=fetcher("arxiv-api", FakeClock())
        ),
        "hf-daily": lambda: ingest_jobs.ingest_hf_files([HF / "2026-08-21.json"]),
        "kaggle": lambda: ingest_jobs.load_snapshot(
            FIXTURES / "kaggle_arxiv_snapshot/arxiv-metadata-oai-snapshot.first200.jsonl"
        ),
    }
    for name, load in loads.items():
        load()
        before = paper_rows(session, PAPER_COLUMNS)
        again = load()
        assert paper_rows(session, PAPER_COLUMNS) == before, name
        assert again.counts["new"] == again.counts["updated"] == 0, name


def test_a_live_hf_refetch_adds_one_observation_and_changes_no_paper(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = (HF / "2026-08-21.json").read_bytes()
    with serve(lambda path, query: (200, {"Content-Type": "application/json"}, body)) as server:
        monkeypatch.setenv("PAPERTIDE_HF_DAILY_URL", server.url + "/api/daily_papers")
        get_settings.cache_clear()
        from datetime import date

        clock = FakeClock()
        first = ingest_jobs.ingest_hf_days(
            [date(2026, 8, 21)], fetcher=fetcher("hf-daily", clock, limit_key=None)
        )
        rows, observed = paper_rows(session, PAPER_COLUMNS), signals(session)
        clock.current = clock.current.replace(hour=15)  # three hours later
        second = ingest_jobs.ingest_hf_days(
            [date(2026, 8, 21)], fetcher=fetcher("hf-daily", clock, limit_key=None)
        )

    assert server.requests[0][1] == {"date": "2026-08-21"}
    assert first.counts["new"] == 17
    assert second.counts["unchanged"] == 17
    assert paper_rows(session, PAPER_COLUMNS) == rows
    assert signals(session) == 2 * observed, "one more observation of each count"


def test_an_empty_day_is_ok_empty_not_failed(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(lambda path, query: (200, {}, b"[]")) as server:
        monkeypatch.setenv("PAPERTIDE_HF_DAILY_URL", server.url + "/api/daily_papers")
        get_settings.cache_clear()
        from datetime import date

        summary = ingest_jobs.ingest_hf_days(
            [date(2026, 8, 22)], fetcher=fetcher("hf-daily", FakeClock(), limit_key=None)
        )
    assert summary.status == JobStatus.OK_EMPTY


def test_an_error_page_is_a_failed_run_not_an_empty_one(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(
        lambda path, query: (200, {"Content-Type": "text/html"}, b"<html>Service unavailable</html>")
    ) as server:
        monkeypatch.setenv("PAPERTIDE_HF_DAILY_URL", server.url + "/api/daily_papers")
        get_settings.cache_clear()
        from datetime import date

        with pytest.raises(service.IngestError, match="is not valid JSON"):
            ingest_jobs.ingest_hf_days(
                [date(2026, 8, 22)], fetcher=fetcher("hf-daily", FakeClock(), limit_key=None)
            )


def test_status_lists_the_last_runs_of_each_source(database: str, tmp_path: Path) -> None:
    ingest_jobs.ingest_hf_files([HF / "2026-08-21.json"])
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(service.IngestError):
        ingest_jobs.ingest_jsonl(bad)

    output = CliRunner().invoke(app, ["status"]).output
    page = TestClient(create_app(encoder_provider=lambda: None)).get("/status").text

    assert "<h2>ingest · hf-daily</h2>" in page
    assert "is not UTF-8 text" in page
    assert "ingest hf-daily" in output
    assert "ok" in output.split("ingest hf-daily")[1]
    assert "failed" in output.split("ingest jsonl")[1]
    assert "is not UTF-8 text" in output


def test_schedules_come_from_settings_and_sources_are_off_by_default() -> None:
    default = {job.id for job in build_scheduler(Settings()).get_jobs()}
    configured = build_scheduler(Settings(schedule_arxiv_oai="0 2 * * *", schedule_hf_daily="0 */3 * * *"))

    assert default == {"score", "digest", "digest-retry"}
    assert {job.id for job in configured.get_jobs()} == {
        "score",
        "digest",
        "digest-retry",
        "ingest-arxiv-oai",
        "ingest-hf-daily",
    }


def test_an_empty_digest_or_score_schedule_is_off_and_the_scheduler_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A compose passthrough of an unset variable gives an empty schedule: no digest would ever go
    out, so the operator is told at the scheduler's start, not left to wonder at an empty inbox."""
    with caplog.at_level("WARNING", logger="papertide.worker.scheduler"):
        jobs = {job.id for job in build_scheduler(Settings(digest_cron="", score_cron="")).get_jobs()}

    assert jobs == {"digest-retry"}
    assert "PAPERTIDE_DIGEST_CRON is empty: the scheduler will not run the digest job" in caplog.text
    assert "PAPERTIDE_SCORE_CRON is empty: the scheduler will not run the score job" in caplog.text


def test_a_bad_cron_setting_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="schedule_arxiv_rss") as error:
        Settings(schedule_arxiv_rss="every morning")
    assert "is not a cron expression" in str(error.value)


def test_kaggle_from_the_command_line_filters_and_indexes(database: str, session: Session) -> None:
    snapshot_file = FIXTURES / "kaggle_arxiv_snapshot/arxiv-metadata-oai-snapshot.first200.jsonl"
    result = CliRunner().invoke(app, ["ingest", "kaggle", str(snapshot_file), "--categories", "hep-ph"])

    assert result.exit_code == 0, result.output
    assert "keyword index:" in result.output
    session.expire_all()
    categories = session.scalars(select(Paper.categories)).all()
    assert categories
    assert all(any(c.startswith("hep-ph") for c in cats) for cats in categories)
    assert session.scalar(select(func.count()).select_from(KeywordPending)) == 0  # all in the keyword index


def test_jsonl_docs_example_loads(database: str, tmp_path: Path) -> None:
    record = {
        "id": "2401.12345",
        "title": "T",
        "abstract": "A",
        "authors": ["A. Author"],
        "categories": ["cs.CL"],
        "published_at": "2024-01-20T00:00:00Z",
        "url": "https://arxiv.org/abs/2401.12345",
        "code_url": None,
    }
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(record))
    assert ingest_jobs.ingest_jsonl(path).counts["new"] == 1
