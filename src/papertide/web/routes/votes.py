"""Votes, "more like this" / "less like this": from a digest's signed link, and from a paper page.
A sent digest's link is `/vote/<signed digest>/<rank>/<more|less>`; `/vote/<signed vote>` is the
link of a preview, and of digests sent before there was the former.

A digest's vote link opens a page with one button; only the button's POST records the vote, so a
mail scanner that follows every link in a message records nothing. The vote lands in the profile
whose section carried the paper; a paper from the Trending section asks which profile it teaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from papertide.config import Settings
from papertide.digests import service as digest_service
from papertide.models import InterestProfile, Paper
from papertide.papers import repository as paper_repository
from papertide.signing import MAX_AGE_SECONDS, LinkPurpose, LinkState, verify
from papertide.subscribers import preferences
from papertide.subscribers.preferences import NotSubscribed, UnknownPaper, UnknownProfile
from papertide.web.deps import SessionDep, SettingsDep, check_csrf, templates
from papertide.web.reader_cookie import VOTE_FORM, reader_id

router = APIRouter()
NOT_FOUND = "This vote link is not valid. Use the buttons in your newest digest."
PROFILE_GONE = (
    "The interest profile this paper was sent for has been deleted, so this vote has nowhere to go."
)
OLD_SUBSCRIPTION = (
    "This vote link came with a digest of an earlier subscription of this address, so no vote was "
    "recorded. Vote from a newer digest, or from the paper's page."
)
ProfileField = Annotated[str, Form(max_length=24)]
BIGINT_MAX = 2**63 - 1  # a profile id past this is nobody's (and Postgres could not compare it)


@dataclass(frozen=True)
class Ballot:
    """What a signed vote link says: whose vote, for which profile (None: Trending), on what."""

    subscriber_id: int
    profile_id: int | None
    paper_id: str
    vote: int
    subscription: int | None = None  # None: a link from a digest sent before links named it


def _ballot(settings: Settings, signed: str) -> Ballot:
    verified = verify(settings.resolved_secret_key(), LinkPurpose.VOTE, signed)
    if verified.state == LinkState.EXPIRED:
        raise _expired()
    p = verified.payload
    valid = (
        verified.state == LinkState.VALID
        and type(p.get("s")) is int
        and (p.get("p") is None or type(p.get("p")) is int)
        and isinstance(p.get("paper"), str)
        and p.get("v") in (1, -1)
        and (p.get("c") is None or type(p.get("c")) is int)
    )
    if not valid:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return Ballot(
        subscriber_id=p["s"], profile_id=p["p"], paper_id=p["paper"], vote=p["v"], subscription=p.get("c")
    )


def _expired() -> HTTPException:
    days = MAX_AGE_SECONDS[LinkPurpose.VOTE] // 86400
    return HTTPException(
        status_code=410,
        detail=f"This vote link has expired (they work for {days} days), so no vote was recorded. "
        "Vote from a newer digest, or from the paper's page.",
    )


def _paper(session: Session, paper_id: str) -> Paper:
    paper = paper_repository.get_paper(session, paper_id)
    if paper is None:
        raise HTTPException(status_code=404, detail=f"No paper with id {paper_id!r}.")
    return paper


def _targets(session: Session, ballot: Ballot) -> list[InterestProfile]:
    _same_subscription(session, ballot)
    try:
        return preferences.vote_targets(
            session, subscriber_id=ballot.subscriber_id, profile_id=ballot.profile_id
        )
    except NotSubscribed as error:
        raise HTTPException(status_code=410, detail=str(error)) from None
    except UnknownProfile:
        raise HTTPException(status_code=410, detail=PROFILE_GONE) from None


@router.get("/vote/{signed}", response_class=HTMLResponse)
def vote_page(request: Request, session: SessionDep, settings: SettingsDep, signed: str) -> HTMLResponse:
    """One button per profile the vote may teach; the GET itself records nothing."""
    ballot = _ballot(settings, signed)
    return _vote_page(request, session, ballot, action=f"/vote/{signed}")


@router.post("/vote/{signed}", response_class=HTMLResponse)
def vote(
    request: Request, session: SessionDep, settings: SettingsDep, signed: str, profile: ProfileField = ""
) -> HTMLResponse:
    """The button's POST. No CSRF token: the signature on the link is the proof that it comes from
    the reader's own digest (as with the one-click unsubscribe), and the link cannot be forged."""
    return _cast(request, session, _ballot(settings, signed), profile=profile)


@router.get("/vote/{signed}/{rank}/{direction}", response_class=HTMLResponse)
def digest_vote_page(
    request: Request, session: SessionDep, settings: SettingsDep, signed: str, rank: str, direction: str
) -> HTMLResponse:
    """A sent digest's link: the same page, for the item at `rank` of the digest `signed` names."""
    ballot = _digest_ballot(session, settings, signed, rank=rank, direction=direction)
    return _vote_page(request, session, ballot, action=f"/vote/{signed}/{rank}/{direction}")


@router.post("/vote/{signed}/{rank}/{direction}", response_class=HTMLResponse)
def digest_vote(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    signed: str,
    rank: str,
    direction: str,
    profile: ProfileField = "",
) -> HTMLResponse:
    """Its button's POST (no CSRF token, as above: the signed digest is the proof)."""
    ballot = _digest_ballot(session, settings, signed, rank=rank, direction=direction)
    return _cast(request, session, ballot, profile=profile)


