"""Atom feeds: trending, a search, a topic, and each interest profile's private feed.

The public three list what their pages list; the search feed takes the search page's fields and
refuses what it refuses (web/search_views.py), with the same sentences.

Trending and topic feeds change only with a score run, so they are kept and validated by it like
their pages (web/caching.py: ETag, Last-Modified, 304, public Cache-Control). A search feed is not
kept: its results move with the keyword index between runs, and endless query strings would push
the pages out of the process's cache; it gets a short public max-age. A profile's feed is private.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from papertide.digests import build as digest_build
from papertide.papers import repository as paper_repository
from papertide.ranking import repository as ranking_repository
from papertide.search.keyword_index import KeywordIndexUnavailable
from papertide.web import caching, feeds, search_views
from papertide.web.deps import EncoderProviderDep, KeywordIndexDep, ReadSessionDep, SessionDep, SettingsDep
from papertide.web.guards import INT4_MAX
from papertide.web.routes.topics import no_such_topic

router = APIRouter(prefix="/feeds", tags=["feeds"])
PERIOD_NAMES = {"day": "today", "week": "this week", "month": "this month"}
NOT_FOUND = "This feed address is not valid, or its profile was deleted or unsubscribed."
SEARCH_CACHE_CONTROL = caching.DATA.cache_control


@router.get("/trending.atom", response_class=Response)
def trending_feed(
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    period: Annotated[str, Query(pattern="^(day|week|month)$")] = "day",
) -> Response:
    """The trending page's first page, as a feed."""

    def render() -> Response:
        rows = ranking_repository.trending(session, period=period, limit=feeds.FEED_SIZE)
        feed = feeds.feed(
            title=f"Trending papers {PERIOD_NAMES[period]} · papertide",
            subtitle=f"The {feeds.FEED_SIZE} papers trending most {PERIOD_NAMES[period]}, by engagement and its growth.",
            self_path=f"/feeds/trending.atom?period={period}",
            alternate_path=f"/?period={period}",
            papers=[paper for paper, _ in rows],
            base_url=settings.base_url,
            updated=[score.computed_at for _, score in rows],
        )
        return feeds.atom_response(request, feed)

    return caching.respond(request, render, policy=caching.DATA)


@router.get("/search.atom", response_class=Response)
def search_feed(
    request: Request,
    session: SessionDep,
    encoder: EncoderProviderDep,
    keywords: KeywordIndexDep,
    settings: SettingsDep,
    form: Annotated[search_views.SearchForm, Query()],
) -> Response:
    """The results of a search (the search page's fields), as a feed."""
    try:
        query = form.to_query()
    except ValidationError as error:
        raise HTTPException(status_code=422, detail=search_views.explain(error)) from None
    try:
        page = search_views.run_search(session, query, encoder=encoder, keywords=keywords, settings=settings)
    except KeywordIndexUnavailable as error:
        raise HTTPException(status_code=503, detail=search_views.unavailable_sentence(error)) from None
    about = " ".join(
        part for part in (query.q, f"by {query.filters.author}" if query.filters.author else "") if part
    )
    feed = feeds.feed(
        title=f"“{about}” · papertide search",
        subtitle=f"Papers matching “{about}” ({query.mode.value} search).",
        self_path=feeds.search_feed_path(query),
        alternate_path=search_views.link(query),
        papers=[hit.paper for hit in page.hits],
        base_url=settings.base_url,
    )
    answer = feeds.atom_response(request, feed, headers={"cache-control": SEARCH_CACHE_CONTROL})
    return caching.validated_by_content(request, answer, last_modified=feed.updated)


@router.get("/topics/{topic_id}.atom", response_class=Response)
def topic_feed(
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    topic_id: Annotated[int, Path(ge=0, le=INT4_MAX)],
) -> Response:
    """A topic's papers, as its page lists them."""

    def render() -> Response:
        topic = paper_repository.get_topic(session, topic_id)
        if topic is None:
            raise no_such_topic(topic_id)
        feed = feeds.feed(
            title=f"{topic.label} · papertide topic",
            subtitle=f"Papers in the topic “{topic.label}”, by their trend this month.",
            self_path=f"/feeds/topics/{topic_id}.atom",
            alternate_path=f"/topics/{topic_id}",
            papers=[paper for paper, _ in ranking_repository.topic_papers(session, topic_id)],
            base_url=settings.base_url,
            updated=[topic.updated_at],
        )
        return feeds.atom_response(request, feed)

    return caching.respond(request, render, policy=caching.DATA)


@router.get("/profiles/{token}.atom", response_class=Response)
def profile_feed(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    encoder: EncoderProviderDep,
    token: Annotated[str, Path(max_length=200)],
) -> Response:
    """A reader's interest profile: what its section of the digest would hold now. A read-write
    session: composing it may store the profile's retrained model, as a digest run would."""
    key = feeds.feed_key_from(settings, token)
    version = (
        digest_build.profile_feed_version(session, profile_id=key.profile_id, reader_key=key.reader_key)
        if key is not None
        else None
    )
    if key is None or version is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    profile_id = key.profile_id

    def render() -> Response:
        found = digest_build.profile_feed(session, profile_id=profile_id, encoder=encoder)
        if found is None:
            raise HTTPException(status_code=404, detail=NOT_FOUND)
        feed = feeds.feed(
            title=f"{found.profile.name} · your papertide profile",
            subtitle=f"Papers trending {PERIOD_NAMES[found.period]} that fit your profile “{found.profile.name}”.",
            self_path=f"/feeds/profiles/{token}.atom",
            alternate_path="/",
            papers=[paper for paper, _ in found.papers],
            base_url=settings.base_url,
        )
        return feeds.atom_response(request, feed, headers={"x-robots-tag": "noindex"})

    # Composing a profile's section loads the candidates and may load the model: a feed reader
    # polling every few minutes gets the answer kept for this score run and these settings, or a
    # 304 (web/caching.py); an edited profile or a vote is a new version, answered fresh. Private:
    # the URL is the reader's key, so no shared cache may keep it.
    return caching.respond(request, render, policy=caching.PRIVATE_DATA, version=version)
