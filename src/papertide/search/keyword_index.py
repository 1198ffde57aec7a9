"""The keyword index: BM25 over titles and abstracts, in a tantivy index under DATA_DIR.

PostgreSQL stays the source of truth. A trigger queues every paper whose indexed fields change
(table keyword_pending, migration 0012); the worker feeds the queue into this index, committing
here before it deletes the queue rows there, so a kill between the two only indexes some papers
twice (an update replaces the document: the same result). `papertide reindex` rebuilds it whole.

Why tantivy and not ts_rank_cd: ts_rank_cd has no inverse document frequency (a rare, telling word
counts no more than "model"), and PostgreSQL must rank every match to find the best ten, which at
a million papers costs seconds for common words. tantivy scores BM25 (k1 1.2, b 0.75) and skips
whole blocks of postings that cannot reach the top (block-max WAND). docs/benchmarks.md compares.

Every web process opens the same directory read-only and sees each commit within a moment (the
reader watches meta.json). One process at a time writes: tantivy's lock file says who.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import tantivy

from papertide.config import Settings
from papertide.papers import categories
from papertide.search.query_syntax import UserQuery
from papertide.search.schemas import DateField, SearchFilters

log = logging.getLogger(__name__)

# A new layout gets a new directory, which starts empty and is filled from the database.
DIRECTORY = "keyword-index-v1"
TITLE_BOOST = 2.0  # a word in the title says more about the paper than the same word in the abstract
PAPER_TEXT = "papers_en"  # lowercase, English stop words out, Porter stems: "models" finds "model"
NAMES = "names"  # lowercase, accents folded, no stemming: "Müller" finds "Muller"
WRITER_HEAP = 256 * 1024 * 1024
# English function words (the common IR list: Lucene's, plus the question and pronoun words people
# type: "how can we ..."). They carry no topic, and a word in every other abstract makes a query
# visit every other document: dropping them is faster and ranks no worse.
_STOP_WORDS = """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves"""
STOP_WORDS = frozenset(_STOP_WORDS.split())


class KeywordIndexUnavailable(Exception):
    """No keyword index can be opened (an unreadable directory, a damaged index)."""


class KeywordIndexDamaged(KeywordIndexUnavailable):
    """The index's files are unreadable, corrupt or missing: it stays so until `papertide reindex`
    rebuilds it (a directory being filled, by contrast, opens and answers what it holds so far)."""


class KeywordIndexFolderUnusable(KeywordIndexUnavailable):
    """DATA_DIR's index folder (or its lock file) cannot be made or written: a read-only or full
    disk, a file in the way. An operator fixes the folder; a reindex would fail the same way."""


class KeywordIndexBusy(Exception):
    """Another process holds the index's writer lock: it is feeding the index right now."""


@dataclass(frozen=True)
class KeywordDoc:
    """What the index holds of one paper."""

    paper_id: str
    title: str
    abstract: str
    authors: Sequence[str]
    categories: Sequence[str]
    published: datetime | None
    listed: datetime | None
    has_code: bool


@dataclass(frozen=True)
class KeywordHits:
    hits: list[tuple[str, float]]  # (paper_id, BM25 score, or for a sort by date its timestamp)
    total: int  # every paper the query matches, not only this page


def _analyzers() -> dict[str, tantivy.TextAnalyzer]:
    builder = tantivy.TextAnalyzerBuilder
    return {
        PAPER_TEXT: builder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.custom_stopword(sorted(STOP_WORDS)))
        .filter(tantivy.Filter.stemmer("english"))
        .build(),
        NAMES: builder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build(),
    }


def _schema() -> tantivy.Schema:
    schema = tantivy.SchemaBuilder()
    schema.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    schema.add_text_field("title", tokenizer_name=PAPER_TEXT, index_option="position")
    schema.add_text_field("abstract", tokenizer_name=PAPER_TEXT, index_option="position")
    schema.add_text_field("authors", tokenizer_name=NAMES, index_option="position")
    schema.add_text_field("categories", tokenizer_name="raw", index_option="basic")
    schema.add_date_field("published", indexed=True, fast=True)
    schema.add_date_field("listed", indexed=True, fast=True)
    schema.add_boolean_field("has_code", indexed=True)
    return schema.build()


