"""The Kaggle arXiv metadata snapshot (`arxiv-metadata-oai-snapshot.json`): one JSON object a line.

The full file has about 2.8 million lines (4.5 GB), so lines are parsed one at a time and everything
a line repeats (regexes, month names, the category filter) is prepared once outside the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from papertide.ingest.sources.base import (
    Skipped,
    json_line,
    parse_datetime,
    parse_each,
    parse_rfc822,
    split_names,
)
from papertide.papers.ids import canonical_id
from papertide.papers.schemas import PaperIn

NAME = "kaggle"

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1
    )
}

CategoryFilter = Callable[[list[str]], bool]


def parse_record(data: dict[str, Any]) -> PaperIn:
    """One snapshot record as a validated PaperIn; a bad record raises ValueError or TypeError."""
    updated_at = parse_datetime(data.get("update_date"), where="update_date")
    published_at, version = _versions(data.get("versions"))
    return _paper(data, _categories(data), published_at, updated_at, version)


def iter_records(
    lines: Iterable[str],
    *,
    location: str,
    categories: set[str] | None = None,
    since: date | None = None,
    first_line: int = 1,
) -> Iterator[PaperIn | Skipped]:
    """Stream the snapshot's lines: a PaperIn per kept record, a Skipped (`file:line`) per bad one.

    `first_line` is the file line number of the first line given (parsers that split a file into blocks).
    """
    parse_one = partial(_parse_line, keep=_category_filter(categories), since=since)
    return parse_each(
        lines,
        parse_one,
        location_of=lambda number, _: f"{location}:{number}",
        errors=(ValueError, TypeError),
        start=first_line,
    )


def _parse_line(line: str, *, keep: CategoryFilter | None, since: date | None) -> PaperIn | None:
    """A PaperIn, or None for a blank line or a record a filter leaves out; a bad line raises ValueError or TypeError."""
    if not line or line.isspace():
        return None
    data = json_line(line)
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    # Cheapest checks first: most of the 2.8M lines are dropped by the filters in a typical load.
    categories = _categories(data)
    if keep is not None and not keep(categories):
        return None
    updated_at = parse_datetime(data.get("update_date"), where="update_date")
    published_at, version = _versions(data.get("versions"))
    if since is not None and not _is_since(since, updated_at or published_at):
        return None
    return _paper(data, categories, published_at, updated_at, version)


def _paper(
    data: dict[str, Any],
    categories: list[str],
    published_at: datetime | None,
    updated_at: datetime | None,
    version: int | None,
) -> PaperIn:
    raw_id = data.get("id")
    if not isinstance(raw_id, str) or not raw_id.strip():
        raise ValueError("id is missing")
    paper_id, _ = canonical_id(raw_id)
    # Every field is checked here (required text, aware dates from our own parsers), so the record
    # is built without pydantic's per-field validators: at 2.8M lines they would cost ~13 µs each.
    return PaperIn.model_construct(
        id=paper_id,
        version=version,
        title=_required_text(data, "title"),
        abstract=_required_text(data, "abstract"),
        authors=_authors(data),
        categories=categories,
        published_at=published_at,
        updated_at=updated_at,
        abs_url=f"https://arxiv.org/abs/{paper_id}",
        pdf_url=f"https://arxiv.org/pdf/{paper_id}",
        # Every field is given: model_construct's default factories inspect signatures, slowly.
        announced_at=None,
        announce_type=None,
        code_url=None,
        project_url=None,
        signals=[],
    )


def _required_text(data: dict[str, Any], key: str) -> str:
    """The field with its whitespace collapsed (abstracts start with spaces and wrap lines)."""
    value = data.get(key)
    if not isinstance(value, str) or not value or value.isspace():
        raise ValueError(f"{key} is missing")
    return " ".join(value.split())


def _categories(data: dict[str, Any]) -> list[str]:
    value = data.get("categories")
    if value is None:
        return []
    if not isinstance(value, str):
        raise TypeError(f"categories: expected a space-separated string, got {type(value).__name__}")
    return value.split()


def _category_filter(wanted: set[str] | None) -> CategoryFilter | None:
    """`cs` keeps `cs.CL`; `cs.CL` keeps only `cs.CL`; `hep` does not keep `hep-th`. None or empty: keep all."""
    if not wanted:
        return None
    exact = frozenset(wanted)
    prefixes = tuple(f"{entry}." for entry in wanted)
    return lambda categories: any(c in exact or c.startswith(prefixes) for c in categories)


def _is_since(since: date, moment: datetime | None) -> bool:
    # A record with no date at all cannot be shown to be recent, so a `since` filter leaves it out.
    return moment is not None and moment.date() >= since


def _versions(value: object) -> tuple[datetime | None, int | None]:
    """`[{"version": "v1", "created": ...}, ...]` -> (first version's creation, last version's number)."""
    if value is None or value == []:
        return None, None
    # Only the first and the last entry are read, so only they are checked (this runs per line).
    first, last = (value[0], value[-1]) if isinstance(value, list) else (None, None)
    if not isinstance(first, dict) or not isinstance(last, dict):
        raise TypeError("versions: expected a list of {version, created} objects")
    return _created_at(first.get("created"), where="versions[0].created"), _version_number(
        last.get("version")
    )


def _version_number(value: object) -> int:
    if isinstance(value, str) and value[:1] == "v" and value[1:].isdigit():
        return int(value[1:])
    raise ValueError(f"versions[-1].version: expected 'v<number>', got {value!r}")


def _created_at(value: object, *, where: str) -> datetime:
    # The snapshot writes every date as `Mon, 2 Apr 2007 19:18:42 GMT`; reading that shape directly is
    # several times faster than email.utils, which stays the fallback for anything else.
    fast = _gmt_datetime(value) if isinstance(value, str) else None
    return fast if fast is not None else parse_rfc822(value, where=where)


def _gmt_datetime(value: str) -> datetime | None:
    parts = value.split()
    if len(parts) != 6 or parts[5] != "GMT" or parts[2] not in _MONTHS:
        return None
    try:
        hour, minute, second = map(int, parts[4].split(":"))
        return datetime(int(parts[3]), _MONTHS[parts[2]], int(parts[1]), hour, minute, second, tzinfo=UTC)
    except ValueError:  # an impossible day or time: the general parser words the error
        return None


def _authors(data: dict[str, Any]) -> list[str]:
    # authors_parsed has the accents decoded (`Balázs`), the authors string keeps TeX (`Bal\'azs`).
    parsed = data.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        return [name for parts in parsed if (name := _full_name(parts))]
    text = data.get("authors")
    return split_names(text) if isinstance(text, str) else []


def _full_name(parts: object) -> str:
    """`[keyname, forenames, suffix]` -> `Forenames Keyname Suffix`; a 4th element is an affiliation."""
    if not isinstance(parts, list) or not parts:
        return ""
    keyname, forenames, suffix = (*parts[:3], "", "")[:3]
    return " ".join(f"{forenames or ''} {keyname or ''} {suffix or ''}".split())
