"""SQL for papers and their signals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, column, delete, func, literal, literal_column, select, table, text, tuple_
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.orm import Session

from papertide import bulk
from papertide.models import Paper, PaperScore, PaperSignal, PaperView, PaperViewVisitor, Topic
from papertide.papers.schemas import PaperIn

# The text a later fetch replaces outright: the newest version of the paper wins.
_TEXT_COLUMNS = ("title", "abstract")
# Facts a source may not carry (the RSS feed has no publication date, Hugging Face no categories):
# a source that lacks one keeps what another source stored, so two sources merge into one row.
_KEPT_WHEN_MISSING = (
    "published_at",
    "updated_at",
    "version",
    "abs_url",
    "pdf_url",
    "code_url",
    "project_url",
    "announce_type",
)


@dataclass
class UpsertResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    signals: int = 0


def merge_into_paper(stmt: Any) -> Any:
    """The merge rules for any `INSERT INTO paper`: the per-record upsert and the bulk COPY path share them.

    An identical re-fetch writes nothing (modified_at and the embedding stay as they are); a changed
    text updates the row and its hash; facts the incoming row lacks keep what is stored; the first
    listing wins. Returns the statement with `RETURNING id, inserted` (True for a new row).
    """
    excluded = stmt.excluded
    merged: dict[str, Any] = {name: getattr(excluded, name) for name in _TEXT_COLUMNS}
    for name in _KEPT_WHEN_MISSING:
        merged[name] = func.coalesce(getattr(excluded, name), getattr(Paper, name))
    for name in ("authors", "categories"):
        merged[name] = case(
            (func.cardinality(getattr(excluded, name)) > 0, getattr(excluded, name)),
            else_=getattr(Paper, name),
        )
    merged["announced_at"] = func.least(Paper.announced_at, excluded.announced_at)
    merged["text_hash"] = excluded.text_hash
    current = tuple_(*(getattr(Paper, name) for name in merged))
    incoming = tuple_(*merged.values())
    return stmt.on_conflict_do_update(
        index_elements=[Paper.id],
        set_={**merged, "modified_at": func.now()},
        where=current.is_distinct_from(incoming),
    ).returning(Paper.id, literal_column("(xmax = 0)").label("inserted"))


def upsert_papers(session: Session, records: Sequence[PaperIn], *, source: str) -> UpsertResult:
    """Insert new papers, update changed ones, leave identical ones untouched; add signal rows."""
    result = UpsertResult()
    unique = _dedupe(records)
    if not unique:
        return result
    touched = session.execute(merge_into_paper(insert(Paper).values([r.row(source) for r in unique]))).all()
    result.new = sum(1 for row in touched if row.inserted)
    result.updated = len(touched) - result.new
    result.unchanged = len(unique) - len(touched)
    result.signals = insert_signals(session, records, source=source)
    return result


def _dedupe(records: Sequence[PaperIn]) -> list[PaperIn]:
    """One record per id (Postgres refuses two in one upsert): the last wins, keeping the earliest listing."""
    by_id: dict[str, PaperIn] = {}
    for record in records:
        earlier = by_id.get(record.id)
        if (
            earlier
            and earlier.announced_at
            and (record.announced_at is None or earlier.announced_at < record.announced_at)
        ):
            record = record.model_copy(update={"announced_at": earlier.announced_at})
        by_id[record.id] = record
    return list(by_id.values())


def insert_signals(session: Session, records: Sequence[PaperIn], *, source: str) -> int:
    """Add each record's observations; the same observation twice is stored once."""
    rows = [
        {"paper_id": r.id, "kind": s.kind, "value": s.value, "source": source, "observed_at": s.observed_at}
        for r in records
        for s in r.signals
    ]
    if not rows:
        return 0
    stmt = insert(PaperSignal).values(rows).on_conflict_do_nothing().returning(PaperSignal.id)
    return len(session.execute(stmt).all())


def get_paper(session: Session, paper_id: str) -> Paper | None:
    return session.get(Paper, paper_id)


def get_topic(session: Session, topic_id: int) -> Topic | None:
    return session.get(Topic, topic_id)


def count_papers(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Paper)) or 0


def sitemap_starts(session: Session, *, size: int) -> list[str]:
    """The id that opens each run of `size` papers in id order: one pass over the primary key's
    index (an index-only scan), so the sitemap's pages are found without an OFFSET per page."""
    numbered = select(Paper.id, func.row_number().over(order_by=Paper.id).label("n")).subquery()
    stmt = select(numbered.c.id).where((numbered.c.n - 1) % size == 0).order_by(numbered.c.id)
    return list(session.scalars(stmt))


def sitemap_page(session: Session, *, start: str | None, size: int) -> list[tuple[str, datetime]]:
    """(id, modified_at) of up to `size` papers from id `start` on, in id order (a keyset page)."""
    stmt = select(Paper.id, Paper.modified_at).order_by(Paper.id).limit(size)
    if start is not None:
        stmt = stmt.where(Paper.id >= start)
    return [(row[0], row[1]) for row in session.execute(stmt)]


def get_scores(session: Session, paper_id: str) -> list[PaperScore]:
    stmt = select(PaperScore).where(PaperScore.paper_id == paper_id)
    return list(session.scalars(stmt))


def latest_signals(session: Session, paper_id: str) -> dict[str, float]:
    """The newest observation of each signal kind for one paper."""
    stmt = (
        select(PaperSignal.kind, PaperSignal.value)
        .where(PaperSignal.paper_id == paper_id)
        .ext(distinct_on(PaperSignal.kind))
        .order_by(PaperSignal.kind, PaperSignal.observed_at.desc())
    )
    return {row.kind: row.value for row in session.execute(stmt)}


