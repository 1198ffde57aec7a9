"""papertide's own JSONL format, one record a line (docs/ingest.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from papertide.ingest.sources.base import ParseResult, Skipped, describe, parse_datetime
from papertide.papers.ids import canonical_id, id_from_title
from papertide.papers.schemas import PaperIn

NAME = "jsonl"
_DATE_FIELDS = ("published_at", "updated_at", "announced_at")


def parse_lines(lines: Iterable[str], *, location: str) -> ParseResult:
    """Parse every line; a line that is not a valid record is skipped with `file:line` and the reason."""
    result = ParseResult()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{location}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            result.skipped.append(Skipped(where, f"not JSON: {error.msg} at column {error.colno}"))
            continue
        try:
            result.records.append(parse_record(data))
        except ValidationError as error:
            result.skipped.append(Skipped(where, describe(error)))
        except (ValueError, TypeError) as error:
            result.skipped.append(Skipped(where, str(error)))
    return result


def parse_record(data: Any) -> PaperIn:
    """One JSON object; `title` and `abstract` are required, the id is derived from the title if absent."""
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    fields = dict(data)
    title = fields.get("title")
    raw_id = fields.pop("id", None)
    if raw_id:
        fields["id"], version = canonical_id(str(raw_id))
        fields.setdefault("version", version)
    elif isinstance(title, str) and title.strip():
        fields["id"] = id_from_title(title)
    for name in _DATE_FIELDS:
        fields[name] = parse_datetime(fields.get(name), where=name)
    if "url" in fields:
        fields.setdefault("abs_url", fields.pop("url"))
    return PaperIn.model_validate(fields)
