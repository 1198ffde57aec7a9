"""Conditional GET and a per-process page cache, both keyed by the last score run.

Trending, topics, their feeds and their API answers change only when a score run finishes (every
rescore is a "score" run: the cron, the worker after new embeddings, a digest's own rescore;
worker/jobs.py). So the newest ok score run is the validator:

- `ETag` is weak (`W/"<run>.<hash>"`): the run, the path and query, whether the ranking is shown
  as stale (ranking.trending.STALE_AFTER, the page says so) and the app version; `Last-Modified`
  is the run's end.
- `If-None-Match` holding the current ETag (or, with no `If-None-Match`, an `If-Modified-Since`
  not before the run's end) gets a 304 with no body, and nothing is rendered.
- Anonymous answers get `Cache-Control: public, max-age=60, stale-while-revalidate=600`: a CDN or
  the browser keeps them a minute, then revalidates (a 304 while the run is the same). HTML pages
  add `Vary: Cookie`.
- A personal request (one carrying the reader cookie, web/reader_cookie.py: a page may show that
  reader's vote buttons) gets `Cache-Control: private, no-cache` and is rendered fresh, never stored.
- Each web process keeps rendered answers by (run, stale, path+query) and looks the last run up at
  most once a second (RUN_CHECK_SECONDS): a hit touches no database, and every process serves a
  new run within about a second of its end. PAPERTIDE_PAGE_CACHE=0 stops storing answers (the
  validators and 304s stay). Until the first score run nothing is cached and no validator is sent.

Data that changes between score runs without one (a title an ingest corrected) shows with the next
run, at most SCORE_CRON later.

Apply it in a route by handing over how to build the answer; it runs only on a miss:

    return caching.respond(request, lambda: templates.TemplateResponse(request, ..., context))
    return await caching.respond_async(request, render)  # async route: a hit never leaves the loop

A sync route may render with its own (lazy) `ReadSessionDep`: a hit runs no query on it. An async
route's `render` runs in the thread pool and opens `db.read_session()` itself.
"""

from __future__ import annotations

import copy
import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TypeVar

from fastapi import Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from papertide import __version__, db
from papertide.config import get_settings
from papertide.papers.dates import email_date
from papertide.ranking import repository as ranking_repository
from papertide.ranking.trending import STALE_AFTER
from papertide.web.reader_cookie import COOKIE_NAME

ResponseT = TypeVar("ResponseT", bound=Response)

RUN_CHECK_SECONDS = 1.0  # how long a process trusts its last look at job_run
MAX_ENTRIES = 512  # answers kept per process; junk query strings cannot grow it past this
PRIVATE = "private, no-cache"


@dataclass(frozen=True)
class Policy:
    """How long shared caches and browsers may keep an anonymous answer, and what it varies on."""

    max_age: int
    stale_while_revalidate: int
    vary: tuple[str, ...] = ()
    public: bool = True  # False: one reader's answer (its URL is its key): never in a shared cache

    @property
    def cache_control(self) -> str:
        if not self.public:
            return PRIVATE
        return f"public, max-age={self.max_age}, stale-while-revalidate={self.stale_while_revalidate}"


PAGE = Policy(max_age=60, stale_while_revalidate=600, vary=("Cookie",))  # HTML pages
DATA = Policy(max_age=60, stale_while_revalidate=600)  # feeds and JSON: the same for every reader
# A private feed (its URL holds the reader's token): kept here per run like the rest, so a feed
# reader that polls gets a 304 or the kept answer, but browsers and proxies must revalidate.
PRIVATE_DATA = Policy(max_age=0, stale_while_revalidate=0, public=False)


@dataclass(frozen=True)
class ScoreRun:
    """The newest ok score run (None fields: none yet) and the data clock its scores are as of."""

    run_id: int | None = None
    finished_at: datetime | None = None
    as_of: datetime | None = None

    def stale(self, now: datetime) -> bool:
        """The ranking is older than STALE_AFTER (the trending page says so)."""
        return self.as_of is not None and now - self.as_of > STALE_AFTER


