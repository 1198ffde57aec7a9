"""The command line: clear errors and exit codes; the outbox in the embedded default."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from papertide import db
from papertide.cli import app
from papertide.config import get_settings
from papertide.digests.mailer import SmtpMailer
from papertide.models import JobRun, JobStatus, Subscriber
from papertide.runs.service import this_host
from papertide.web.app import create_app
from tests.faults.processes import cli_env, start_cli, stop_cli
from tests.helpers import digest_ready, embedded_default, point_at_a_database_nobody_runs, wait_until

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


def test_digest_send_refuses_a_date_no_reader_can_be_due_on_unless_forced(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERTIDE_BASE_URL", "https://papers.example.org")
    get_settings.cache_clear()
    digest_ready(["a@example.org"])
    today = datetime.now(UTC).date()
    outbox = get_settings().outbox_dir

    a_year_off = runner.invoke(app, ["digest", "send", "--date", (today - timedelta(days=365)).isoformat()])
    not_begun = runner.invoke(app, ["digest", "send", "--date", (today + timedelta(days=2)).isoformat()])
    not_begun_forced = runner.invoke(
        app, ["digest", "send", "--date", (today + timedelta(days=2)).isoformat(), "--force"]
    )
    nothing_sent = not outbox.exists()
    on_the_day = runner.invoke(app, ["digest", "send", "--date", today.isoformat()])
    forced = runner.invoke(app, ["digest", "send", "--date", "2025-11-26", "--force"])

    def said(result: Result) -> str:
        return " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())  # the message out of its box

    assert a_year_off.exit_code == 2
    assert "the first date a reader can be due on now" in said(a_year_off), said(a_year_off)
    assert "give --force to send it all the same" in said(a_year_off)
    for future in (not_begun, not_begun_forced):  # it would reach nobody: --force does not help
        assert future.exit_code == 2
        assert "has not begun anywhere yet" in said(future), said(future)
        assert "--force" not in said(future)
    assert nothing_sent, "a refused date sent nothing"
    assert on_the_day.exit_code == 0, on_the_day.output
    assert forced.exit_code == 0, forced.output
    assert "sent 1," in on_the_day.output
    assert "sent 1," in forced.output
    assert len(list(outbox.iterdir())) == 2


@pytest.mark.parametrize("senders", ["0", "17", "three"])
def test_digest_send_refuses_a_sender_count_out_of_range_before_any_work(senders: str) -> None:
    result = runner.invoke(app, ["digest", "send", "--senders", senders])
    assert result.exit_code == 2
    assert "--senders" in result.output


def test_digest_send_on_the_sample_writes_real_papers_to_the_outbox(sample_database: str) -> None:
    client = TestClient(create_app(encoder_provider=lambda: None), client=("127.0.0.1", 50000))
    token = client.get("/subscribe").text.split('name="csrf" value="')[1].split('"')[0]
    client.post("/subscribe", data={"email": "o@example.org", "csrf": token})
    outbox = client.get("/dev/outbox").text
    assert "Confirm your papertide digest" in outbox
    found = re.search(r"http://testserver/confirm/([A-Za-z0-9_\-]+)", outbox)
    assert found, "the confirm link is in the outbox"
    confirm = found.group(1)
    page = client.get(f"/confirm/{confirm}").text
    client.post(f"/confirm/{confirm}", data={"csrf": page.split('name="csrf" value="')[1].split('"')[0]})

    result = runner.invoke(app, ["digest", "send", "--date", "2026-11-26", "--force"])
    again = runner.invoke(app, ["digest", "send", "--date", "2026-11-26", "--force"])
    # A zone whose date is not UTC's now (Kiribati's from 10:00 UTC, American Samoa's before 11:00):
    # the preview shows the digest of the reader's own date.
    now = datetime.now(UTC)
    zone = "Pacific/Kiritimati" if now.hour >= 10 else "Pacific/Pago_Pago"
    with db.session_factory()() as session:
        session.execute(update(Subscriber).values(time_zone=zone))
        session.commit()
    their_date = now.astimezone(ZoneInfo(zone)).date()

    preview = runner.invoke(app, ["digest", "preview", "O@example.org"])
    unknown = runner.invoke(app, ["digest", "preview", "nobody@example.org"])

    assert "sent 1," in result.output
    assert "sent 0," in again.output
    assert f"papertide · your papers for {their_date:%A %d %B %Y}" in preview.output
    assert their_date != now.date()
    assert (
        "a preview: nothing was stored, so its manage, unsubscribe and view links do not work;"
        " its vote links do, and would teach the reader's profile"
    ) in preview.output
    assert "== Trending ==" in preview.output
    assert "EnvHarness" not in preview.output, "the preview skips what the digest already sent"
    assert unknown.exit_code == 1
    assert "no subscriber with the address 'nobody@example.org'" in unknown.output
    assert "so no digest goes to them now" not in preview.output
    with db.session_factory()() as session:
        session.execute(update(Subscriber).values(paused_at=now))
        session.commit()
    paused = runner.invoke(app, ["digest", "preview", "O@example.org"])
    assert f"o@example.org paused the digest on {now:%Y-%m-%d %H:%M} UTC, so no digest goes to them now" in (
        paused.output
    )
    files = sorted(get_settings().outbox_dir.glob("*.eml"))
    assert len(files) == 2, "the confirmation and one digest; the preview sends nothing"
    assert "EnvHarness: Awakening Static Worlds for Agent Learning" in files[-1].read_text()


def test_a_bad_smtp_url_is_refused_by_name_without_its_password() -> None:
    with pytest.raises(
        ValueError, match=re.escape("PAPERTIDE_SMTP_URL='http://u:***@mail.example.org' must start smtp://")
    ):
        SmtpMailer("http://u:hunter2@mail.example.org")


def test_a_bad_setting_stops_a_command_with_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in the SMTP URL stops `digest send` before anything runs, and its password is not
    printed (a run's error is shown on the public /status page)."""
    monkeypatch.setenv("PAPERTIDE_SMTP_URL", "smpts://digest:hunter2@mail.example.org:465")
    get_settings.cache_clear()

    result = runner.invoke(app, ["digest", "send"])

    assert result.exit_code == 2
    assert "PAPERTIDE_SMTP_URL" in result.output
    assert "must start smtp://" in result.output
    assert "hunter2" not in result.output
    assert "Traceback" not in result.output


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


