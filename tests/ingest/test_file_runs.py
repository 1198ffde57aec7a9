"""Ingestion: the sample, hf-daily files and JSONL through the one upsert path."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from papertide.ingest import service as ingest_service
from papertide.models import JobRun, JobStatus, Paper, PaperSignal
from papertide.worker import ingest as ingest_jobs
from tests.helpers import FIXTURES, SAMPLE_PAPERS

HF_DIR = FIXTURES / "hf_daily_papers"


def counts(session: Session) -> tuple[int, int]:
    session.expire_all()
    papers = session.scalar(select(func.count()).select_from(Paper))
    signals = session.scalar(select(func.count()).select_from(PaperSignal))
    return papers or 0, signals or 0


def test_sample_loaded_twice_leaves_the_same_rows(session: Session) -> None:
    first = ingest_jobs.ingest_sample()
    after_first = counts(session)
    second = ingest_jobs.ingest_sample()

    assert after_first == (SAMPLE_PAPERS, first.counts["signals"])
    assert counts(session) == after_first
    assert first.counts["new"] == SAMPLE_PAPERS
    assert second.counts == {
        **second.counts,
        "new": 0,
        "updated": 0,
        "unchanged": SAMPLE_PAPERS,
        "signals": 0,
    }
    paper = session.get(Paper, "2608.19880")
    assert paper is not None
    assert paper.title == "EnvHarness: Awakening Static Worlds for Agent Learning"
    assert paper.code_url == "https://github.com/google-research/envharness"
    assert paper.announced_at == datetime(2026, 8, 21, tzinfo=UTC)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not gzip at all", "is not a readable gzip file"),
        (gzip.compress(b'{"2026-08-21": [ {"paper": '), "does not hold valid JSON"),
        (gzip.compress(b"[1, 2]"), "should map days to arrays of papers"),
        (gzip.compress(b'{"21/08/2026": []}'), "is not YYYY-MM-DD"),
    ],
)
def test_malformed_sample_fails_clearly_and_writes_nothing(
    session: Session, tmp_path: Path, content: bytes, message: str
) -> None:
    bad = tmp_path / "sample.json.gz"
    bad.write_bytes(content)

    with pytest.raises(ingest_service.IngestError, match=message):
        ingest_jobs.ingest_sample(path=bad)

    assert counts(session) == (0, 0)
    run = session.scalars(select(JobRun)).one()
    assert run.status == JobStatus.FAILED
    assert message in (run.error or "")


def test_a_failure_midway_keeps_papers_already_stored(session: Session, tmp_path: Path) -> None:
    ingest_jobs.ingest_hf_files([HF_DIR / "2026-08-21.json"])
    before = counts(session)
    bad = tmp_path / "2026-08-20.json"
    bad.write_text('[{"paper": {"id": "2608.00001", "title": "x"')

    with pytest.raises(ingest_service.IngestError, match=r"2026-08-20.json is not valid JSON \(line 1"):
        ingest_jobs.ingest_hf_files([HF_DIR / "2026-07-15.json", bad])

    assert counts(session) == before


def test_hf_daily_files_record_signals_and_old_schemas(session: Session) -> None:
    summary = ingest_jobs.ingest_hf_files(sorted((HF_DIR / "older_schema").glob("*.json")))

    assert summary.status == JobStatus.OK
    assert summary.counts["skipped"] == 0
    old = session.scalars(select(Paper).where(Paper.announced_at < datetime(2024, 6, 1, tzinfo=UTC))).all()
    assert old, "the 2024 day (no submittedOnDailyAt) is dated by its file name"
    assert all(p.announced_at == datetime(2024, 5, 27, tzinfo=UTC) for p in old)
    kinds = set(session.scalars(select(PaperSignal.kind).distinct()))
    assert kinds == {"upvotes", "comments"}, "these older days carry no githubStars"
    assert session.scalar(select(func.count()).where(Paper.code_url.is_not(None))), (
        "2025 items carry githubRepo"
    )


def test_hf_daily_item_without_id_is_skipped_with_its_position(session: Session, tmp_path: Path) -> None:
    items = json.loads((HF_DIR / "2026-07-15.json").read_text())
    items[1]["paper"].pop("id")
    path = tmp_path / "2026-07-15.json"
    path.write_text(json.dumps(items))

    summary = ingest_jobs.ingest_hf_files([path])

    assert summary.counts["skipped"] == 1
    assert summary.counts["new"] == len(items) - 1


def test_jsonl_keeps_ids_skips_bad_lines_with_their_line_numbers(
    session: Session, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [
        {"id": "2401.12345v3", "title": "Versioned", "abstract": "Loses its version only."},
        {"id": "my-lab/report-7", "title": "Kept as written", "abstract": "Any id is kept."},
        "this line is not json",
        {"id": "x1", "abstract": "No title here."},
        {
            "title": "No id at all",
            "abstract": "Gets a stable id from the title.",
            "published_at": "2024-01-20T00:00:00Z",
        },
        {"id": "x2", "title": "Bad date", "abstract": "a", "published_at": "20th of January"},
    ]
    path = tmp_path / "papers.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines))

    summary = ingest_jobs.ingest_jsonl(path)

    assert summary.counts["new"] == 3
    assert summary.counts["skipped"] == 3
    assert "skipped papers.jsonl:3: not JSON" in caplog.text
    assert "skipped papers.jsonl:4: title: Field required" in caplog.text
    assert "skipped papers.jsonl:6: published_at: unknown date format '20th of January'" in caplog.text
    versioned = session.get(Paper, "2401.12345")
    assert versioned is not None
    assert versioned.version == 3
    assert session.get(Paper, "my-lab/report-7") is not None
    untitled_id = session.scalar(select(Paper.id).where(Paper.title == "No id at all"))
    assert untitled_id is not None
    assert untitled_id.startswith("t-")


def test_jsonl_missing_file_is_a_clear_error(database: str, tmp_path: Path) -> None:
    with pytest.raises(ingest_service.IngestError, match=r"cannot read .*nope\.jsonl"):
        ingest_jobs.ingest_jsonl(tmp_path / "nope.jsonl")


def test_changed_abstract_updates_the_row_and_its_text_hash(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": "2401.00001", "title": "T", "abstract": "First."}))
    ingest_jobs.ingest_jsonl(path)
    old_hash = session.get(Paper, "2401.00001").text_hash  # type: ignore[union-attr]
    path.write_text(json.dumps({"id": "2401.00001", "title": "T", "abstract": "Second."}))

    summary = ingest_jobs.ingest_jsonl(path)

    session.expire_all()
    paper = session.get(Paper, "2401.00001")
    assert summary.counts["updated"] == 1
    assert paper is not None
    assert paper.abstract == "Second."
    assert paper.text_hash != old_hash