class PageCache:
    """One web process's view of the last score run and the answers rendered for it."""

    def __init__(self, *, store: bool) -> None:
        self.store = store
        self.run = ScoreRun()
        self.checked = -math.inf
        # Least recently used first: a flood of one-off query strings pushes out other one-offs,
        # not the front page that every other request asks for.
        self.entries: OrderedDict[str, tuple[str, Response]] = OrderedDict()
        self._lock = threading.Lock()
        self._entries_lock = threading.Lock()  # the event loop and the thread pool both use entries

    def fresh_run(self) -> ScoreRun | None:
        """The run as last read, if that was under RUN_CHECK_SECONDS ago (no database)."""
        return self.run if time.monotonic() - self.checked < RUN_CHECK_SECONDS else None

    def current_run(self) -> ScoreRun:
        """The run, re-read from job_run when the last look is too old (one thread reads, others wait)."""
        if (run := self.fresh_run()) is not None:
            return run
        with self._lock:
            if (run := self.fresh_run()) is not None:
                return run
            run = self._read_run()
            if run.run_id != self.run.run_id:
                with self._entries_lock:
                    self.entries.clear()  # answers of an older run are never served again: free them
            self.run, self.checked = run, time.monotonic()
            return run

    def _read_run(self) -> ScoreRun:
        with db.read_session() as session:
            last = ranking_repository.last_score_run(session)
            if last is None:
                return ScoreRun()
            if last[0] == self.run.run_id:
                return self.run
            # The data clock is read once per run: it scans paper_score.
            return ScoreRun(
                run_id=last[0], finished_at=last[1], as_of=ranking_repository.scored_as_of(session)
            )

    def has(self, key: str, etag: str) -> bool:
        """An answer for `key` under `etag` is kept: the resource exists as of this run."""
        with self._entries_lock:
            found = self.entries.get(key)
            if found is None or found[0] != etag:
                return False
            self.entries.move_to_end(key)
            return True

    def get(self, key: str, etag: str) -> Response | None:
        with self._entries_lock:
            found = self.entries.get(key)
            if found is None or found[0] != etag:
                return None
            self.entries.move_to_end(key)
        return _copy(found[1])

    def keep(self, key: str, etag: str, response: Response) -> None:
        if not self.store:
            return
        kept = _copy(response)
        with self._entries_lock:
            self.entries[key] = (etag, kept)
            self.entries.move_to_end(key)
            while len(self.entries) > MAX_ENTRIES:
                self.entries.popitem(last=False)


def page_cache(request: Request) -> PageCache:
    """The app's cache, made on first use (PAPERTIDE_PAGE_CACHE says whether it stores answers)."""
    state = request.app.state
    cache: PageCache | None = getattr(state, "page_cache", None)
    if cache is None:
        cache = state.page_cache = PageCache(store=get_settings().page_cache)
    return cache


def score_run(request: Request) -> ScoreRun:
    """The newest ok score run as this process knows it (at most RUN_CHECK_SECONDS old)."""
    return page_cache(request).current_run()


def is_personal(request: Request) -> bool:
    """The request carries the reader cookie: a page may show this reader's own controls."""
    return COOKIE_NAME in request.cookies


def uncached_page(request: Request, response: ResponseT) -> ResponseT:
    """A page rendered on every request (a paper page counts its views): never kept by a shared
    cache for another visitor, and for a personal request not kept at all (it shows that reader's
    profile names on their vote buttons)."""
    response.headers["Vary"] = "Cookie"
    if is_personal(request):
        response.headers["Cache-Control"] = PRIVATE
    return response


def respond(
    request: Request,
    render: Callable[[], Response],
    *,
    policy: Policy = PAGE,
    personal: bool = False,
    version: str = "",
) -> Response:
    """The answer `render` builds, served from this process's cache or as a 304 when it can be.

    `version`: what else the answer depends on besides the run and the URL (a profile's settings),
    so that a change to it is a new answer at once."""
    if personal:
        return _private(render(), policy)
    cache = page_cache(request)
    run = cache.current_run()
    if run.run_id is None:
        return render()  # nothing to validate against until the first score run
    key, etag = _key(request, run, version)
    # A 304 says "what you hold is still the answer": only once this run's answer is known to be a
    # page, not a 404 (a topic that is gone; If-None-Match: * matches only what exists).
    if cache.has(key, etag) and _not_modified(request, etag, run):
        return _not_modified_response(etag, run, policy)
    if (hit := cache.get(key, etag)) is not None:
        return hit
    response = render()
    if response.status_code != 200 or "set-cookie" in response.headers:
        return response  # an error page, or one that sets a cookie, is nobody else's answer
    _validators(response, etag, run, policy)
    cache.keep(key, etag, response)
    if _not_modified(request, etag, run):
        return _not_modified_response(etag, run, policy)
    return response