class KeywordIndex:
    """One tantivy index directory: search it from any number of processes, feed it from one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.schema = _schema()
        self.analyzers = _analyzers()
        try:
            path.mkdir(parents=True, exist_ok=True)
            with _creation_lock(path):  # two processes starting at once must not both create it
                self.created = not (path / "meta.json").exists()
                self.index = _open(self.schema, path)
        except OSError as error:
            # The folder or its lock file cannot be made (read-only DATA_DIR, a file in the way, a
            # full disk): the operator fixes that, and a reindex would fail the same way.
            raise KeywordIndexFolderUnusable(
                f"cannot use the keyword index folder {path}: {error}"
            ) from error
        for name, analyzer in self.analyzers.items():
            self.index.register_tokenizer(name, analyzer)

    # --- reading ------------------------------------------------------------------------------

    def search(
        self,
        query: UserQuery,
        *,
        filters: SearchFilters,
        newest_first: bool = False,
        offset: int = 0,
        limit: int = 20,
        only: Sequence[str] | None = None,
        skip: Sequence[str] = (),
    ) -> KeywordHits:
        """Papers matching the query and the filters, by BM25 (or newest first), with the total.

        `only` restricts to those papers, `skip` leaves those out (a sort that takes some first)."""
        tantivy_query = self._query(query, filters=filters, only=only, skip=skip)
        if tantivy_query is None:
            return KeywordHits([], 0)
        searcher = self.index.searcher()
        try:
            if newest_first:
                result = searcher.search(
                    tantivy_query,
                    limit,
                    count=True,
                    offset=offset,
                    order_by_field="published",
                    order=tantivy.Order.Desc,
                )
            else:
                result = searcher.search(tantivy_query, limit, count=True, offset=offset)
        except ValueError as error:
            raise KeywordIndexUnavailable(f"the keyword index could not be searched: {error}") from error
        hits = [(searcher.doc(address)["id"][0], float(key)) for key, address in result.hits]
        return KeywordHits(hits, int(result.count or 0))  # type: ignore[attr-defined]

    def terms(self, text: str) -> list[str]:
        """The index terms of `text`: what a word must become to match (for highlights)."""
        return list(self.analyzers[PAPER_TEXT].analyze(text))

    def num_docs(self) -> int:
        return int(self.index.searcher().num_docs)

    def reload(self) -> None:
        """See the latest commit now (readers otherwise follow commits within a moment)."""
        self.index.reload()

    def _query(
        self, query: UserQuery, *, filters: SearchFilters, only: Sequence[str] | None, skip: Sequence[str]
    ) -> tantivy.Query | None:
        must: list[tantivy.Query] = []
        # Every (field, term) of the loose words is one clause of a single flat "any of": the same
        # BM25 sum as a clause per word, but tantivy merges one union of postings instead of a union
        # of unions, which halved the p95 at a million papers (docs/benchmarks.md).
        word_clauses = [clause for word in query.words for clause in self._word_clauses(word)]
        for phrase in query.phrases:
            if (clause := self._phrase(phrase)) is not None:
                must.append(clause)
        if not must and not word_clauses and not query.empty:
            return None  # only stop words: they match nothing
        must += self._filters(filters)
        if only is not None:
            must.append(tantivy.Query.term_set_query(self.schema, "id", list(only)))
        if not must and not word_clauses:
            return None
        if must:
            clauses = [(tantivy.Occur.Must, q) for q in must]
            if word_clauses:
                clauses.append((tantivy.Occur.Must, _any(word_clauses)))
        else:
            # Nothing else is required: the word clauses stand at the top, where "at least one
            # should" is tantivy's rule, so no wrapper query sits between them and the collector.
            clauses = [(tantivy.Occur.Should, clause) for clause in word_clauses]
        for words_out in query.excluded:
            if (
                clause := self._phrase(words_out) if len(words_out) > 1 else self._word(words_out[0])
            ) is not None:
                clauses.append((tantivy.Occur.MustNot, clause))
        if skip:
            clauses.append(
                (tantivy.Occur.MustNot, tantivy.Query.term_set_query(self.schema, "id", list(skip)))
            )
        return tantivy.Query.boolean_query(clauses)

    def _word(self, word: str) -> tantivy.Query | None:
        """A word in the title (weighted up) or the abstract: BM25 scores each field, the sum ranks."""
        clauses = self._word_clauses(word)
        return _any(clauses) if clauses else None

    def _word_clauses(self, word: str) -> list[tantivy.Query]:
        clauses = []
        for term in self.terms(word):
            clauses.append(tantivy.Query.boost_query(self._term("title", term), TITLE_BOOST))
            clauses.append(self._term("abstract", term))
        return clauses

    def _phrase(self, words: Sequence[str]) -> tantivy.Query | None:
        """The words in order in the title or the abstract (stop words leave a gap, as in the text)."""
        positioned: list[str | tuple[int, str]] = []
        for position, word in enumerate(words):
            positioned += [(position, term) for term in self.terms(word)]
        if not positioned:
            return None
        if len(positioned) == 1:
            return self._word(str(positioned[0][1]))
        return _any(
            [
                tantivy.Query.boost_query(
                    tantivy.Query.phrase_query(self.schema, "title", positioned), TITLE_BOOST
                ),
                tantivy.Query.phrase_query(self.schema, "abstract", positioned),
            ]
        )

    def _term(self, field: str, term: str) -> tantivy.Query:
        return tantivy.Query.term_query(self.schema, field, term)

    def _filters(self, filters: SearchFilters) -> list[tantivy.Query]:
        must: list[tantivy.Query] = []
        if filters.author:
            names = list(self.analyzers[NAMES].analyze(filters.author))
            must += [self._term("authors", name) for name in names]
        if filters.categories:
            # A category exactly, or for an archive ("cs") any of its subject classes too.
            whole = tantivy.Query.term_set_query(self.schema, "categories", list(filters.categories))
            classes = [
                tantivy.Query.regex_query(self.schema, "categories", re.escape(archive) + r"\..+")
                for archive in categories.archives(filters.categories)
            ]
            must.append(_any([whole, *classes]))
        if filters.date_from or filters.date_to:
            field = "published" if filters.date_field == DateField.PUBLISHED else "listed"
            must.append(
                tantivy.Query.range_query(
                    self.schema,
                    field,
                    tantivy.FieldType.Date,
                    _day_start(filters.date_from),
                    _day_start(filters.date_to, next_day=True),
                    include_upper=filters.date_to is None,
                )
            )
        if filters.has_code:
            must.append(tantivy.Query.term_query(self.schema, "has_code", True))
        return must

    # --- writing ------------------------------------------------------------------------------

    @contextmanager
    def writer(self, *, threads: int | None = None) -> Iterator[KeywordWriter]:
        """The index's one writer; KeywordIndexBusy when another process holds it."""
        try:
            writer = self.index.writer(WRITER_HEAP, threads or min(4, os.cpu_count() or 1))
        except ValueError as error:
            # tantivy says LockBusy when another writer holds the lock; anything else (a read-only
            # directory, a full disk) will not pass by waiting for that writer to finish.
            if "LockBusy" in str(error):
                raise KeywordIndexBusy(f"another process is writing the keyword index: {error}") from error
            raise KeywordIndexUnavailable(
                f"cannot write the keyword index at {self.path}: {error}"
            ) from error
        try:
            yield KeywordWriter(writer)
        except BaseException:
            writer.rollback()
            raise
        finally:
            writer.wait_merging_threads()  # ends the writer: merges finish, the lock goes


