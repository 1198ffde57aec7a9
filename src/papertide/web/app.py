"""create_app(): routers, error pages, health and metrics."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from sqlalchemy import exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from papertide import __version__
from papertide.config import get_settings
from papertide.digests.mailer import Mailer, mailer_from_settings
from papertide.embeddings import query_encoder
from papertide.embeddings.encoder import Encoder, embed_queries_on_one_thread, get_encoder
from papertide.papers import repository as paper_repository
from papertide.search.keyword_index import KeywordIndexUnavailable
from papertide.web import api_docs, cors, guards, headers, outage, slashes
from papertide.web.deps import SessionDep
from papertide.web.errors import error_response
from papertide.web.head import HeadAsGet
from papertide.web.routes import (
    api,
    dev,
    digest_view,
    feeds,
    manage,
    pages,
    search,
    site_files,
    subscribe,
    topics,
    votes,
)
from papertide.web.schemas import ErrorResponse, HealthReport
from papertide.web.search_views import unavailable_sentence

log = logging.getLogger(__name__)
REQUESTS = Counter("papertide_http_requests_total", "HTTP requests", ["method", "status"])


class CountRequests:
    """Count every answer by method and status for /metrics.

    Plain ASGI: a BaseHTTPMiddleware costs a task and a stream per request, more than a cached page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                REQUESTS.labels(scope["method"], str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counted)


def lazy_encoder() -> Callable[[], Encoder | None]:
    """Load the model on first use; if it cannot load, search falls back to keywords only."""
    lock = threading.Lock()
    state: dict[str, Any] = {}

    def provide() -> Encoder | None:
        with lock:
            if "encoder" not in state:
                try:
                    embed_queries_on_one_thread()
                    state["encoder"] = query_encoder.for_queries(
                        get_encoder(), data_dir=get_settings().data_dir
                    )
                except Exception:
                    log.exception("embedding model failed to load; semantic search is off")
                    state["encoder"] = None
            return state["encoder"]  # type: ignore[no-any-return]

    return provide


def create_app(
    *,
    encoder_provider: Callable[[], Encoder | None] | None = None,
    mailer: Mailer | None = None,
    warm_query_model: bool = False,
) -> FastAPI:
    """The ASGI app; tests pass their own encoder and mailer. `warm_query_model` (`serve`, `up`):
    load the query model now, on a thread of its own, rather than in the first semantic search,
    which otherwise waited 5-10 s for it in each web process (its export and load)."""
    settings = get_settings()
    # Fail at start-up, not on the first form: production needs PAPERTIDE_SECRET_KEY (CSRF tokens).
    settings.resolved_secret_key()
    app = FastAPI(
        title="papertide",
        version=__version__,
        description="Trending papers, hybrid search, digests.",
        # /docs is served from our own files instead (web/api_docs.py), so it works offline.
        docs_url=None,
        redoc_url=None,
        # Every route, present and future: no control character in any input reaches a query, and
        # no field of one value is given two.
        dependencies=[Depends(guards.reject_control_characters), Depends(guards.reject_repeated_fields)],
        # Its redirect put the client's Host header in Location: web/slashes.py's is relative.
        redirect_slashes=False,
    )
    app.state.encoder_provider = encoder_provider or lazy_encoder()
    if warm_query_model:
        # The provider's lock makes a search that comes meanwhile wait for this load, not start
        # another. Not a daemon: a process stopped in the first seconds waits for the load to end,
        # as a daemon thread inside torch's export when the interpreter went down aborted the
        # process (SIGABRT, "terminate called without an active exception"; tests/faults/test_fleet.py).
        threading.Thread(target=app.state.encoder_provider, name="warm-query-model", daemon=False).start()
    app.state.mailer = mailer or mailer_from_settings(settings)
    for module in (pages, search, subscribe, manage, votes, digest_view, topics, feeds, api, dev, site_files):
        app.include_router(module.router)
    api_docs.add_docs(app)
    slashes.add_trailing_slash_redirect(app)  # last: only a path no route takes as it is
    # Middleware added first runs innermost. The body limit sits inside CountRequests, so its 413s
    # are counted; the security headers go outside everything, so every answer carries them, the
    # 413s included.
    # Inside BodyLimit: it reads a form body whole. The one-click unsubscribe reads no body.
    app.add_middleware(guards.Utf8Only, bodiless_posts=("/unsubscribe/",))
    app.add_middleware(guards.BodyLimit, max_bytes=settings.max_request_bytes)
    _add_basics(app)
    _add_error_pages(app)
    _publish_error_shape(app)
    # CORS only on the read-only endpoints (web/cors.py), outside the rest so that errors carry it.
    app.add_middleware(cors.ReadOnlyCors)
    app.add_middleware(headers.SecurityHeaders, https=settings.base_url.startswith("https://"))
    app.add_middleware(HeadAsGet)  # outermost: every GET route answers HEAD (web/head.py)
    return app


def _publish_error_shape(app: FastAPI) -> None:
    """Make /openapi.json describe the 422 body the API really sends (see invalid_request below),
    and the rule every string input has (no control characters: guards.reject_control_characters).

    FastAPI documents its default validation error (a list of objects) on every route; ours is
    `ErrorResponse`, so a client generated from the schema parses what it gets.
    """
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = default()
            schemas = schema.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas.pop("ValidationError", None)
                schemas["HTTPValidationError"] = ErrorResponse.model_json_schema()
                schemas["HTTPValidationError"]["title"] = "HTTPValidationError"
            guards.publish_input_rule(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_basics(app: FastAPI) -> None:
    app.add_middleware(CountRequests)

    @app.get(
        "/healthz",
        tags=["ops"],
        response_model=HealthReport,
        response_model_exclude_none=True,
        responses={503: {"model": HealthReport, "description": "A dependency is down (named in the body)"}},
    )
    def healthz(session: SessionDep) -> HealthReport | JSONResponse:
        try:
            return HealthReport(status="ok", papers=paper_repository.count_papers(session))
        except (exc.DBAPIError, exc.TimeoutError) as error:
            reason = outage.database_down(error)
            if reason is None:
                raise
            session.rollback()
            report = HealthReport(status="degraded", database=f"down: {reason}")
            retry = {"Retry-After": str(outage.RETRY_AFTER_SECONDS)}
            return JSONResponse(report.model_dump(exclude_none=True), status_code=503, headers=retry)

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _add_error_pages(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        return error_response(request, error.status_code, error.detail, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        problems = [
            f"{'.'.join(str(p) for p in item['loc'][1:]) or 'request'}: {item['msg']}"
            for item in error.errors()
        ]
        return error_response(request, 422, problems)

    @app.exception_handler(KeywordIndexUnavailable)
    async def keyword_index_unavailable(request: Request, error: KeywordIndexUnavailable) -> Response:
        # The search routes answer this themselves; here it is one raised opening the index (deps).
        log.warning("the keyword index is unavailable: %s", error)
        return error_response(request, 503, unavailable_sentence(error))

    # Only errors about reaching the database become 503; the handler re-raises any other (a bug: 500).
    app.add_exception_handler(exc.DBAPIError, outage.database_unavailable)
    app.add_exception_handler(exc.TimeoutError, outage.database_unavailable)


def app_factory() -> FastAPI:
    """For `uvicorn --factory papertide.web.app:app_factory` (papertide serve)."""
    return create_app(warm_query_model=True)
