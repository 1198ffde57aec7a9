"""What a reader changes on the manage page, checked at the service: every refusal names its field
and changes nothing; votes land in the reader's own profile and the latest one stands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide import db
from papertide.models import PaperVote, Subscriber, SubscriberStatus, TokenPurpose
from papertide.subscribers import preferences, repository, service
from papertide.subscribers.preferences import FieldError, UnknownPaper, UnknownProfile
from tests.factories import make_paper

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def reader(session: Session, email: str = "reader@example.org") -> Subscriber:
    subscriber = Subscriber(
        email=email, status=SubscriberStatus.CONFIRMED, papers_per_digest=8, interest_mix=0.5
    )
    session.add(subscriber)
    session.flush()
    return subscriber


def add(
    session: Session, subscriber: Subscriber, name: str, phrases: str = "speech", categories: str = ""
) -> int:
    return preferences.add_profile(
        session, subscriber=subscriber, name=name, phrases=phrases, categories=categories
    ).id


def names(session: Session, subscriber: Subscriber) -> list[str]:
    return [p.name for p in repository.profiles(session, subscriber.id)]


def test_profiles_are_added_in_order_with_their_phrases_and_categories(tx_session: Session) -> None:
    subscriber = reader(tx_session)

    add(tx_session, subscriber, "speech", "speech synthesis\nvoice cloning, speech synthesis")
    add(tx_session, subscriber, "RL theory", "", "cs.LG stat.ML, cs.LG")

    first, second = repository.profiles(tx_session, subscriber.id)
    assert (first.name, first.phrases, first.categories) == (
        "speech",
        ["speech synthesis", "voice cloning"],
        [],
    )
    assert (second.name, second.phrases, second.categories) == ("RL theory", [], ["cs.LG", "stat.ML"])
    assert first.position < second.position


def test_ten_profiles_fit_and_the_eleventh_is_refused_by_name(tx_session: Session) -> None:
    subscriber = reader(tx_session)
    for n in range(preferences.MAX_PROFILES):
        add(tx_session, subscriber, f"topic {n}")

    with pytest.raises(FieldError, match="You have 10 profiles, the most there can be") as refused:
        add(tx_session, subscriber, "one more")

    assert refused.value.field == "name"
    assert len(names(tx_session, subscriber)) == 10


@pytest.mark.parametrize(
    ("name", "phrases", "categories", "field", "message"),
    [
        ("", "speech", "", "name", "Give the profile a name"),
        ("x" * 61, "speech", "", "name", "at most 60 characters"),
        ("trending", "speech", "", "name", "the digest's own section"),
        ("Speech", "speech", "", "name", "You already have a profile named “Speech”"),
        ("audio", "", "", "phrases", "at least one phrase or one arXiv category"),
        ("audio", ", ".join(f"p{n}" for n in range(11)), "", "phrases", "at most 10 interests"),
        ("audio", "speech", "cs.CL, <script>", "categories", "“<script>” is not an arXiv category"),
        ("audio", "speech", "cs.CL; DROP", "categories", "is not an arXiv category"),
        ("audio", "speech", "-", "categories", "“-” is not an arXiv category"),
        ("audio", "speech", "cs.CL a-.-", "categories", "“a-.-” is not an arXiv category"),
        ("audio", "\u200b", "", "phrases", "at least one phrase or one arXiv category"),
        ("audio", "\u202e\u202c, \x7f", "", "phrases", "at least one phrase or one arXiv category"),
        (
            "audio",
            "speech",
            "cs.AI cs.AR cs.CC cs.CE cs.CG cs.CL cs.CR cs.CV cs.CY cs.DB cs.DC",
            "categories",
            "at most 10",
        ),
        # Shaped like categories, but arXiv has none such: the section would stay empty for ever.
        ("audio", "", "cs.XX", "categories", "“cs.XX” is not an arXiv category: arXiv has no such name"),
        ("audio", "speech", "cs.CL zz.ZZ", "categories", "“zz.ZZ” is not an arXiv category"),
        ("audio", "speech", "cs.LGG", "categories", "“cs.LGG” is not an arXiv category"),
        ("audio", "speech", "hep-th.FOO", "categories", "“hep-th.FOO” is not an arXiv category"),
    ],
)
def test_a_bad_profile_is_refused_naming_its_field(
    tx_session: Session, name: str, phrases: str, categories: str, field: str, message: str
) -> None:
    subscriber = reader(tx_session)
    add(tx_session, subscriber, "speech")

    with pytest.raises(FieldError, match=message) as refused:
        add(tx_session, subscriber, name, phrases, categories)

    assert refused.value.field == field
    assert names(tx_session, subscriber) == ["speech"]


def test_editing_the_phrases_marks_the_model_for_retraining_and_a_rename_does_not(
    tx_session: Session,
) -> None:
    subscriber = reader(tx_session)
    profile_id = add(tx_session, subscriber, "speech", "speech synthesis")

    renamed = preferences.edit_profile(
        tx_session,
        subscriber=subscriber,
        profile_id=profile_id,
        name="TTS",
        phrases="speech synthesis",
        categories="",
    )
    assert (renamed.name, renamed.model_stale) == ("TTS", False)

    changed = preferences.edit_profile(
        tx_session,
        subscriber=subscriber,
        profile_id=profile_id,
        name="TTS",
        phrases="voice",
        categories="eess.AS",
    )
    assert (changed.phrases, changed.categories, changed.model_stale) == (["voice"], ["eess.AS"], True)


def test_a_profile_keeps_its_own_name_and_cannot_take_another_ones(tx_session: Session) -> None:
    subscriber = reader(tx_session)
    speech = add(tx_session, subscriber, "speech")
    add(tx_session, subscriber, "vision")

    preferences.edit_profile(
        tx_session, subscriber=subscriber, profile_id=speech, name="Speech", phrases="tts", categories=""
    )
    with pytest.raises(FieldError, match="already have a profile named “VISION”"):
        preferences.edit_profile(
            tx_session, subscriber=subscriber, profile_id=speech, name="VISION", phrases="tts", categories=""
        )


def test_another_readers_profile_cannot_be_edited_deleted_or_moved(tx_session: Session) -> None:
    owner, other = reader(tx_session, "owner@example.org"), reader(tx_session, "other@example.org")
    theirs = add(tx_session, owner, "speech")

    with pytest.raises(UnknownProfile):
        preferences.edit_profile(
            tx_session, subscriber=other, profile_id=theirs, name="mine", phrases="x", categories=""
        )
    with pytest.raises(UnknownProfile):
        preferences.delete_profile(tx_session, subscriber=other, profile_id=theirs)
    with pytest.raises(UnknownProfile):
        preferences.move_profile_up(tx_session, subscriber=other, profile_id=theirs)
    assert names(tx_session, owner) == ["speech"]


def test_a_profile_moves_up_and_is_deleted_with_its_votes(tx_session: Session) -> None:
    subscriber = reader(tx_session)
    add(tx_session, subscriber, "a")
    add(tx_session, subscriber, "b")
    c = add(tx_session, subscriber, "c")
    paper = make_paper(tx_session)
    preferences.record_vote(tx_session, subscriber_id=subscriber.id, profile_id=c, paper_id=paper.id, vote=1)

    preferences.move_profile_up(tx_session, subscriber=subscriber, profile_id=c)
    assert names(tx_session, subscriber) == ["a", "c", "b"]

    preferences.delete_profile(tx_session, subscriber=subscriber, profile_id=c)
    assert names(tx_session, subscriber) == ["a", "b"]
    assert tx_session.scalars(select(PaperVote)).all() == []


def test_moving_the_first_profile_up_changes_nothing(tx_session: Session) -> None:
    subscriber = reader(tx_session)
    a = add(tx_session, subscriber, "a")
    add(tx_session, subscriber, "b")
    add(tx_session, subscriber, "c")

    preferences.move_profile_up(
        tx_session, subscriber=subscriber, profile_id=a
    )  # a second click, a stale tab

    assert names(tx_session, subscriber) == ["a", "b", "c"]


def test_categories_are_taken_in_any_case_and_kept_as_arxiv_spells_them(tx_session: Session) -> None:
    subscriber = reader(tx_session)

    add(tx_session, subscriber, "mixed", categories="CS.CL, Physics.Optics HEP-TH cond-mat.STR-EL math")

    [profile] = repository.profiles(tx_session, subscriber.id)
    assert profile.categories == ["cs.CL", "physics.optics", "hep-th", "cond-mat.str-el", "math"]


def test_the_limits_the_page_states_are_accepted(tx_session: Session) -> None:
    subscriber = reader(tx_session)
    name = "n" * preferences.MAX_PROFILE_NAME
    categories = "cs.AI cs.AR cs.CC cs.CE cs.CG cs.CL cs.CR cs.CV cs.CY cs.DB"  # MAX_CATEGORIES of them

    add(tx_session, subscriber, name, categories=categories)
    preferences.set_digest_size(
        subscriber=subscriber, papers_per_section=" 50 ", trending_papers="50", interest_mix="1"
    )

    assert names(tx_session, subscriber) == [name]
    assert len(repository.profiles(tx_session, subscriber.id)[0].categories) == 10
    assert (subscriber.papers_per_digest, subscriber.trending_papers, subscriber.interest_mix) == (
        50,
        50,
        1.0,
    )


def test_the_zones_offered_are_places(tx_session: Session) -> None:
    zones = set(preferences.time_zone_names())

    assert not zones & {"Factory", "posixrules", "localtime"}
    assert preferences.parse_time_zone(" Asia/Kolkata ") == "Asia/Kolkata"


def test_digest_size_and_mix_are_stored(tx_session: Session) -> None:
    subscriber = reader(tx_session)

    preferences.set_digest_size(
        subscriber=subscriber, papers_per_section="12", trending_papers="0", interest_mix="0.75"
    )

    assert (subscriber.papers_per_digest, subscriber.trending_papers, subscriber.interest_mix) == (
        12,
        0,
        0.75,
    )


@pytest.mark.parametrize(
    ("papers", "trending", "mix", "field"),
    [
        ("0", "5", "0.5", "papers_per_section"),
        ("51", "5", "0.5", "papers_per_section"),
        ("eight", "5", "0.5", "papers_per_section"),
        ("1_0", "5", "0.5", "papers_per_section"),
        ("\uff15", "5", "0.5", "papers_per_section"),  # full-width 5
        ("8", "\u0665", "0.5", "trending_papers"),  # Arabic-Indic 5
        ("8", "5", "0.2_5", "interest_mix"),
        ("8", "-1", "0.5", "trending_papers"),
        ("8", "51", "0.5", "trending_papers"),
        ("8", "5", "1.5", "interest_mix"),
        ("8", "5", "nan", "interest_mix"),
        ("8", "5", "", "interest_mix"),
    ],
)
def test_a_size_out_of_range_is_refused_and_nothing_changes(
    tx_session: Session, papers: str, trending: str, mix: str, field: str
) -> None:
    subscriber = reader(tx_session)
    before = (subscriber.papers_per_digest, subscriber.trending_papers, subscriber.interest_mix)

    with pytest.raises(FieldError) as refused:
        preferences.set_digest_size(
            subscriber=subscriber, papers_per_section=papers, trending_papers=trending, interest_mix=mix
        )

    assert refused.value.field == field
    assert (subscriber.papers_per_digest, subscriber.trending_papers, subscriber.interest_mix) == before


@pytest.mark.parametrize(
    ("frequency", "days", "weekly_day", "send_days"),
    [
        ("daily", ["3"], "1", [1, 2, 3, 4, 5, 6, 7]),
        ("weekdays", ["5", "1", "3", "1"], "1", [1, 3, 5]),
        ("weekly", ["1", "2"], "6", [6]),
    ],
)
def test_the_schedule_is_stored_as_send_days_hour_and_zone(
    tx_session: Session, frequency: str, days: list[str], weekly_day: str, send_days: list[int]
) -> None:
    subscriber = reader(tx_session)

    preferences.set_schedule(
        subscriber=subscriber,
        frequency=frequency,
        days=days,
        weekly_day=weekly_day,
        send_hour="18",
        time_zone="Asia/Kolkata",
    )
    tx_session.flush()  # the table's checks accept it too

    assert (subscriber.frequency, subscriber.send_days) == (frequency, send_days)
    assert (subscriber.send_hour, subscriber.time_zone) == (18, "Asia/Kolkata")


@pytest.mark.parametrize(
    ("typed", "kept"), [("europe/berlin", "Europe/Berlin"), (" utc ", "UTC"), ("US/PACIFIC", "US/Pacific")]
)
def test_a_zone_name_in_another_case_is_kept_as_the_zone_database_writes_it(
    tx_session: Session, typed: str, kept: str
) -> None:
    subscriber = reader(tx_session)

    preferences.set_schedule(
        subscriber=subscriber, frequency="daily", days=[], weekly_day="1", send_hour="7", time_zone=typed
    )

    assert subscriber.time_zone == kept


@pytest.mark.parametrize(
    ("frequency", "days", "weekly_day", "hour", "zone", "field", "message"),
    [
        ("weekdays", [], "1", "7", "UTC", "days", "at least one day"),
        ("weekdays", ["8"], "1", "7", "UTC", "days", "Choose a day of the week"),
        # More digits than int() reads (4,300): refused by its field, not a ValueError of int's own.
        ("weekdays", ["1" * 4301], "1", "7", "UTC", "days", "Choose a day of the week"),
        ("weekly", [], "0" * 4300 + "1", "7", "UTC", "weekly_day", "Choose a day of the week"),
        ("weekly", [], "0", "7", "UTC", "weekly_day", "Choose a day of the week"),
        ("hourly", [], "1", "7", "UTC", "frequency", "every day, chosen weekdays, or once a week"),
        ("daily", [], "1", "24", "UTC", "send_hour", "from 0 to 23"),
        ("daily", [], "1", "7", "Mars/Olympus_Mons", "time_zone", "not a time zone name we know"),
        ("daily", [], "1", "7", "../../etc/passwd", "time_zone", "not a time zone name we know"),
        ("daily", [], "1", "7", "asia/kolkatta", "time_zone", "not a time zone name we know"),
        ("daily", [], "1", "7", "", "time_zone", "Choose a time zone"),
    ],
)
def test_a_bad_schedule_is_refused_and_nothing_changes(
    tx_session: Session,
    frequency: str,
    days: list[str],
    weekly_day: str,
    hour: str,
    zone: str,
    field: str,
    message: str,
) -> None:
    subscriber = reader(tx_session)

    with pytest.raises(FieldError, match=message) as refused:
        preferences.set_schedule(
            subscriber=subscriber,
            frequency=frequency,
            days=days,
            weekly_day=weekly_day,
            send_hour=hour,
            time_zone=zone,
        )

    assert refused.value.field == field
    assert (subscriber.send_days, subscriber.send_hour, subscriber.time_zone) == (
        [1, 2, 3, 4, 5, 6, 7],
        7,
        "UTC",
    )


def test_categories_as_arxiv_writes_them_are_kept() -> None:
    assert preferences.parse_categories("hep-th, q-bio.NC cs.CL math-ph stat.ML") == [
        "hep-th",
        "q-bio.NC",
        "cs.CL",
        "math-ph",
        "stat.ML",
    ]


def test_a_subject_class_typed_in_lowercase_is_kept_as_arxiv_spells_it() -> None:
    assert preferences.parse_categories("cs.cl, stat.ml cs.CL cond-mat.str-el") == [
        "cs.CL",
        "stat.ML",
        "cond-mat.str-el",
    ]


def test_a_mix_of_minus_zero_is_stored_as_zero(tx_session: Session) -> None:
    subscriber = reader(tx_session)

    preferences.set_digest_size(
        subscriber=subscriber, papers_per_section="8", trending_papers="5", interest_mix="-0"
    )

    assert str(subscriber.interest_mix) == "0.0", "the page shows 0, not -0"


def test_an_hour_in_other_digits_is_refused(tx_session: Session) -> None:
    subscriber = reader(tx_session)

    with pytest.raises(FieldError, match="Give a whole number from 0 to 23") as refused:
        preferences.set_schedule(
            subscriber=subscriber,
            frequency="daily",
            days=[],
            weekly_day="1",
            send_hour="\uff11\uff18",
            time_zone="UTC",
        )

    assert refused.value.field == "send_hour"
    assert subscriber.send_hour == 7


def test_phrases_read_as_shown_and_repeat_regardless_of_case() -> None:
    assert service.parse_interests("\u202eStraße\u202c, STRASSE\n sp\x7feech \u200b, ,\u2060") == [
        "Straße",
        "speech",
    ]


def test_every_zone_offered_is_one_python_can_load() -> None:
    zones = preferences.time_zone_names()

    assert {"UTC", "America/Los_Angeles", "Asia/Kolkata", "Pacific/Chatham"} <= set(zones)
    assert list(zones) == sorted(zones)


def test_pause_keeps_the_first_time_and_resume_clears_it(tx_session: Session) -> None:
    subscriber = reader(tx_session)

    preferences.pause(subscriber=subscriber, now=NOW)
    preferences.pause(subscriber=subscriber, now=NOW.replace(hour=10))
    assert subscriber.paused_at == NOW

    preferences.resume(subscriber=subscriber, now=NOW.replace(hour=11))
    assert subscriber.paused_at is None
    assert subscriber.resumed_at == NOW.replace(hour=11)


def test_the_latest_vote_stands_and_marks_the_profile_for_retraining(tx_session: Session) -> None:
    subscriber = reader(tx_session)
    profile_id = add(tx_session, subscriber, "speech")
    paper = make_paper(tx_session)

    preferences.record_vote(
        tx_session, subscriber_id=subscriber.id, profile_id=profile_id, paper_id=paper.id, vote=1
    )
    preferences.record_vote(
        tx_session, subscriber_id=subscriber.id, profile_id=profile_id, paper_id=paper.id, vote=-1
    )

    votes = tx_session.scalars(select(PaperVote)).all()
    assert [(v.profile_id, v.paper_id, v.vote) for v in votes] == [(profile_id, paper.id, -1)]
    profile = repository.get_profile(tx_session, profile_id)
    assert profile is not None
    assert profile.model_stale


def test_a_vote_for_someone_elses_profile_or_an_unknown_paper_is_refused(tx_session: Session) -> None:
    owner, other = reader(tx_session, "owner@example.org"), reader(tx_session, "other@example.org")
    theirs = add(tx_session, owner, "speech")
    paper = make_paper(tx_session)

    with pytest.raises(UnknownProfile):
        preferences.record_vote(
            tx_session, subscriber_id=other.id, profile_id=theirs, paper_id=paper.id, vote=1
        )
    with pytest.raises(UnknownPaper):
        preferences.record_vote(
            tx_session, subscriber_id=owner.id, profile_id=theirs, paper_id="0000.00000", vote=1
        )
    with pytest.raises(service.SubscriptionError, match="A vote is"):
        preferences.record_vote(
            tx_session, subscriber_id=owner.id, profile_id=theirs, paper_id=paper.id, vote=2
        )
    assert tx_session.scalars(select(PaperVote)).all() == []


def test_a_vote_whose_profile_was_deleted_since_it_was_read_is_refused_not_a_foreign_key_error(
    database: str,
) -> None:
    """The vote's request read the profile (the vote page); the manage page in another tab deleted
    it before the vote was stored: the vote is refused as for a deleted profile."""
    with db.session_factory()() as setup:
        subscriber = reader(setup)
        profile_id, paper_id = add(setup, subscriber, "speech"), make_paper(setup).id
        subscriber_id = subscriber.id
        setup.commit()
    with db.session_factory()() as voting:
        read = repository.get_profile(voting, profile_id)  # held: it stays in the identity map
        assert read is not None
        with db.session_factory()() as manage:
            owner = repository.lock(manage, subscriber_id)
            assert owner is not None
            preferences.delete_profile(manage, subscriber=owner, profile_id=profile_id)
            manage.commit()

        with pytest.raises(UnknownProfile):
            preferences.record_vote(
                voting, subscriber_id=subscriber_id, profile_id=profile_id, paper_id=paper_id, vote=1
            )


def test_a_trending_papers_vote_may_teach_any_of_the_readers_profiles(tx_session: Session) -> None:
    subscriber = reader(tx_session)
    speech, vision = add(tx_session, subscriber, "speech"), add(tx_session, subscriber, "vision")

    assert [
        p.id for p in preferences.vote_targets(tx_session, subscriber_id=subscriber.id, profile_id=None)
    ] == [
        speech,
        vision,
    ]
    assert [
        p.id for p in preferences.vote_targets(tx_session, subscriber_id=subscriber.id, profile_id=vision)
    ] == [vision]


def test_signing_up_again_gives_a_confirmed_address_a_manage_link_and_no_confirm_link(
    tx_session: Session,
) -> None:
    subscriber = reader(tx_session, "known@example.org")
    add(tx_session, subscriber, "speech")

    again = service.subscribe(tx_session, email="known@example.org", interests="crypto", frequency="daily")
    new = service.subscribe(tx_session, email="new@example.org", interests="crypto", frequency="daily")

    assert again.confirm_token is None
    assert again.manage_token is not None
    link = service.read_link(tx_session, again.manage_token, TokenPurpose.MANAGE)
    assert link is not None
    assert link.subscriber.id == subscriber.id
    assert new.confirm_token is not None
    assert new.manage_token is not None  # beside the confirm link; it opens once confirmed
    assert names(tx_session, subscriber) == ["speech"]


def test_chosen_weekdays_are_picked_on_the_manage_page_not_at_sign_up(tx_session: Session) -> None:
    with pytest.raises(service.SubscriptionError, match="daily or weekly"):
        service.subscribe(tx_session, email="new@example.org", interests="", frequency="weekdays")


def test_a_reader_cookie_names_nobody_once_its_reader_has_left(tx_session: Session) -> None:
    subscriber = reader(tx_session)
    subscriber.confirmed_at = NOW
    tx_session.flush()
    stamp = preferences.subscription_stamp(subscriber)
    assert (
        preferences.current_reader(tx_session, subscriber_id=subscriber.id, subscribed=stamp) == subscriber.id
    )

    subscriber.status = SubscriberStatus.UNSUBSCRIBED  # confirmed_at is kept: the status decides
    tx_session.flush()

    assert preferences.current_reader(tx_session, subscriber_id=subscriber.id, subscribed=stamp) is None
    assert not preferences.from_an_earlier_subscription(
        tx_session, subscriber_id=subscriber.id, subscribed=stamp
    )


def test_a_subscription_begun_again_within_the_second_has_its_own_reader_key() -> None:
    again = NOW + timedelta(milliseconds=1)

    assert preferences.stamp_of(NOW) != preferences.stamp_of(again)
    assert preferences.reader_key(7, preferences.stamp_of(NOW)) != preferences.reader_key(
        7, preferences.stamp_of(again)
    )
