"""Property-based fuzzing of the app against its own OpenAPI (schemathesis, in process, seeded).

Every /api/v1 operation gets generated valid and invalid input; each answer must be a non-5xx
whose status and body the OpenAPI document declares. The HTML pages are fuzzed for "no 5xx" only
(their 200 bodies are HTML, not the JSON shapes the schema describes).
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, positive_data_acceptance
from sqlalchemy.orm import Session

from papertide.search import query_syntax
from papertide.search import service as search_service
from papertide.web.app import create_app
from papertide.worker import jobs
from tests.factories import FakeEncoder, make_paper

# Examples per operation and generation mode (valid, then invalid input), with a fixed seed:
# enough to find the review's inputs again, few enough to keep the module well under a minute.
API_EXAMPLES = 30
PAGE_EXAMPLES = 15
API = [
    "GET /api/v1/trending",
    "GET /api/v1/search",
    "POST /api/v1/similar",
    "GET /api/v1/papers/{paper_id}",
    "GET /api/v1/papers/{paper_id}/similar",
    "GET /api/v1/topics",
    "GET /healthz",
]


@pytest.fixture
def app(database: str, session: Session) -> FastAPI:
    """A small corpus: a few papers, embedded by the fake encoder and scored."""
    for n in range(6):
        make_paper(
            session, title=f"Speech synthesis study {n}", abstract=f"Diffusion models for speech, part {n}."
        )
    session.commit()
    encoder = FakeEncoder()
    jobs.embed(encoder=encoder)
    jobs.score()
    return create_app(encoder_provider=lambda: encoder)


@pytest.fixture
def schema(app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def operations(schema: Any) -> dict[str, Any]:
    return {op.label: op for op in (result.ok() for result in schema.get_all_operations())}


def fuzz(operation: Any, check: Any, *, examples: int) -> None:
    """`check(case)` on `examples` generated cases of each mode, with a fixed seed."""
    raw = operation.definition.raw
    takes_input = bool(raw.get("parameters") or raw.get("requestBody"))
    for mode in (
        (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if takes_input else (GenerationMode.POSITIVE,)
    ):

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            check(case)

        try:
            run()
        except Unsatisfiable:
            # Only possible for invalid input: an operation whose inputs accept anything has none.
            assert mode == GenerationMode.NEGATIVE, operation.label


def test_the_fuzzed_list_is_every_api_operation(schema: Any) -> None:
    published = {label for label in operations(schema) if label.split()[1].startswith(("/api/", "/healthz"))}
    assert published == set(API)


def breaks_a_search_rule(params: dict[str, Any]) -> bool:
    """/api/v1/search's two rules that OpenAPI cannot state (they join two parameters): a word to
    find or an author, and `from` on or before `to`."""
    nothing = query_syntax.parse(str(params.get("q", ""))).empty and not str(params.get("author", "")).split()
    start, end = params.get("from"), params.get("to")
    return nothing or (
        start is not None and end is not None and date.fromisoformat(start) > date.fromisoformat(end)
    )


def check_search(case: Any) -> None:
    """The published checks, except that valid-looking input may be refused for breaking those rules."""
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    if case.meta.generation.mode.is_positive and response.status_code == 422:
        assert breaks_a_search_rule(case.query or {}), response.text


def breaks_a_trending_rule(params: dict[str, Any]) -> bool:
    """/api/v1/trending's rules that OpenAPI cannot state: at most one of `date`, `week` and
    `month`, and a week that the year has (2025 has no W53, 2026 has)."""
    spans = [name for name in ("date", "week", "month") if params.get(name) is not None]
    week = params.get("week")
    if week is None or len(spans) > 1:
        return len(spans) > 1
    year, number = int(week[:4]), int(week[6:])
    return number > date(year, 12, 28).isocalendar().week  # 28 December is always in the last week


def check_trending(case: Any) -> None:
    """The published checks, except that valid-looking input may be refused for breaking those rules."""
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    if case.meta.generation.mode.is_positive and response.status_code == 422:
        assert breaks_a_trending_rule(case.query or {}), response.text


def check_similar(case: Any) -> None:
    """The published checks, except that valid-looking input may be refused for the passage rule
    its description states and no pattern can (a letter or digit, in any script)."""
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    if case.meta.generation.mode.is_positive and response.status_code == 422:
        body = case.body if isinstance(case.body, dict) else {}
        assert search_service.passage_problem(str(body.get("text", ""))) is not None, response.text


CHECKS = {
    "GET /api/v1/search": check_search,
    "GET /api/v1/trending": check_trending,
    "POST /api/v1/similar": check_similar,
}


@pytest.mark.parametrize("label", API)
def test_api_operation_answers_what_its_schema_declares(schema: Any, label: str) -> None:
    check = CHECKS.get(label, lambda case: case.call_and_validate())
    fuzz(operations(schema)[label], check, examples=API_EXAMPLES)


def test_no_page_answers_5xx(schema: Any) -> None:
    pages = [op for label, op in operations(schema).items() if label not in API]
    assert len(pages) >= 10
    for operation in pages:
        fuzz(
            operation,
            lambda case: case.call_and_validate(checks=[not_a_server_error]),
            examples=PAGE_EXAMPLES,
        )


@settings(
    max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
@given(
    text=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
    | st.sampled_from(["\x00", "a\x00b"]),
    number=st.integers(min_value=-(2**70), max_value=2**70),
)
def test_pages_take_any_text_and_any_integer_without_a_5xx(app: FastAPI, text: str, number: int) -> None:
    """The review's own inputs, on the page routes by hand: NUL, odd text, integers past int4."""
    client = TestClient(app)  # no lifespan to run: a client per example costs nothing
    urls = [
        f"/papers/{quote(text, safe='')}",
        f"/topics/{number}",
        f"/?{urlencode({'period': text, 'page': number})}",
        f"/search?{urlencode({'q': text, 'mode': 'keyword'})}",
        f"/api/v1/papers/{quote(text, safe='')}/similar?{urlencode({'limit': number})}",
        f"/api/v1/search?{urlencode({'q': text, 'limit': number})}",
    ]
    for url in urls:
        assert client.get(url).status_code < 500, url
    assert client.post("/search/like", data={"text": text}).status_code < 500