def test_digest_send_in_production_with_a_loopback_base_url_stops_naming_the_setting(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERTIDE_BASE_URL", "http://localhost:8000")
    get_settings.cache_clear()
    digest_ready(["a@example.org"])

    result = runner.invoke(app, ["digest", "send", "--date", "2026-11-26", "--force"])

    assert result.exit_code == 1
    assert "error: no digest sent: PAPERTIDE_BASE_URL is http://localhost:8000" in result.output
    assert "Traceback" not in result.output
    assert not get_settings().outbox_dir.exists(), "nothing was sent"


def test_serve_publishes_its_url_for_the_commands_beside_it_and_removes_it_at_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    data = embedded_default(monkeypatch, tmp_path / "data")
    seen: dict[str, str] = {}

    def fake_run(*args: Any, **kwargs: Any) -> None:
        """While `serve` runs: its own settings, and a command started from another shell."""
        seen["serve"] = get_settings().base_url
        other = subprocess.run(
            [sys.executable, "-c", "from papertide.config import Settings; print(Settings().base_url)"],
            env={k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
            | {"PAPERTIDE_DATA_DIR": str(data)},
            capture_output=True,
            text=True,
            check=True,
        )
        seen["other process"] = other.stdout.strip()

    monkeypatch.setattr(uvicorn, "run", fake_run)
    try:
        result = runner.invoke(app, ["serve", "--port", "8811"])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    assert seen == {"serve": "http://127.0.0.1:8811", "other process": "http://127.0.0.1:8811"}
    assert not (data / "site_url").exists(), "a stopped site leaves no URL behind"


def test_serve_in_production_with_a_loopback_base_url_starts_and_warns(
    database: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import uvicorn

    monkeypatch.setenv("PAPERTIDE_BASE_URL", "http://127.0.0.1:8000")
    get_settings.cache_clear()
    started: list[bool] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(True))

    result = runner.invoke(app, ["serve"])

    assert result.exit_code == 0, result.output
    assert started == [True], "the pages still work"
    assert "digests will not be sent: PAPERTIDE_BASE_URL is http://127.0.0.1:8000" in caplog.text


def test_a_worker_started_in_the_background_still_stops_on_sigint(database: str, tmp_path: Path) -> None:
    """A shell's `papertide worker &` (or nohup) starts it with SIGINT ignored; `kill -INT` must still stop it."""
    env, log = cli_env(database, tmp_path / "data"), tmp_path / "worker.log"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # what the child inherits, as from `&`
    try:
        worker = start_cli(["worker", "--idle-seconds", "0.2"], env, log)
    finally:
        signal.signal(signal.SIGINT, previous)
    # The keyword index folder appears on the worker's first pass: its handlers are installed by then.
    wait_until(
        lambda: (tmp_path / "data" / "keyword-index-v1").exists(),
        timeout=120,
        what="the worker's first pass",
        alive=lambda: worker.poll() is None,
    )

    assert stop_cli(worker, log) == 0, log.read_text()[-3000:]


@pytest.mark.parametrize(("cores", "expected"), [(1, 1), (2, 2), (4, 4), (64, 4)])
def test_up_starts_one_web_process_per_core_up_to_four(
    monkeypatch: pytest.MonkeyPatch, cores: int, expected: int
) -> None:
    from papertide import cli

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)))

    assert cli.default_web_workers() == expected