def _digest_ballot(session: Session, settings: Settings, signed: str, *, rank: str, direction: str) -> Ballot:
    """What a sent digest's vote link says: the item's paper and the profile whose section carried
    it come from the ledger. Its rank and direction are outside the signature: whoever holds the
    digest may vote either way on any of its items, as its buttons let them."""
    verified = verify(settings.resolved_secret_key(), LinkPurpose.DIGEST_VOTE, signed)
    if verified.state == LinkState.EXPIRED:
        raise _expired()
    delivery_id = verified.payload.get("d")
    valid = (
        verified.state == LinkState.VALID
        and type(delivery_id) is int
        and 0 < delivery_id <= BIGINT_MAX
        and rank.isascii()
        and rank.isdigit()
        and len(rank) <= MAX_RANK_DIGITS
        and direction in DIRECTIONS
    )
    key = verified.payload.get("r")
    item = None
    if valid and isinstance(delivery_id, int) and isinstance(key, str):
        item = digest_service.voted_item(session, delivery_id=delivery_id, rank=int(rank))
    if item is None or not isinstance(key, str):
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    if not preferences.same_reader(key, item.reader_key):
        # Sent to an earlier subscription of the address (or, after a restore from a backup, the
        # id is another reader's digest now): whoever holds that email is not vouched for.
        raise HTTPException(status_code=410, detail=OLD_SUBSCRIPTION)
    if item.profile_gone:
        raise HTTPException(status_code=410, detail=PROFILE_GONE)
    return Ballot(
        subscriber_id=item.subscriber_id,
        profile_id=item.profile_id,
        paper_id=item.paper_id,
        vote=DIRECTIONS[direction],
    )


DIRECTIONS = {"more": 1, "less": -1}
MAX_RANK_DIGITS = 4  # a digest holds a few dozen items


def _vote_page(request: Request, session: Session, ballot: Ballot, *, action: str) -> HTMLResponse:
    paper = _paper(session, ballot.paper_id)
    context = {
        "paper": paper,
        "vote": ballot.vote,
        "profiles": _targets(session, ballot),
        "action": action,
        "csrf_token": None,
    }
    return templates.TemplateResponse(request, "pages/vote.html", context)


def _cast(request: Request, session: Session, ballot: Ballot, *, profile: str) -> HTMLResponse:
    paper = _paper(session, ballot.paper_id)
    if ballot.profile_id is not None:
        chosen = _targets(session, ballot)[0]
    else:
        _same_subscription(session, ballot)
        chosen = _chosen_profile(session, subscriber_id=ballot.subscriber_id, raw=profile)
    return _record(
        request, session, subscriber_id=ballot.subscriber_id, profile=chosen, paper=paper, value=ballot.vote
    )


def _same_subscription(session: Session, ballot: Ballot) -> None:
    """A link from a digest of an earlier subscription of the address (it unsubscribed and came
    back) votes for nobody: whoever holds that old email is not vouched for by the new confirm."""
    if ballot.subscription is None:
        return
    if preferences.from_an_earlier_subscription(
        session, subscriber_id=ballot.subscriber_id, subscribed=ballot.subscription
    ):
        raise HTTPException(status_code=410, detail=OLD_SUBSCRIPTION)


def _chosen_profile(session: Session, *, subscriber_id: int, raw: str) -> InterestProfile:
    """The profile picked on the page: it must be one of the reader's own."""
    number = raw.strip()
    if not (number.isascii() and number.isdigit()):
        raise HTTPException(status_code=400, detail="Choose the profile this vote should teach.")
    try:
        if int(number) > BIGINT_MAX:
            raise UnknownProfile(number)
        [profile] = preferences.vote_targets(session, subscriber_id=subscriber_id, profile_id=int(number))
    except NotSubscribed as error:
        raise HTTPException(status_code=410, detail=str(error)) from None
    except UnknownProfile:
        raise HTTPException(
            status_code=403, detail="That profile is not one of yours, so no vote was recorded."
        ) from None
    return profile


def _record(
    request: Request,
    session: Session,
    *,
    subscriber_id: int,
    profile: InterestProfile,
    paper: Paper,
    value: int,
) -> HTMLResponse:
    try:
        preferences.record_vote(
            session, subscriber_id=subscriber_id, profile_id=profile.id, paper_id=paper.id, vote=value
        )
    except UnknownPaper as error:
        raise HTTPException(status_code=404, detail=str(error)) from None
    except NotSubscribed as error:
        raise HTTPException(status_code=410, detail=str(error)) from None
    except UnknownProfile:
        # Deleted (the manage page, another tab) after this request read it.
        raise HTTPException(status_code=410, detail=PROFILE_GONE) from None
    context = {"paper": paper, "vote": value, "recorded": profile}
    return templates.TemplateResponse(request, "pages/vote.html", context)


@router.post("/papers/{paper_id:path}/vote", response_class=HTMLResponse)
def vote_on_paper_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    paper_id: str,
    vote: Annotated[str, Form(max_length=4)] = "",
    profile: ProfileField = "",
    csrf: Annotated[str | None, Form(max_length=500)] = None,
) -> HTMLResponse:
    """The paper page's buttons, for a browser a manage link has marked as the reader's."""
    check_csrf(request, settings, csrf, VOTE_FORM)
    subscriber_id = reader_id(request, settings, session)
    if subscriber_id is None:
        raise HTTPException(
            status_code=403,
            detail="This browser is not marked as a subscriber's: open the manage link from your digest first.",
        )
    if vote not in ("1", "-1"):
        raise HTTPException(status_code=400, detail="Choose “more like this” or “less like this”.")
    paper = _paper(session, paper_id)
    chosen = _chosen_profile(session, subscriber_id=subscriber_id, raw=profile)
    return _record(
        request, session, subscriber_id=subscriber_id, profile=chosen, paper=paper, value=int(vote)
    )
