"""The command line: clear errors and exit codes; the outbox in the embedded default."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from papertide.cli import app
from papertide.config import get_settings
from papertide.digests.mailer import SmtpMailer
from papertide.models import JobRun, JobStatus
from papertide.runs.service import this_host
from papertide.web.app import create_app

runner = CliRunner()


def test_ingest_jsonl_reports_counts(database: str, tmp_path: Path) -> None:
    path = tmp_path / "papers.jsonl"
    path.write_text(json.dumps({"id": "2401.00002", "title": "T", "abstract": "A."}) + "\nnot json\n")

    result = runner.invoke(app, ["ingest", "jsonl", str(path)])

    assert result.exit_code == 0, result.output
    assert "'new': 1" in result.output
    assert "'skipped': 1" in result.output


def test_a_failed_ingest_exits_non_zero_with_the_reason(database: str, tmp_path: Path) -> None:
    bad = tmp_path / "sample.json.gz"
    bad.write_bytes(b"garbage")

    result = runner.invoke(app, ["ingest", "sample", str(bad)])

    assert result.exit_code == 1
    assert "is not a readable gzip file" in result.output


def test_digest_send_rejects_a_bad_date(database: str) -> None:
    result = runner.invoke(app, ["digest", "send", "--date", "26/11/2026"])
    assert result.exit_code == 2
    assert "--date must be YYYY-MM-DD" in result.output


def test_digest_send_on_the_sample_writes_real_papers_to_the_outbox(sample_database: str) -> None:
    client = TestClient(create_app(encoder_provider=lambda: None), client=("127.0.0.1", 50000))
    token = client.get("/subscribe").text.split('name="csrf" value="')[1].split('"')[0]
    client.post("/subscribe", data={"email": "o@example.org", "csrf": token})
    outbox = client.get("/dev/outbox").text
    assert "Confirm your papertide digest" in outbox
    confirm = outbox.split("http://testserver/confirm/")[1].split()[0]
    page = client.get(f"/confirm/{confirm}").text
    client.post(f"/confirm/{confirm}", data={"csrf": page.split('name="csrf" value="')[1].split('"')[0]})

    result = runner.invoke(app, ["digest", "send", "--date", "2026-11-26"])
    again = runner.invoke(app, ["digest", "send", "--date", "2026-11-26"])

    preview = runner.invoke(app, ["digest", "preview", "O@example.org"])
    unknown = runner.invoke(app, ["digest", "preview", "nobody@example.org"])

    assert "sent 1," in result.output
    assert "sent 0," in again.output
    assert "papertide · trending papers for" in preview.output
    assert "EnvHarness" not in preview.output, "the preview skips what the digest already sent"
    assert unknown.exit_code == 1
    assert "no subscriber with the address 'nobody@example.org'" in unknown.output
    files = sorted(get_settings().outbox_dir.glob("*.eml"))
    assert len(files) == 2, "the confirmation and one digest; the preview sends nothing"
    assert "EnvHarness: Awakening Static Worlds for Agent Learning" in files[-1].read_text()


def test_a_bad_smtp_url_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="PAPERTIDE_SMTP_URL must look like smtp://"):
        SmtpMailer("http://mail.example.org")


def test_status_shows_a_killed_run_as_abandoned_not_running(database: str, session: Session) -> None:
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()
    session.add(JobRun(job="embed", status=JobStatus.RUNNING, host=this_host(), pid=killed.pid))
    session.commit()

    result = runner.invoke(app, ["status"])

    assert result.exit_code == 0, result.output
    assert "abandoned" in result.output
    assert "running" not in result.output
    assert f"process {killed.pid} on" in result.output
