"""The review's input attacks (issue 8, item 4): a NUL byte in any input, out-of-range ids, huge bodies.

Each answered 500 (or read 100 MB into memory); each must get a clear 4xx that names the problem.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, MutableMapping
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from papertide.config import get_settings
from papertide.models import Subscriber, SubscriberStatus, TokenPurpose
from papertide.subscribers import service as subscriber_service
from papertide.web.app import create_app
from papertide.web.guards import BodyLimit
from tests.helpers import csrf_from

NUL = "\x00"


@pytest.fixture
def app(database: str) -> FastAPI:
    return create_app(encoder_provider=lambda: None)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def assert_names_the_control_character(response: Any, where: str) -> None:
    assert response.status_code == 422, f"{where}: {response.status_code} {response.text[:300]}"
    assert "U+0000" in response.text, where


@pytest.mark.parametrize(
    ("method", "url", "data", "body"),
    [
        ("GET", "/search?q=%00", None, None),
        ("GET", "/search?q=a%00b&mode=keyword", None, None),
        ("GET", "/search?q=a%00b&mode=semantic", None, None),
        ("GET", "/search?q=a&mode=%00", None, None),
        ("GET", "/api/v1/search?q=%00", None, None),
        ("GET", "/api/v1/search?q=a%00b&mode=keyword", None, None),
        ("GET", "/api/v1/search?q=a%00b&mode=semantic", None, None),
        ("GET", "/papers/%00", None, None),
        ("GET", "/papers/2608.19880?via=%00", None, None),
        ("GET", "/api/v1/papers/%00", None, None),
        ("GET", "/api/v1/papers/%00/similar", None, None),
        ("POST", "/search/like", {"text": "an abstract\x00"}, None),
        ("POST", "/api/v1/similar", None, {"text": "an abstract\x00"}),
        ("POST", "/api/v1/similar", None, {"text": "an abstract", "extra\x00": 1}),
        ("GET", "/?period=%00", None, None),
        ("GET", "/topics?x=%00", None, None),
        ("GET", "/confirm/%00", None, None),
        ("GET", "/unsubscribe/%00", None, None),
    ],
)
def test_a_nul_byte_anywhere_is_a_clear_422(
    client: TestClient, method: str, url: str, data: dict[str, str] | None, body: dict[str, Any] | None
) -> None:
    response = client.request(method, url, data=data, json=body)
    assert_names_the_control_character(response, url)


@pytest.mark.parametrize("field", ["email", "interests", "frequency"])
def test_a_nul_byte_in_the_subscribe_form_is_refused_and_nothing_is_stored(
    client: TestClient, session: Session, field: str
) -> None:
    form = {"email": "nul@example.org", "interests": "speech", "frequency": "daily"}
    form[field] += NUL
    form["csrf"] = csrf_from(client.get("/subscribe").text)

    response = client.post("/subscribe", data=form)

    assert_names_the_control_character(response, field)
    assert f"{field}: contains the control character U+0000" in response.text
    assert session.scalars(select(Subscriber)).all() == []


def _operations(openapi: dict[str, Any]) -> Iterator[tuple[str, str, list[tuple[str, str]], str | None]]:
    """(method, path, [(where, name)], body media type) for every operation the app publishes."""
    schemas = openapi["components"]["schemas"]
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            inputs = [(p["in"], p["name"]) for p in operation.get("parameters", [])]
            bodies = operation.get("requestBody", {}).get("content", {})
            for content in bodies.values():
                body = schemas[content["schema"]["$ref"].rsplit("/", 1)[1]]
                inputs += [("body", name) for name in body["properties"]]
            media = next(iter(bodies), None)
            yield method.upper(), path, inputs, media


def _request_with(
    path: str, method: str, inputs: list[tuple[str, str]], media: str | None, target: str
) -> dict[str, Any]:
    """A request whose input named `target` holds a NUL and every other input is plain."""
    values = {name: NUL if name == target else "1" for _, name in inputs}
    for where, name in inputs:
        if where == "path":
            path = path.replace("{" + name + "}", quote(values[name], safe=""))
    request: dict[str, Any] = {
        "method": method,
        "url": path,
        "params": {name: values[name] for where, name in inputs if where == "query"},
    }
    body = {name: values[name] for where, name in inputs if where == "body"}
    if media == "application/json":
        request["json"] = body
    elif media is not None:
        request["data"] = body
    return request


def test_every_input_of_every_route_refuses_a_nul_byte(app: FastAPI, client: TestClient) -> None:
    """Found from the published OpenAPI, so an input added later is covered without a new case."""
    checked = []
    for method, path, inputs, media in _operations(app.openapi()):
        for _, target in inputs:
            response = client.request(**_request_with(path, method, inputs, media, target))
            assert_names_the_control_character(response, f"{method} {path} {target}")
            checked.append((method, path, target))
    assert ("POST", "/subscribe", "interests") in checked
    assert ("POST", "/api/v1/similar", "text") in checked
    assert ("GET", "/api/v1/papers/{paper_id}/similar", "paper_id") in checked
    assert len(checked) > 25


@pytest.mark.parametrize("character", ["\x01", "\x1b", "\ud800"])
def test_other_control_characters_are_refused_too(client: TestClient, character: str) -> None:
    body = json.dumps(
        {"text": f"an abstract{character}"}
    )  # ASCII-escaped: a lone surrogate travels as \\ud800
    response = client.post("/api/v1/similar", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert f"U+{ord(character):04X}" in response.text


def test_tabs_and_newlines_are_ordinary_input(client: TestClient) -> None:
    assert (
        client.get("/search", params={"q": "speech\tsynthesis\r\nmodels", "mode": "keyword"}).status_code
        == 200
    )


@pytest.mark.parametrize("topic_id", ["2147483648", "-1", "99999999999999999999", "-2147483649"])
def test_a_topic_id_outside_postgres_integers_is_a_422(client: TestClient, topic_id: str) -> None:
    response = client.get(f"/topics/{topic_id}")
    assert response.status_code == 422
    assert "topic_id" in response.text


def test_the_largest_topic_id_is_simply_not_found(client: TestClient) -> None:
    response = client.get("/topics/2147483647")
    assert response.status_code == 404
    assert "No topic 2147483647" in response.text


def test_a_declared_body_over_the_limit_is_refused_unread(client: TestClient) -> None:
    text = "x" * (2 * 1024 * 1024)
    api = client.post("/api/v1/similar", json={"text": text})
    page = client.post("/search/like", data={"text": text})

    assert api.status_code == 413
    assert api.json() == {"detail": "The request body is too large: at most 65,536 bytes are accepted."}
    assert page.status_code == 413
    assert "The request body is too large" in page.text
    assert page.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("declared", [str(100 * 1024 * 1024), "9" * 5000])
def test_the_limit_answers_before_the_app_reads_a_byte(declared: str) -> None:
    """At the ASGI level: a declared Content-Length over the limit never calls receive()."""
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append("app")

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read")

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/similar",
        "raw_path": b"/api/v1/similar",
        "query_string": b"",
        "headers": [(b"content-length", declared.encode())],
        "scheme": "http",
        "server": ("testserver", 80),
    }
    asyncio.run(BodyLimit(app, max_bytes=65536)(scope, receive, send))

    assert reached == []
    assert sent[0]["status"] == 413


def test_a_chunked_body_is_counted_as_it_streams(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(100):
            yield b"y" * 4096
        yield b'"}'

    api = client.post("/api/v1/similar", content=chunks(), headers={"content-type": "application/json"})
    form = client.post(
        "/search/like",
        content=(b"text=" + b"z" * 4096 for _ in range(100)),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert "content-length" not in {k.lower() for k in api.request.headers}
    assert api.status_code == 413
    assert "at most 65,536 bytes" in api.json()["detail"]
    assert form.status_code == 413


def test_the_limit_is_a_setting(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from papertide.config import get_settings

    monkeypatch.setenv("PAPERTIDE_MAX_REQUEST_BYTES", "2048")
    get_settings.cache_clear()
    with TestClient(create_app(encoder_provider=lambda: None)) as client:
        response = client.post("/api/v1/similar", json={"text": "x" * 3000})
    get_settings.cache_clear()
    assert response.status_code == 413
    assert "at most 2,048 bytes" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/unsubscribe/abc", "/subscribe", "/api/v1/similar"])
@pytest.mark.parametrize("depth", [900, 30_000])
def test_json_nested_as_deep_as_the_body_limit_allows_is_a_4xx(
    client: TestClient, path: str, depth: int
) -> None:
    body = "[" * depth + "]" * depth
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize(
    ("where", "email"),
    [
        ("body", b"caf%E9@example.org"),  # Latin-1, as an old form or a script sends it
        ("body", b"%FF%FE@example.org"),
        ("body", b"%ED%A0%80x@example.org"),  # a surrogate, encoded
        ("body", b"\xff\xfe@example.org"),  # raw bytes: never percent-encoded
    ],
)
def test_a_form_whose_text_is_not_utf8_is_refused_not_stored_as_replacement_characters(
    client: TestClient, session: Session, where: str, email: bytes
) -> None:
    """Starlette decodes these to U+FFFD (or Latin-1) without a word: a confirmation would go to
    an address nobody typed, `��@example.org`."""
    csrf = csrf_from(client.get("/subscribe").text).encode()
    response = client.post(
        "/subscribe",
        content=b"email=" + email + b"&csrf=" + csrf,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422, response.text[:300]
    assert f"{where}: holds" in response.text
    assert "UTF-8" in response.text
    assert session.scalars(select(Subscriber)).all() == []


@pytest.mark.parametrize(
    ("url", "where"),
    [("/search?q=caf%E9", "query"), ("/papers/%FF%FE", "path"), ("/search?q=%ED%A0%80", "query")],
)
def test_a_query_or_path_that_is_not_utf8_is_a_clear_422(client: TestClient, url: str, where: str) -> None:
    response = client.get(url)
    assert response.status_code == 422
    assert f"{where}: holds the byte" in response.text


def test_text_in_utf8_and_a_typed_replacement_character_still_pass(client: TestClient) -> None:
    assert client.get("/search", params={"q": "café \ufffd speech", "mode": "keyword"}).status_code == 200
    form = {
        "email": "josé@example.org",
        "frequency": "daily",
        "csrf": csrf_from(client.get("/subscribe").text),
    }
    assert client.post("/subscribe", data=form).status_code == 200


def test_a_raw_byte_past_ascii_in_a_query_is_refused_not_read_as_latin1(app: FastAPI) -> None:
    """`?q=café` typed into curl goes unencoded; Starlette would search for `cafÃ©`."""
    sent = asyncio.run(_call(app, _scope("GET", "/search", query="q=café&mode=keyword".encode()), []))
    assert sent[0]["status"] == 422
    assert b"query: holds the raw byte 0xC3" in sent[1]["body"]


@pytest.mark.parametrize(
    ("form", "named"),
    [
        ({"email": ["a@example.org", "b@example.org"]}, "email"),
        ({"email": ["a@example.org"], "frequency": ["daily", "weekly"]}, "frequency"),
    ],
    ids=["address", "frequency"],
)
def test_a_form_field_given_twice_is_refused_by_name_not_read_as_its_last_value(
    client: TestClient, session: Session, form: dict[str, list[str]], named: str
) -> None:
    """The framework keeps the last value without a word: the confirmation went to b@ alone."""
    sent = {**form, "csrf": [csrf_from(client.get("/subscribe").text)]}

    response = client.post("/subscribe", data=sent)

    assert response.status_code == 422
    assert named in response.text
    assert "is given 2 times; it takes one value" in response.text
    assert session.scalars(select(Subscriber)).all() == []


def test_a_query_field_given_twice_is_refused_by_name_but_an_unread_one_is_left_alone(
    client: TestClient,
) -> None:
    twice = client.get("/api/v1/search", params=[("q", "speech"), ("q", "graphs")])
    page = client.get("/search", params=[("q", "speech"), ("q", "graphs")])  # a query model's field
    unread = client.get("/api/v1/trending", params=[("utm_source", "a"), ("utm_source", "b")])

    assert page.status_code == 422
    assert "is given 2 times" in page.text
    assert twice.status_code == 422
    assert any("q" in problem and "2 times" in problem for problem in twice.json()["detail"])
    assert unread.status_code == 200


def test_a_multipart_form_is_refused_as_no_form_takes_a_file(client: TestClient, session: Session) -> None:
    """Starlette reads a part that is not UTF-8 as Latin-1: the address would be stored as `café@...`."""
    csrf = csrf_from(client.get("/subscribe").text)
    response = client.post(
        "/subscribe", files={"email": (None, b"caf\xe9@example.org"), "csrf": (None, csrf)}
    )
    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in response.text
    assert session.scalars(select(Subscriber)).all() == []


def test_a_form_the_client_stops_sending_midway_is_never_acted_on(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    """Every form puts its CSRF token first, so a body cut short still passes the check: a send
    hour of 15 would be saved as 1, "speech synthesis" as "speech syn"."""
    csrf = csrf_from(client.get("/subscribe").text)
    full = f"csrf={csrf}&email=cut%40example.org&interests=speech+synthesis".encode()
    cut = full[: full.index(b"thesis")]
    chunks: list[dict[str, Any]] = [
        {"type": "http.request", "body": cut, "more_body": True},
        {"type": "http.disconnect"},
    ]

    sent = asyncio.run(_call(app, _scope("POST", "/subscribe", body_length=len(full)), chunks))

    assert sent == [], "nobody to answer"
    assert session.scalars(select(Subscriber)).all() == []


MULTIPART = b"multipart/form-data; boundary=XyZ"
ONE_CLICK = (
    b'--XyZ\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--XyZ--\r\n'
)


def confirmed_reader_leaving(session: Session) -> str:
    """A confirmed reader's unsubscribe token, as a digest's List-Unsubscribe carries it."""
    reader = Subscriber(email="leaving@example.org", status=SubscriberStatus.CONFIRMED)
    session.add(reader)
    session.flush()
    token = subscriber_service.new_token(session, reader, TokenPurpose.UNSUBSCRIBE)
    session.commit()
    return token


def still_confirmed(session: Session) -> bool:
    session.expire_all()
    return session.scalars(select(Subscriber.status)).one() == SubscriberStatus.CONFIRMED


def test_a_multipart_one_click_cut_short_or_too_large_unsubscribes_nobody(
    app: FastAPI, session: Session
) -> None:
    """The one-click route drops a multipart body unread, but only once it has come whole and within
    the body limit: a POST the client abandons is not a request, and a huge one is a 413."""
    token = confirmed_reader_leaving(session)
    path = f"/unsubscribe/{token}"
    cut: list[dict[str, Any]] = [
        {"type": "http.request", "body": ONE_CLICK[:20], "more_body": True},
        {"type": "http.disconnect"},
    ]
    limit = get_settings().max_request_bytes
    huge: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"x" * limit, "more_body": True},
        {"type": "http.request", "body": b"x", "more_body": False},
    ]

    abandoned = asyncio.run(
        _call(app, _scope("POST", path, body_length=len(ONE_CLICK), content_type=MULTIPART), cut)
    )
    too_large = asyncio.run(_call(app, _scope("POST", path, content_type=MULTIPART), huge))

    assert abandoned == [], "nobody to answer"
    assert too_large[0]["status"] == 413
    assert still_confirmed(session)
    whole = [{"type": "http.request", "body": ONE_CLICK, "more_body": False}]
    sent = asyncio.run(_call(app, _scope("POST", path, content_type=MULTIPART), whole))
    assert sent[0]["status"] == 200
    assert not still_confirmed(session)


def _scope(
    method: str,
    path: str,
    *,
    query: bytes = b"",
    body_length: int | None = None,
    content_type: bytes = b"application/x-www-form-urlencoded",
) -> dict[str, Any]:
    """`body_length` None: no body, or (with `content_type` given as multipart) a chunked one."""
    headers = [(b"host", b"testserver")]
    if body_length is not None:
        headers += [(b"content-type", content_type), (b"content-length", str(body_length).encode())]
    elif content_type.startswith(b"multipart/"):
        headers += [(b"content-type", content_type), (b"transfer-encoding", b"chunked")]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def _call(app: FastAPI, scope: dict[str, Any], chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The app's answer to one request whose body arrives as `chunks`, then a disconnect."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)
    return sent
