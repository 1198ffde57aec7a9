"""Input checks every route shares: a cap on request bodies, text that is UTF-8 as sent, no control
characters in any value, and no field of one value given twice.

Each answers with a clear 4xx at the edge, so no route has to remember them: a NUL byte reached
Postgres (which cannot store one) as a 500, and a 100 MB JSON body was read whole into memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import unquote_to_bytes

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from papertide.web.errors import error_response

# Postgres `integer` (int4): an id past this range fails in the database, not in validation.
INT4_MAX = 2**31 - 1
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed (chunked) body passes the limit; the app answers 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=too_large_message(max_bytes))


def too_large_message(max_bytes: int) -> str:
    return f"The request body is too large: at most {max_bytes:,} bytes are accepted."


class BodyLimit:
    """ASGI middleware: refuse a body over `max_bytes`.

    A declared Content-Length over the limit is answered 413 before a byte of the body is read.
    A body without one (chunked) is counted as the app reads it, and reading past the limit raises
    `BodyTooLarge`, which the app's HTTPException handler turns into the same 413.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = error_response(Request(scope), 413, too_large_message(self.max_bytes))
            await response(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        return counted


class Utf8Only:
    """ASGI middleware: a 422 for a path, query string or urlencoded form whose text is not UTF-8,
    read from the bytes as sent: `caf%E9` (Latin-1), `%FF%FE`, an encoded surrogate, or a raw byte
    past ASCII (browsers percent-encode every one). Starlette decodes each of these into U+FFFD or
    Latin-1 without a word, and an address or phrase nobody typed would be stored. A multipart
    form is a 415: no form here takes a file, and its parts would be read the same way.

    Inside BodyLimit: a form body is read whole (at most its max_bytes) and handed on unchanged;
    one the client stops sending midway is never handed on.

    `bodiless_posts`: path prefixes of POST routes that read nothing of their body, the RFC 8058
    one-click unsubscribe: a mail provider SHOULD send it as multipart/form-data (it MAY send it
    urlencoded), so there a multipart body is read to its end and dropped, not refused: refusing it
    would keep mailing a reader who asked to stop."""

    def __init__(self, app: ASGIApp, *, bodiless_posts: tuple[str, ...] = ()) -> None:
        self.app = app
        self.bodiless_posts = bodiless_posts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parts = [("path", scope.get("raw_path") or b""), ("query", scope.get("query_string", b""))]
        content_type = _content_type(Headers(scope=scope))
        if content_type == "multipart/form-data":
            if scope["method"] == "POST" and scope["path"].startswith(self.bodiless_posts):
                try:
                    if await _whole_body(receive) is None:
                        return  # the client went away mid-body: a request cut short is not acted on
                except BodyTooLarge as error:
                    await error_response(Request(scope), 413, error.detail)(scope, receive, send)
                    return
                scope, receive = _without_body(scope), _replaying(b"", receive)
            else:
                # No form here takes a file, and Starlette reads a part that is not UTF-8 as Latin-1.
                await error_response(Request(scope), 415, MULTIPART)(scope, receive, send)
                return
        if content_type == FORM_TYPES[0]:
            try:
                body = await _whole_body(receive)
            except BodyTooLarge as error:
                await error_response(Request(scope), 413, error.detail)(scope, receive, send)
                return
            if body is None:
                return  # the client went away mid-body: a form cut short must not be acted on
            parts.append(("body", body))
            receive = _replaying(body, receive)
        if (problem := _not_utf8(parts)) is not None:
            await error_response(Request(scope), 422, problem)(scope, receive, send)
            return
        await self.app(scope, receive, send)


MULTIPART = (
    "Forms are sent as application/x-www-form-urlencoded here, as a browser sends them: no form takes a file."
)


async def _whole_body(receive: Receive) -> bytes | None:
    """The request's body, read to its last chunk; None when the client disconnects before it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _content_type(headers: Headers) -> str:
    """The media type alone (`multipart/form-data`), lower case; "" without one."""
    return headers.get("content-type", "").split(";")[0].strip().lower()


def _without_body(scope: Scope) -> Scope:
    """The request as if it had come with an empty body and no content type."""
    dropped = (b"content-type", b"content-length", b"transfer-encoding")
    headers = [(name, value) for name, value in scope["headers"] if name.lower() not in dropped]
    return {**scope, "headers": [*headers, (b"content-length", b"0")]}


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the app the body already read, then whatever comes next (a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _not_utf8(parts: list[tuple[str, bytes]]) -> str | None:
    """What is wrong with the first of (where, raw bytes) whose text is not UTF-8; None if all are."""
    for where, raw in parts:
        if not raw.isascii():  # a browser percent-encodes every byte past ASCII, in each of them
            byte = next(b for b in raw if b > 0x7F)
            return f"{where}: holds the raw byte 0x{byte:02X}; it must be sent percent-encoded, as UTF-8"
        for piece in [raw] if where == "path" else raw.split(b"&"):
            try:
                unquote_to_bytes(piece.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError as error:
                bad = error.object[error.start]
                return f"{where}: holds the byte 0x{bad:02X}, which is not UTF-8; text must be sent as UTF-8"
    return None


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when absent or not a number (the server refuses those itself)."""
    value = Headers(scope=scope).get("content-length", "")
    if not (value.isascii() and value.isdigit()):
        return None
    # Past 18 digits it is over any limit; int() of thousands of digits would raise.
    return int(value) if len(value) <= 18 else 10**18


def control_character(value: str) -> str | None:
    """The first character no input may hold: a C0 control other than tab and newlines, or a lone
    surrogate. Postgres refuses NUL outright, and the others only ever arrive by mistake or malice."""
    for char in value:
        if (char < " " and char not in "\t\n\r") or "\ud800" <= char <= "\udfff":
            return char
    return None


async def reject_control_characters(request: Request) -> None:
    """App-wide dependency: a 422 naming the first path, query, form or JSON input that holds one."""
    for where, name, value in await _inputs(request):
        char = control_character(name) or control_character(value)
        if char is not None:
            shown = "".join("?" if control_character(c) else c for c in name)
            problem = {
                "type": "value_error",
                "loc": (where, shown),
                "msg": f"contains the control character U+{ord(char):04X}, which no input may hold",
            }
            raise RequestValidationError([problem])


async def reject_repeated_fields(request: Request) -> None:
    """App-wide dependency: a 422 naming a query or form field given more than once where the route
    takes one value of it. The framework would keep the last one without a word: `email=a&email=b`
    confirmed b, `frequency=daily&frequency=weekly` stored weekly. A list field (the manage page's
    weekdays) repeats as it should, and a field no route reads is left alone."""
    single = _single_valued(request.scope.get("route"))
    names = [("query", name) for name, _ in request.query_params.multi_items()]
    if _content_type(request.headers) in FORM_TYPES:
        names += [("body", name) for name, _ in (await request.form()).multi_items()]  # parsed once
    seen = Counter((where, name) for where, name in names if name in single[where])
    for (where, name), count in seen.items():
        if count > 1:
            problem = {
                "type": "value_error",
                "loc": (where, name),
                "msg": f"is given {count} times; it takes one value",
            }
            raise RequestValidationError([problem])


def _single_valued(route: object) -> dict[str, frozenset[str]]:
    """The query and form ("body") fields `route` takes one value of, by the names a client sends;
    worked out once per route and kept on it."""
    known = getattr(route, "_single_valued", None)
    if known is not None:
        return known  # type: ignore[no-any-return]
    names: dict[str, set[str]] = {"query": set(), "body": set()}
    stack = [route.dependant] if isinstance(route, APIRoute) else []
    while stack:
        dependant = stack.pop()
        stack.extend(dependant.dependencies)
        for where, fields in (("query", dependant.query_params), ("body", dependant.body_params)):
            for field in fields:
                names[where].update(_one_valued(field.alias, field.field_info.annotation))
    found = {where: frozenset(each) for where, each in names.items()}
    if route is not None:
        route._single_valued = found  # type: ignore[attr-defined]
    return found


def _one_valued(name: str, annotation: Any) -> Iterator[str]:
    """`name`, unless its type is a list; for a model of fields (a query model), each of its fields."""
    model = _unwrapped(annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        for field_name, field in model.model_fields.items():
            if not _is_list(field.annotation):
                yield field.alias or field_name
    elif not _is_list(annotation):
        yield name


def _unwrapped(annotation: Any) -> Any:
    """The type inside Annotated[...] and Optional[...]."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, UnionType):
        inner = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _unwrapped(inner[0]) if len(inner) == 1 else annotation
    return annotation


def _is_list(annotation: Any) -> bool:
    annotation = _unwrapped(annotation)
    if get_origin(annotation) in (Union, UnionType):
        return any(_is_list(arg) for arg in get_args(annotation))
    return annotation in _LIST_TYPES or get_origin(annotation) in _LIST_TYPES


_LIST_TYPES = (list, tuple, set, frozenset, Sequence)


async def _inputs(request: Request) -> list[tuple[str, str, str]]:
    """(where, name, value) for every string the request carries."""
    found = [("path", name, str(value)) for name, value in request.path_params.items()]
    found += [("query", name, value) for name, value in request.query_params.multi_items()]
    content_type = _content_type(request.headers)
    if content_type in FORM_TYPES:
        # Starlette keeps the parsed form on the request, so the route reads this same copy.
        form = await request.form()
        found += [("body", name, value) for name, value in form.multi_items() if isinstance(value, str)]
    elif content_type == "application/json" or content_type.endswith("+json"):
        try:
            document = await request.json()
        except (ValueError, UnicodeDecodeError):
            return found  # FastAPI answers malformed JSON with its own 422
        except RecursionError:
            # `[[[[...` a few thousand deep exhausts the parser's stack: a bad request, not a crash.
            raise HTTPException(status_code=400, detail="The JSON body is nested too deeply.") from None
        found += [("body", name, value) for name, value in _strings(document)]
    return found


def _strings(document: Any) -> Iterator[tuple[str, str]]:
    """(dotted path, text) for every key and string value in a JSON document.

    Walked with an explicit stack, not recursion: a hostile document may nest as deep as the
    body limit allows.
    """
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            yield path, node
        elif isinstance(node, dict):
            for key, value in node.items():
                inner = f"{path}.{key}" if path else str(key)
                yield inner, str(key)
                stack.append((inner, value))
        elif isinstance(node, list):
            stack.extend(
                (f"{path}.{index}" if path else str(index), value) for index, value in enumerate(node)
            )


# What reject_control_characters enforces, as JSON Schema: no C0 control but tab, LF and CR.
CONTROL_FREE_PATTERN = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$"


def publish_input_rule(openapi: dict[str, Any]) -> None:
    """Write the control-character rule into every request input of an OpenAPI document, so that
    clients (and the schema-driven fuzz test) know a string holding one is answered 422."""
    schemas = openapi.get("components", {}).get("schemas", {})
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                _forbid_controls(parameter.get("schema", {}))
            for content in operation.get("requestBody", {}).get("content", {}).values():
                body = content.get("schema", {})
                _forbid_controls(schemas.get(body.get("$ref", "").rsplit("/", 1)[-1], body))


def _forbid_controls(schema: Any) -> None:
    if isinstance(schema, list):
        for item in schema:
            _forbid_controls(item)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not {"pattern", "enum", "const", "format"} & set(schema):
        schema["pattern"] = CONTROL_FREE_PATTERN
    for key in ("anyOf", "oneOf", "allOf", "items"):
        _forbid_controls(schema.get(key))
    for value in schema.get("properties", {}).values():
        _forbid_controls(value)