class KeywordWriter:
    """Adds and replaces documents; nothing is visible (or durable) until commit().

    A documented exception to "the edge owns the commit": commit() here commits the tantivy
    index, not a database transaction. The edge (worker/jobs.py) calls it inside its own
    unit_of_work(), just before that commits, so the index never lacks what the queue let go."""

    def __init__(self, writer: tantivy.IndexWriter) -> None:
        self._writer = writer

    def replace(self, docs: Iterable[KeywordDoc]) -> None:
        for doc in docs:
            self.remove([doc.paper_id])
            self._writer.add_document(_document(doc))

    def add(self, docs: Iterable[KeywordDoc]) -> None:
        """Add without replacing: for an index just cleared."""
        for doc in docs:
            self._writer.add_document(_document(doc))

    def remove(self, paper_ids: Iterable[str]) -> None:
        for paper_id in paper_ids:
            self._writer.delete_documents_by_term("id", paper_id)

    def clear(self) -> None:
        self._writer.delete_all_documents()

    def commit(self) -> None:
        self._writer.commit()


def _document(doc: KeywordDoc) -> tantivy.Document:
    fields: dict[str, object] = {
        "id": doc.paper_id,
        "title": doc.title,
        "abstract": doc.abstract,
        "authors": list(doc.authors),
        "categories": list(doc.categories),
        "has_code": doc.has_code,
    }
    # Undated papers sort last among the newest; they still match every search without a date range.
    fields["published"] = _utc(doc.published or doc.listed) or datetime(1970, 1, 1, tzinfo=UTC)
    if doc.listed is not None:
        fields["listed"] = _utc(doc.listed)
    return tantivy.Document(**fields)