async def respond_async(
    request: Request, render: Callable[[], Response], *, policy: Policy = PAGE, personal: bool = False
) -> Response:
    """respond() for an async route: a 304 or a hit is answered on the event loop, anything that
    may need the database (a run check, a render) in the thread pool."""
    if not personal:
        cache = page_cache(request)
        run = cache.fresh_run()
        if run is not None and run.run_id is not None:
            key, etag = _key(request, run)
            if cache.has(key, etag) and _not_modified(request, etag, run):
                return _not_modified_response(etag, run, policy)
            if (hit := cache.get(key, etag)) is not None:
                return hit
    return await run_in_threadpool(respond, request, render, policy=policy, personal=personal)


def validated_by_content(request: Request, response: Response, *, last_modified: datetime) -> Response:
    """Validators for an answer that no score run describes (a search feed: it follows the keyword
    index): a weak ETag from its bytes and `last_modified` (its newest entry). A matching
    If-None-Match gets a 304: the answer is still computed, but not sent again to a feed reader
    that polls."""
    etag = f'W/"c.{hashlib.blake2b(bytes(response.body), digest_size=8).hexdigest()}"'
    wanted = request.headers.get("if-none-match")
    if wanted is not None and etag.removeprefix("W/") in {
        tag.strip().removeprefix("W/") for tag in wanted.split(",")
    }:
        response = Response(
            status_code=304, headers={"cache-control": response.headers.get("cache-control", "")}
        )
    response.headers["ETag"] = etag
    response.headers["Last-Modified"] = format_datetime(last_modified.astimezone(UTC), usegmt=True)
    return response


def json_response(model: BaseModel) -> Response:
    """A JSON answer as FastAPI would send it for the route's response_model (by alias), to cache."""
    return Response(model.model_dump_json(by_alias=True), media_type="application/json")


def _key(request: Request, run: ScoreRun, version: str = "") -> tuple[str, str]:
    stale = run.stale(datetime.now(UTC))
    key = f"{int(stale)}{version}{request.url.path}?{request.url.query}"
    digest = hashlib.blake2b(f"{__version__}|{run.run_id}|{key}".encode(), digest_size=8).hexdigest()
    return key, f'W/"{run.run_id}.{digest}"'


def _not_modified(request: Request, etag: str, run: ScoreRun) -> bool:
    """RFC 9110 section 13.1: If-None-Match (weak comparison) wins; If-Modified-Since only without it."""
    wanted = request.headers.get("if-none-match")
    if wanted is not None:
        tags = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
        return "*" in tags or etag.removeprefix("W/") in tags
    since = request.headers.get("if-modified-since")
    if since is None or run.finished_at is None:
        return False
    try:
        then = email_date(since)
    except ValueError:
        return False
    if then.tzinfo is None:
        return False
    return run.finished_at.replace(microsecond=0) <= then


def _validators(response: Response, etag: str, run: ScoreRun, policy: Policy) -> None:
    response.headers["ETag"] = etag
    if run.finished_at is not None:
        response.headers["Last-Modified"] = format_datetime(run.finished_at.astimezone(UTC), usegmt=True)
    response.headers["Cache-Control"] = policy.cache_control
    if policy.vary:
        response.headers["Vary"] = ", ".join(policy.vary)


def _not_modified_response(etag: str, run: ScoreRun, policy: Policy) -> Response:
    response = Response(status_code=304)
    _validators(response, etag, run, policy)
    return response


def _private(response: Response, policy: Policy) -> Response:
    response.headers["Cache-Control"] = PRIVATE
    if policy.vary:
        response.headers["Vary"] = ", ".join(policy.vary)
    return response


def _copy(response: Response) -> Response:
    """A shallow copy with its own header list: middleware may add headers to the one it sends."""
    clone = copy.copy(response)
    clone.__dict__.pop("_headers", None)
    clone.raw_headers = list(response.raw_headers)
    return clone