def test_up_takes_a_web_worker_count_and_refuses_zero() -> None:
    result = runner.invoke(app, ["up", "--web-workers", "0"])

    assert result.exit_code == 2
    assert "--web-workers" in result.output


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["serve", "--port", "0"], {}),
        (["serve", "--port", "65536"], {}),
        (["up", "--port", "0"], {}),
        (["up", "--port", "70000"], {}),
        (["up"], {"PORT": "0"}),
    ],
)
def test_serve_and_up_refuse_a_port_nobody_can_reach_before_any_work(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    import uvicorn

    from papertide import cli

    monkeypatch.setenv("PAPERTIDE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    work: list[str] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: work.append("bind"))
    monkeypatch.setattr(cli, "_run_everything", lambda *a, **k: work.append("sample and score"))

    result = runner.invoke(app, args, env=env)

    assert result.exit_code == 2
    assert "Invalid value for '--port'" in result.output
    assert work == []
    assert not (tmp_path / "site_url").exists(), "no http://127.0.0.1:0 published"


def test_a_bad_base_url_stops_a_command_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERTIDE_BASE_URL", "https://papers.example.org/?utm=mail")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["status"])
    finally:
        monkeypatch.delenv("PAPERTIDE_BASE_URL")
        get_settings.cache_clear()

    assert result.exit_code == 2
    assert (
        "error: PAPERTIDE_BASE_URL='https://papers.example.org/?utm=mail' has a query string" in result.output
    )
    assert "Traceback" not in result.output


def test_reindex_while_another_process_writes_the_index_says_so_and_exits_1(
    database: str, session: Session
) -> None:
    from papertide.search import keyword_index
    from tests.factories import make_paper

    make_paper(session, id="2601.92001", abstract="Graph neural networks.")
    session.commit()

    with keyword_index.shared(get_settings()).writer():  # the worker feeding it
        result = runner.invoke(app, ["reindex"])

    assert result.exit_code == 1
    assert "another process is writing the keyword index; try again when it has finished" in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_reindex_rebuilds_a_damaged_index_and_keyword_search_works_again(
    database: str, session: Session
) -> None:
    from papertide.search import keyword_index
    from tests.factories import make_paper

    make_paper(session, id="2601.92002", title="Graph transformers", abstract="Graph neural networks.")
    session.commit()
    path = keyword_index.index_path(get_settings())
    path.mkdir(parents=True)
    (path / "meta.json").write_text("{ not json")
    client = TestClient(create_app(encoder_provider=lambda: None), raise_server_exceptions=False)
    assert client.get("/api/v1/search", params={"q": "graph", "mode": "keyword"}).status_code == 503

    result = runner.invoke(app, ["reindex"])

    assert result.exit_code == 0, result.output
    assert "keyword index rebuilt: 1 papers" in result.output
    found = client.get("/api/v1/search", params={"q": "graph", "mode": "keyword"})
    assert found.status_code == 200, found.text
    assert [hit["id"] for hit in found.json()["results"]] == ["2601.92002"]


def test_a_second_serve_that_cannot_bind_the_port_keeps_the_running_sites_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from papertide import site_url

    data = embedded_default(monkeypatch, tmp_path / "data")

    def address_in_use(*args: Any, **kwargs: Any) -> None:
        raise OSError(98, "address already in use")

    monkeypatch.setattr(uvicorn, "run", address_in_use)
    with site_url.published(data, "http://127.0.0.1:8811"):  # `make run PORT=8811`, running
        try:
            result = runner.invoke(app, ["serve", "--port", "8811"])  # started again by mistake
        finally:
            get_settings.cache_clear()

        assert result.exit_code != 0
        assert site_url.resolve(data) == "http://127.0.0.1:8811", "the running site is still linked to"


def test_a_database_that_cannot_be_reached_ends_a_command_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    point_at_a_database_nobody_runs(monkeypatch)

    result = runner.invoke(app, ["digest", "send"])
    typo = runner.invoke(app, ["digest", "send", "--date", "2026-13-01"])

    assert result.exit_code == 1
    assert "error: cannot reach the database (" in result.output
    assert "Traceback" not in result.output
    assert ":pw@" not in result.output
    assert typo.exit_code == 2
    assert "--date must be YYYY-MM-DD" in typo.output
    assert "cannot reach the database" not in typo.output  # the typo is told before the database is tried


def test_a_setting_that_is_not_json_where_json_is_read_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERTIDE_TREND_DECAY_SCALE_HOURS", "notjson")
    get_settings.cache_clear()

    result = runner.invoke(app, ["status"])

    assert result.exit_code == 2
    assert "error: PAPERTIDE_TREND_DECAY_SCALE_HOURS: not a value papertide can read" in result.output
    assert "Traceback" not in result.output


def test_ctrl_c_lost_in_a_database_calls_clean_up_still_stops_the_worker(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen in CI: Ctrl-C landed inside a query, SQLAlchemy's pool ping raised a ProgrammingError
    over the KeyboardInterrupt during its clean-up, the loop logged a failed step and went on, and
    the worker never stopped. The signal sets the loop's stop before it interrupts anything."""
    from papertide.worker import jobs

    steps: list[str] = []

    def a_query_interrupted(**_: object) -> int:
        steps.append("keyword index")
        if len(steps) > 1:
            raise SystemExit("the loop went on after Ctrl-C")  # ends the test's worker either way
        try:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, while "the query" runs: its handler runs here
        except KeyboardInterrupt:
            raise RuntimeError(
                "can't change 'autocommit' now: connection in transaction status ACTIVE"
            ) from None
        return 0

    monkeypatch.setattr(jobs, "index_keywords", a_query_interrupted)
    monkeypatch.setattr(jobs, "embed", lambda **_: 0)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = runner.invoke(app, ["worker", "--idle-seconds", "0.01"])
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)

    assert steps == ["keyword index"], result.output
    assert result.exit_code == 0
