"""Every /api/v1 response, on real sample data, matches the schema /openapi.json publishes for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from papertide.digests.mailer import OutboxMailer
from papertide.web.app import create_app
from papertide.worker import jobs

PAPER = "2608.19880"  # EnvHarness: on the day's trending list, found by search, embedded
SUMMARY = {
    "id",
    "title",
    "authors",
    "categories",
    "published_at",
    "announced_at",
    "abs_url",
    "pdf_url",
    "code_url",
    "project_url",
}
# (method, path as OpenAPI names it, URL, JSON body): every /api/v1 route, each with real data.
CALLS = [
    *[
        ("get", "/api/v1/trending", f"/api/v1/trending?period={p}&limit=5", None)
        for p in ("day", "week", "month")
    ],
    *[
        ("get", "/api/v1/search", f"/api/v1/search?q=EnvHarness agent environments&mode={m}&limit=5", None)
        for m in ("hybrid", "keyword", "semantic")
    ],
    ("get", "/api/v1/papers/{paper_id}", f"/api/v1/papers/{PAPER}", None),
    ("get", "/api/v1/papers/{paper_id}/similar", f"/api/v1/papers/{PAPER}/similar?limit=3", None),
    (
        "post",
        "/api/v1/similar",
        "/api/v1/similar",
        {"text": "Agents learn in simulated environments.", "limit": 3},
    ),
    ("get", "/api/v1/topics", "/api/v1/topics", None),
]


@pytest.fixture
def client(sample_database: str, real_encoder: object, tmp_path) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    jobs.score()  # clusters the embedded papers, so /api/v1/topics has topics to list
    app = create_app(encoder_provider=lambda: real_encoder, mailer=OutboxMailer(tmp_path / "outbox"))  # type: ignore[arg-type,return-value]
    with TestClient(app) as test_client:
        yield test_client


def response_schema(openapi: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The published 200 body schema, rooted so that its `#/components/...` references resolve."""
    schema = openapi["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    return {**schema, "components": openapi["components"]}


def validator(openapi: dict[str, Any], method: str, path: str) -> jsonschema.Draft202012Validator:
    schema = response_schema(openapi, method, path)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def objects_in(schema: Any, components: dict[str, Any], seen: set[str]) -> Iterator[dict[str, Any]]:
    """Every object schema with named properties that `schema` reaches, references followed once."""
    if isinstance(schema, list):
        for item in schema:
            yield from objects_in(item, components, seen)
    if not isinstance(schema, dict):
        return
    if "$ref" in schema and schema["$ref"] not in seen:
        seen.add(schema["$ref"])
        yield from objects_in(components["schemas"][schema["$ref"].rsplit("/", 1)[1]], components, seen)
    if "properties" in schema:
        yield schema
    for key, value in schema.items():
        if key not in ("$ref", "components"):
            yield from objects_in(value, components, seen)


def test_every_api_route_publishes_a_closed_200_schema(client: TestClient) -> None:
    openapi = client.get("/openapi.json").json()
    routes = {
        (method, path)
        for path, operations in openapi["paths"].items()
        if path.startswith("/api/v1/")
        for method in operations
    }

    assert routes == {(method, path) for method, path, _, _ in CALLS}, "CALLS covers every route"
    for method, path in routes:
        schema = openapi["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema, f"{method} {path} publishes no response schema"
        objects = list(objects_in(schema, openapi["components"], set()))
        assert objects, f"{method} {path} publishes no object schema"
        for part in objects:
            assert part.get("additionalProperties") is False, f"{part.get('title')} accepts undeclared fields"


def test_every_api_response_matches_its_published_schema(client: TestClient) -> None:
    openapi = client.get("/openapi.json").json()

    for method, path, url, body in CALLS:
        response = client.request(method.upper(), url, json=body)
        assert response.status_code == 200, f"{method} {url}: {response.text}"
        data = response.json()
        check = validator(openapi, method, path)
        check.validate(data)
        assert data.get("results", [data]), f"{method} {url} returned no papers or topics"
        with pytest.raises(jsonschema.ValidationError):
            check.validate({**data, "undeclared": 1})
        if data.get("results"):
            first = {**data["results"][0], "undeclared": 1}
            with pytest.raises(jsonschema.ValidationError):
                check.validate({**data, "results": [first]})


def test_a_paper_has_the_same_summary_fields_everywhere(client: TestClient) -> None:
    trending = client.get("/api/v1/trending", params={"period": "day", "limit": 100}).json()["results"]
    search = client.get("/api/v1/search", params={"q": "EnvHarness"}).json()["results"]
    similar = client.get(f"/api/v1/papers/{PAPER}/similar", params={"limit": 3}).json()["results"]
    paper = client.get(f"/api/v1/papers/{PAPER}").json()

    in_trending = next(row for row in trending if row["id"] == PAPER)
    in_search = next(row for row in search if row["id"] == PAPER)
    assert set(in_trending) - {"score", "components"} == SUMMARY
    assert set(in_search) - {"score", "keyword_rank", "semantic_rank", "similarity", "matched"} == SUMMARY
    assert set(similar[0]) - {"score", "keyword_rank", "semantic_rank", "similarity"} == SUMMARY
    assert set(paper) - {"abstract", "trend", "signals"} == SUMMARY
    assert {key: in_trending[key] for key in SUMMARY} == {key: paper[key] for key in SUMMARY}
    assert {key: in_search[key] for key in SUMMARY} == {key: paper[key] for key in SUMMARY}
    assert paper["code_url"] == "https://github.com/google-research/envharness"


def test_errors_match_the_published_error_schema(client: TestClient) -> None:
    openapi = client.get("/openapi.json").json()
    # (method, path as OpenAPI names it, URL, status): a bad parameter, an unknown paper.
    errors = [
        ("get", "/api/v1/trending", "/api/v1/trending?period=year", 422),
        ("get", "/api/v1/search", "/api/v1/search?q=", 422),
        ("get", "/api/v1/papers/{paper_id}", "/api/v1/papers/0000.00000", 404),
        ("get", "/api/v1/papers/{paper_id}/similar", "/api/v1/papers/0000.00000/similar", 404),
    ]
    for method, path, url, status in errors:
        response = client.request(method.upper(), url)
        assert response.status_code == status, url
        published = openapi["paths"][path][method]["responses"][str(status)]["content"]["application/json"]
        schema = {**published["schema"], "components": openapi["components"]}
        jsonschema.Draft202012Validator(schema).validate(response.json())
        assert response.json()["detail"], url
