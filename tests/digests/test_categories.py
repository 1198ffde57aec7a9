"""A profile's arXiv categories: a whole category, or an archive that takes in its subject classes
(the rule search filters use too, papers/categories.py)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.digests.mailer import SmtpMailer
from papertide.models import DigestItem, InterestProfile, Subscriber, SubscriberStatus
from papertide.papers.categories import is_known, matcher, spelled
from papertide.worker import jobs
from tests.factories import make_paper
from tests.helpers import T0, Inbox, smtp_server

DAY = date(2026, 11, 24)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_an_archive_takes_in_its_subject_classes_and_nothing_that_only_starts_like_it() -> None:
    assert matcher({"cs"})({"cs.LG", "stat.ML"}) == ["cs.LG"]
    assert matcher({"hep-th"})({"hep-th"}) == ["hep-th"]
    assert matcher({"hep"})({"hep-th", "hep-ph"}) == [], "hep is no archive of hep-th's"
    assert matcher({"cs.CL"})({"cs.LG"}) == []
    assert matcher({"math", "cs.DM"})({"math.CO", "cs.DM"}) == ["cs.DM", "math.CO"]


def test_every_category_the_recorded_sources_carry_is_in_the_taxonomy_as_spelled() -> None:
    """The list profiles are checked against holds every name real papers carry (86 in the fixtures:
    today's classes, 2007's physics and mathematics, retired archives), so no reader is refused one."""
    seen: set[str] = set()
    for path in FIXTURES.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            for listed in re.findall(r'"categories":\s*"([^"]+)"|<categories>([^<]+)</categories>', text):
                seen.update(" ".join(listed).split())
            seen.update(re.findall(r'<category term="([^"]+)"', text))

    assert len(seen) > 50
    assert {name for name in seen if not is_known(name) or spelled(name) != name} == set()
    assert spelled("physics.Optics") == "physics.optics"
    assert spelled("cond-mat.STR-EL") == "cond-mat.str-el"
    assert spelled("cs.cl") == "cs.CL"


def test_a_profile_of_an_archive_gets_its_papers_with_the_category_as_the_reason(
    database: str, session: Session
) -> None:
    for n in range(6):
        make_paper(session, id=f"2611.0000{n}", categories=["math.CO"], announced_at=T0 - timedelta(days=1))
    make_paper(session, id="2611.00010", categories=["eess.AS"], announced_at=T0 - timedelta(days=1))
    reader = Subscriber(
        email="a@example.org",
        status=SubscriberStatus.CONFIRMED,
        papers_per_digest=3,
        trending_papers=0,
        interest_mix=1.0,
    )
    session.add(reader)
    session.flush()
    session.add(
        InterestProfile(subscriber_id=reader.id, name="Audio", phrases=[], categories=["eess"], position=0)
    )
    session.commit()

    inbox = Inbox()
    with smtp_server(inbox) as port:
        jobs.send_digests(digest_date=DAY, mailer=SmtpMailer(f"smtp://127.0.0.1:{port}"), encoder=None)

    items = session.scalars(select(DigestItem).where(DigestItem.profile_id.is_not(None))).all()
    assert [item.paper_id for item in items] == ["2611.00010"], "eess takes in eess.AS, not math.CO"
    assert items[0].reason.startswith("in eess.AS")
    text = inbox.messages[0].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "in eess.AS" in text
