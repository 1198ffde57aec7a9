"""Bad input and failing parts that no other test reaches: each gets a clear error and stores nothing."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from papertide.cli import app as cli
from papertide.config import get_settings
from papertide.digests.mailer import OutboxMailer, SmtpMailer, list_outbox
from papertide.ingest import kaggle as kaggle_run
from papertide.ingest import service
from papertide.ingest.http import Fetcher, RetryPolicy
from papertide.ingest.sources.base import SourceError
from papertide.models import Subscriber, SubscriberStatus
from papertide.subscribers import service as subscriber_service
from papertide.web import deps
from papertide.web.app import create_app
from papertide.web.routes.subscribe import ADDRESS_NEEDS_SMTPUTF8
from papertide.worker import ingest as ingest_jobs
from tests.helpers import FakeClock, Inbox, csrf_from, free_port, smtp_server
from tests.source_server import serve

runner = CliRunner()


@pytest.fixture
def client(database: str) -> Iterator[TestClient]:
    with TestClient(create_app(encoder_provider=lambda: None)) as test_client:
        yield test_client


def test_more_like_this_without_a_model_says_so(client: TestClient) -> None:
    page = client.post("/search/like", data={"text": "An abstract about speech."})
    api = client.post("/api/v1/similar", json={"text": "An abstract about speech."})

    assert page.status_code == 503
    assert "The embedding model is not available" in page.text
    assert api.status_code == 503


@pytest.mark.parametrize(
    "text", ["   ", "\u200b\u200b", "?! -- ..."], ids=["spaces", "zero-width", "punctuation"]
)
def test_a_passage_with_no_letter_or_digit_is_refused_by_the_page_and_the_api_alike(
    client: TestClient, text: str
) -> None:
    """Embedded all the same, it would rank papers by nothing; the page and the API keep one rule."""
    page = client.post("/search/like", data={"text": text})
    api = client.post("/api/v1/similar", json={"text": text})

    assert page.status_code == 422
    assert "the passage has no letter or digit" in page.text
    assert api.status_code == 422
    assert any("text" in problem and "no letter or digit" in problem for problem in api.json()["detail"])


@pytest.mark.parametrize(
    ("interests", "message"),
    [
        (", ".join(f"topic {n}" for n in range(11)), "at most 10 interests (you gave 11)"),
        ("x" * 121, "longer than 120 characters"),
    ],
)
def test_too_many_or_too_long_interests_are_refused(
    client: TestClient, session: Session, interests: str, message: str
) -> None:
    token = csrf_from(client.get("/subscribe").text)
    response = client.post(
        "/subscribe", data={"email": "i@example.org", "interests": interests, "csrf": token}
    )

    assert response.status_code == 422
    assert message in response.text
    assert session.scalars(select(Subscriber)).all() == []


def test_an_expired_confirmation_link_confirms_nothing(client: TestClient, session: Session) -> None:
    outcome = subscriber_service.subscribe(session, email="late@example.org", interests="", frequency="daily")
    session.commit()
    later = datetime.now(UTC) + subscriber_service.CONFIRM_TOKEN_TTL + timedelta(minutes=1)

    link = subscriber_service.confirm(session, outcome.confirm_token or "", now=later)
    session.commit()
    assert link is not None
    assert link.state == subscriber_service.LinkState.EXPIRED
    assert session.scalars(select(Subscriber.status)).one() == SubscriberStatus.PENDING


def test_a_failing_mail_server_says_so_and_signing_up_again_sends_a_working_link(
    database: str, session: Session, tmp_path: Path
) -> None:
    broken = SmtpMailer(f"smtp://127.0.0.1:{free_port()}")  # nothing listens there
    with TestClient(create_app(encoder_provider=lambda: None, mailer=broken)) as client:
        token = csrf_from(client.get("/subscribe").text)
        response = client.post("/subscribe", data={"email": "m@example.org", "csrf": token})

    assert response.status_code == 503
    assert "could not send the confirmation email" in response.text
    # The sign-up was committed before the email (no transaction waits on a mail server): it stays
    # pending, gets nothing, and the next sign-up sends a fresh link that works.
    assert [s.status for s in session.scalars(select(Subscriber))] == [SubscriberStatus.PENDING]
    outbox = OutboxMailer(tmp_path / "outbox")
    with TestClient(create_app(encoder_provider=lambda: None, mailer=outbox)) as client:
        token = csrf_from(client.get("/subscribe").text)
        again = client.post("/subscribe", data={"email": "m@example.org", "csrf": token})
    assert again.status_code == 200
    assert len(list_outbox(tmp_path / "outbox")) == 1


def test_production_without_a_secret_key_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERTIDE_DATABASE_URL", "postgresql://db.invalid/papertide")
    monkeypatch.delenv("PAPERTIDE_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="PAPERTIDE_SECRET_KEY is required"):
            create_app(encoder_provider=lambda: None)
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "hf-daily"], "give saved files, --date D, or --since D"),
        (["ingest", "hf-daily", "--date", "21/08/2026"], "dates are YYYY-MM-DD"),
        (["ingest", "arxiv-api"], "give exactly one of --query or --ids"),
        (["ingest", "arxiv-api", "--query", "cat:cs.CL", "--ids", "2401.00001"], "give exactly one of"),
        (["ingest", "arxiv-oai", "--from", "yesterday"], "--from must be YYYY-MM-DD"),
        (["ingest", "kaggle", "x.jsonl", "--since", "2024"], "--since must be YYYY-MM-DD"),
    ],
)
def test_command_line_mistakes_are_named(database: str, args: list[str], message: str) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_an_hf_file_not_named_by_its_day_fails_clearly(database: str, tmp_path: Path) -> None:
    path = tmp_path / "latest.json"
    path.write_text(json.dumps([]))
    with pytest.raises(service.IngestError, match=r"cannot tell the day of latest\.json"):
        ingest_jobs.ingest_hf_files([path])


def test_a_status_that_retrying_cannot_fix_fails_at_once() -> None:
    with serve(lambda path, query: (400, {}, b"Bad Request: malformed id")) as server:
        fetcher = Fetcher(source="arxiv-api", clock=FakeClock(), policy=RetryPolicy(attempts=5))
        with pytest.raises(SourceError, match="answered HTTP 400: Bad Request: malformed id"):
            fetcher.get(server.url + "/api/query", {"id_list": "abc"})
    assert len(server.requests) == 1


def test_a_dead_parser_process_fails_the_load_with_its_exit_code() -> None:
    context = multiprocessing.get_context("spawn")
    dead = context.Process(target=os._exit, args=(3,))
    dead.start()
    dead.join()
    with pytest.raises(SourceError, match=r"parser process died \(exit code 3\)"):
        kaggle_run._next_chunk(context.Queue(), [dead])


def test_an_expired_form_and_a_token_of_another_form_are_refused_by_name(
    database: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestClient(create_app(encoder_provider=lambda: None)) as client:
        subscribe_token = csrf_from(client.get("/subscribe").text)
        other_form = deps.csrf_token(get_settings(), "confirm")
        wrong_form = client.post("/subscribe", data={"email": "x@example.org", "csrf": other_form})
        monkeypatch.setattr(deps, "CSRF_MAX_AGE_SECONDS", -1)  # every token is past its age now
        expired = client.post("/subscribe", data={"email": "x@example.org", "csrf": subscribe_token})

    assert wrong_form.status_code == 400
    assert "belongs to another form" in wrong_form.text
    assert expired.status_code == 400
    assert "The form has expired" in expired.text
    assert session.scalars(select(Subscriber)).all() == []


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"text": "agents", "limit": True}, "limit"),
        ({"text": "agents", "limit": "5"}, "limit"),
        ({"text": "agents", "limit": 5, "model": "other"}, "model"),
    ],
)
def test_similar_refuses_a_limit_that_is_not_an_integer_and_unknown_fields(
    database: str, body: dict[str, object], named: str
) -> None:
    with TestClient(create_app(encoder_provider=lambda: None)) as client:
        response = client.post("/api/v1/similar", json=body)
    assert response.status_code == 422
    assert any(named in problem for problem in response.json()["detail"])


def test_a_relay_without_smtputf8_takes_a_domain_beyond_ascii_and_an_address_it_cannot_carry_is_named(
    database: str, session: Session
) -> None:
    """reader@bücher.example needs no SMTPUTF8: it goes as reader@xn--bcher-kva.example. josé@ does
    need it: "try again later" would never work, so the form says what is wrong with the address."""
    inbox = Inbox()
    with smtp_server(inbox, smtputf8=False) as port:
        app = create_app(encoder_provider=lambda: None, mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"))
        with TestClient(app) as client:
            token = csrf_from(client.get("/subscribe").text)
            idn = client.post("/subscribe", data={"email": "new@bücher.example", "csrf": token})
            beyond = client.post("/subscribe", data={"email": "josé@example.org", "csrf": token})

    assert idn.status_code == 200
    assert inbox.recipients == [["new@xn--bcher-kva.example"]]
    assert str(inbox.messages[0]["To"]) == "new@xn--bcher-kva.example"
    assert beyond.status_code == 422
    assert ADDRESS_NEEDS_SMTPUTF8 in beyond.text.replace("&#39;", "'")


def test_the_dev_outbox_writes_an_address_beyond_ascii_as_itself_not_as_an_encoded_word(
    database: str, tmp_path: Path
) -> None:
    """RFC 2047 §5 allows no encoded word inside an address: the outbox writes what an SMTPUTF8
    server would receive, the address in UTF-8."""
    outbox = tmp_path / "outbox"
    with TestClient(create_app(encoder_provider=lambda: None, mailer=OutboxMailer(outbox))) as client:
        token = csrf_from(client.get("/subscribe").text)
        assert client.post("/subscribe", data={"email": "ünï@exämple.org", "csrf": token}).status_code == 200

    [written] = list_outbox(outbox)
    head = written.read_bytes().partition(b"\n\n")[0]
    assert "To: ünï@exämple.org".encode() in head
    assert b"=?utf-8?" not in head


def test_the_longest_address_a_form_takes_signs_up_with_the_dev_outbox(database: str, tmp_path: Path) -> None:
    """A file name holds 255 bytes; an address may have 254 characters: the outbox names the file
    by a shortened address, so the sign-up is not a 503 that no retry can fix."""
    longest = [
        f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 57}.org",
        f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'e' * 57}.org",
    ]
    assert {len(address) for address in longest} == {254}
    outbox = tmp_path / "outbox"
    with TestClient(create_app(encoder_provider=lambda: None, mailer=OutboxMailer(outbox))) as client:
        for address in longest:
            token = csrf_from(client.get("/subscribe").text)
            assert client.post("/subscribe", data={"email": address, "csrf": token}).status_code == 200

    written = list_outbox(outbox)
    assert len(written) == 2
    assert all(len(path.name.encode()) <= 255 for path in written)
    # Alike for their first 64 characters: the names still tell them apart.
    assert len({path.name.split("-", 1)[1] for path in written}) == 2
