"""Subscribing: the operator's digest defaults take effect for every new subscriber."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.orm import Session

from papertide import db
from papertide.config import Settings
from papertide.digests.mailer import OutboxMailer
from papertide.subscribers import service
from papertide.web.app import create_app
from tests.factories import FakeEncoder
from tests.helpers import csrf_from, subscriber_by_email


def test_a_new_subscriber_gets_the_defaults_given(tx_session: Session) -> None:
    defaults = service.DigestDefaults(papers=3, interest_mix=0.8)

    outcome = service.subscribe(
        tx_session, email="Reader@Example.org", interests="speech", frequency="daily", defaults=defaults
    )

    assert (outcome.subscriber.papers_per_digest, outcome.subscriber.interest_mix) == (3, 0.8)
    assert outcome.subscriber.email == "reader@example.org"


def test_the_subscribe_form_uses_the_configured_defaults(
    database: str, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERTIDE_DIGEST_PAPERS", "5")
    monkeypatch.setenv("PAPERTIDE_DIGEST_INTEREST_MIX", "0.25")
    db.reset()
    app = create_app(encoder_provider=lambda: FakeEncoder(), mailer=OutboxMailer(tmp_path))
    with TestClient(app) as client:
        token = csrf_from(client.get("/subscribe").text)
        client.post("/subscribe", data={"email": "new@example.org", "interests": "agents", "csrf": token})

    stored = subscriber_by_email(session, "new@example.org")
    assert (stored.papers_per_digest, stored.interest_mix) == (5, 0.25)


@pytest.mark.parametrize(("name", "value"), [("digest_papers", 0), ("digest_interest_mix", 1.5)])
def test_a_default_out_of_range_is_refused_with_its_name(name: str, value: float) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings.model_validate({name: value})
