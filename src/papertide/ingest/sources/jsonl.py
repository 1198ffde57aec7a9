"""papertide's own JSONL format, one record a line (docs/ingest.md)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from papertide.ingest.sources.base import ParseResult, json_line, parse_datetime, parse_each
from papertide.papers.ids import canonical_id, id_from_title
from papertide.papers.schemas import PaperIn

NAME = "jsonl"
_DATE_FIELDS = ("published_at", "updated_at", "announced_at")


def parse_lines(lines: Iterable[str], *, location: str) -> ParseResult:
    """Parse every line; a line that is not a valid record is skipped with `file:line` and the reason."""
    records = parse_each(
        lines,
        _parse_line,
        location_of=lambda number, _: f"{location}:{number}",
        errors=(ValueError, TypeError),
    )
    return ParseResult.collect(records)


def _parse_line(line: str) -> PaperIn | None:
    return parse_record(json_line(line)) if line.strip() else None


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