def _any(queries: list[tantivy.Query]) -> tantivy.Query:
    if len(queries) == 1:
        return queries[0]
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in queries])


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _day_start(day: date | None, *, next_day: bool = False) -> datetime | None:
    """Midnight UTC starting `day` (or the day after: date ranges include their last day)."""
    if day is None:
        return None
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start + timedelta(days=1) if next_day else start


@contextmanager
def _creation_lock(path: Path) -> Iterator[None]:
    with open(path.parent / f".{path.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


_shared: dict[Path, KeywordIndex] = {}
_shared_lock = threading.Lock()


def index_path(settings: Settings) -> Path:
    return settings.data_dir / DIRECTORY


def shared(settings: Settings) -> KeywordIndex:
    """This process's handle on DATA_DIR's keyword index, opened once."""
    path = index_path(settings).resolve()
    with _shared_lock:
        if path not in _shared:
            _shared[path] = KeywordIndex(path)
        return _shared[path]


def _open(schema: tantivy.Schema, path: Path) -> tantivy.Index:
    """tantivy's index in `path`; KeywordIndexDamaged when what is there cannot be read as one."""
    try:
        return tantivy.Index(schema, path=str(path), reuse=True)
    except (OSError, ValueError) as error:
        raise KeywordIndexDamaged(f"cannot open the keyword index at {path}: {error}") from error


def discard_if_damaged(settings: Settings) -> bool:
    """Delete DATA_DIR's keyword index if it still cannot be opened, so that a rebuild starts from an
    empty one; True if it was deleted. The database holds everything the index held."""
    path = index_path(settings).resolve()
    with _shared_lock:
        _shared.pop(path, None)
    if not path.exists():
        return False
    try:
        with _creation_lock(path):  # a process creating a fresh index right now is not undone
            return _delete_if_unreadable(path)
    except OSError as error:
        raise KeywordIndexFolderUnusable(f"cannot use the keyword index folder {path}: {error}") from error


def _delete_if_unreadable(path: Path) -> bool:
    try:
        _open(_schema(), path)
    except KeywordIndexDamaged:
        log.warning("deleting the damaged keyword index at %s to rebuild it", path)
        try:
            shutil.rmtree(path)
        except OSError as error:  # e.g. files the operator must fix the permissions of first
            raise KeywordIndexUnavailable(
                f"cannot delete the damaged keyword index at {path}: {error}"
            ) from error
        return True
    return False


def forget_all() -> None:
    """Drop this process's handles (tests that move from one DATA_DIR to the next)."""
    with _shared_lock:
        _shared.clear()