def signal_history(session: Session, paper_id: str, kind: str) -> list[tuple[datetime, float]]:
    stmt = (
        select(PaperSignal.observed_at, PaperSignal.value)
        .where(PaperSignal.paper_id == paper_id, PaperSignal.kind == kind)
        .order_by(PaperSignal.observed_at)
    )
    return [(row.observed_at, row.value) for row in session.execute(stmt)]


def newest_activity_at(session: Session) -> datetime | None:
    """The newest moment the data knows of: the latest listing or signal observation."""
    listed = session.scalar(select(func.max(func.coalesce(Paper.announced_at, Paper.published_at))))
    observed = session.scalar(select(func.max(PaperSignal.observed_at)))
    known = [value for value in (listed, observed) if value is not None]
    return max(known) if known else None


def papers_by_ids(session: Session, ids: Sequence[str]) -> dict[str, Paper]:
    if not ids:
        return {}
    return {paper.id: paper for paper in session.scalars(select(Paper).where(Paper.id.in_(ids)))}


def record_view(
    session: Session, paper_id: str, *, day: date, click: bool, visitor: bytes, address: bytes
) -> bool:
    """Count one page view (and a digest click when the link came from a digest), unless this
    visitor was counted for the paper on `day` already, or its address has counted
    VISITORS_PER_ADDRESS visitors of it; True if it counted."""
    if not _first_visit(session, paper_id, day=day, visitor=visitor, address=address):
        return False
    stmt = insert(PaperView).values(paper_id=paper_id, day=day, views=1, clicks=int(click))
    stmt = stmt.on_conflict_do_update(
        index_elements=[PaperView.paper_id, PaperView.day],
        set_={"views": PaperView.views + 1, "clicks": PaperView.clicks + stmt.excluded.clicks},
    )
    session.execute(stmt)
    return True


# A visitor's hash is only needed on its day; a few days' rows are kept so that a request that
# straddles midnight, or a clock a little off, still finds its own.
VISITOR_DAYS_KEPT = 2
# Visitors are told apart by address and user agent, so that a household or an office behind one
# address counts as more than one reader; but a user agent is the client's to make up, so one
# address counts at most this many visitors of a paper a day.
VISITORS_PER_ADDRESS = 3


def _first_visit(session: Session, paper_id: str, *, day: date, visitor: bytes, address: bytes) -> bool:
    """Note the visitor for the paper and day; False if it was noted already, or its address has its
    share of visitors. Each new visitor also deletes the rows past VISITOR_DAYS_KEPT: a range on
    the primary key's first column, usually empty."""
    seen = select(func.count()).where(
        PaperViewVisitor.day == day,
        PaperViewVisitor.paper_id == paper_id,
        PaperViewVisitor.address == address,
    )
    if (session.scalar(seen) or 0) >= VISITORS_PER_ADDRESS:
        return False
    stmt = insert(PaperViewVisitor).values(day=day, paper_id=paper_id, visitor=visitor, address=address)
    inserted = session.execute(stmt.on_conflict_do_nothing().returning(PaperViewVisitor.day)).first()
    if inserted is None:
        return False
    session.execute(
        delete(PaperViewVisitor).where(PaperViewVisitor.day < day - timedelta(days=VISITOR_DAYS_KEPT))
    )
    return True


def existing_ids(session: Session, ids: Sequence[str]) -> set[str]:
    """Which of `ids` are stored already."""
    if not ids:
        return set()
    return set(session.scalars(select(Paper.id).where(Paper.id.in_(ids))))


# --- bulk loading: binary COPY into a staging table, then one merge under the rules above ---------

STAGING_COLUMNS = (
    "id",
    "title",
    "abstract",
    "authors",
    "categories",
    "published_at",
    "updated_at",
    "version",
    "abs_url",
    "pdf_url",
    "text_hash",
)
_STAGING_TYPES = (
    "text",
    "text",
    "text",
    "text[]",
    "text[]",
    "timestamptz",
    "timestamptz",
    "int4",
    "text",
    "text",
    "text",
)
_CREATE_STAGING = text(
    "CREATE TEMP TABLE IF NOT EXISTS paper_staging ("
    + ", ".join(f"{c} {t}" for c, t in zip(STAGING_COLUMNS, _STAGING_TYPES, strict=True))
    + ") ON COMMIT DELETE ROWS"
)
_STAGING = table("paper_staging", *(column(name) for name in STAGING_COLUMNS))

StagingRow = tuple[Any, ...]


def staging_row(r: PaperIn) -> StagingRow:
    """A record as the staging table's columns, in order."""
    return (
        r.id,
        r.title,
        r.abstract,
        r.authors,
        r.categories,
        r.published_at,
        r.updated_at,
        r.version,
        r.abs_url,
        r.pdf_url,
        r.text_hash,
    )


def copy_and_merge(session: Session, rows: Sequence[StagingRow], *, source: str) -> tuple[int, int]:
    """COPY `rows` (binary) into the staging table and merge them into paper; returns (new, updated)."""
    session.execute(_CREATE_STAGING)
    bulk.copy_rows(session, "paper_staging", STAGING_COLUMNS, _STAGING_TYPES, rows)
    staged = (
        select(*(_STAGING.c[name] for name in STAGING_COLUMNS), literal(source).label("source"))
        .ext(distinct_on(_STAGING.c.id))
        .order_by(_STAGING.c.id)
    )
    merge = merge_into_paper(insert(Paper).from_select([*STAGING_COLUMNS, "source"], staged))
    touched = session.execute(merge).all()
    new = sum(1 for row in touched if row.inserted)
    return new, len(touched) - new
