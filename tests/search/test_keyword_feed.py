"""The keyword index follows the database: new, changed and deleted papers, kills, two feeders, rebuilds."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from papertide.config import get_settings
from papertide.db import unit_of_work
from papertide.models import KeywordPending, Paper
from papertide.search import keyword_index
from papertide.search import repository as search_repository
from papertide.search import service as search_service
from papertide.search.keyword_index import KeywordDoc, KeywordIndexBusy
from papertide.search.schemas import SearchMode, SearchQuery
from papertide.worker import jobs
from tests.factories import make_paper
from tests.helpers import keyword_index_now


def found(session: Session, q: str) -> list[str]:
    query = SearchQuery(q=q, mode=SearchMode.KEYWORD)
    page = search_service.search(session, query, encoder=None, keywords=keyword_index_now())
    session.rollback()
    return [hit.paper.id for hit in page.hits]


def queued(session: Session) -> set[str]:
    try:
        return set(session.scalars(select(KeywordPending.paper_id)))
    finally:
        session.rollback()


def test_changed_text_is_found_by_its_new_words_only_and_deleted_papers_go(
    database: str, session: Session
) -> None:
    make_paper(session, id="2601.50001", abstract="Quantum annealing schedules.")
    make_paper(session, id="2601.50002", abstract="Quantum error correction.")
    session.commit()
    assert sorted(found(session, "quantum")) == ["2601.50001", "2601.50002"]

    session.execute(
        update(Paper).where(Paper.id == "2601.50001").values(abstract="Protein folding at scale.")
    )
    session.execute(delete(Paper).where(Paper.id == "2601.50002"))
    session.commit()

    assert found(session, "quantum") == []
    assert found(session, "protein") == ["2601.50001"]
    assert keyword_index_now().num_docs() == 1


def test_a_rewrite_of_fields_the_index_does_not_hold_queues_nothing(database: str, session: Session) -> None:
    paper = make_paper(session, abstract="Stable text.")
    session.commit()
    keyword_index_now()

    session.execute(update(Paper).where(Paper.id == paper.id).values(version=3, topic_id=None))
    session.commit()

    assert queued(session) == set()  # a score run rewriting topic_id costs the index nothing


def test_a_feeder_killed_after_the_index_committed_leaves_no_duplicate(
    database: str, session: Session
) -> None:
    for n in range(5):
        make_paper(session, id=f"2601.6000{n}", abstract="Contrastive pretraining.")
    session.commit()
    index = keyword_index.shared(get_settings())

    def killed_between_the_commits() -> None:
        # The index commits, then the process dies before the database commits the queue's deletion.
        with index.writer() as writer, unit_of_work() as work:
            search_service.index_pending(work, writer, limit=100)
            writer.commit()
            raise RuntimeError("killed between the two commits")

    with pytest.raises(RuntimeError):
        killed_between_the_commits()
    assert len(queued(session)) == 5

    jobs.index_keywords()  # the next pass indexes them again

    assert queued(session) == set()
    assert sorted(found(session, "contrastive")) == [f"2601.6000{n}" for n in range(5)]
    assert index.num_docs() == 5


def test_a_second_feeder_leaves_the_index_to_the_first(database: str, session: Session) -> None:
    make_paper(session, abstract="Waiting in the queue.")
    session.commit()
    index = keyword_index.shared(get_settings())

    with index.writer():
        assert jobs.index_keywords() == 0  # busy: no error, nothing taken off the queue
        with pytest.raises(KeywordIndexBusy), index.writer():
            pass

    assert len(queued(session)) == 1
    assert jobs.index_keywords() == 1


def test_an_empty_index_beside_a_full_database_is_filled(
    database: str, session: Session, tmp_path_factory: pytest.TempPathFactory
) -> None:
    make_paper(session, id="2601.70001", abstract="Bandit algorithms.")
    session.commit()
    jobs.index_keywords()
    # A new DATA_DIR (or a new index layout): the database's queue is empty, the index too.
    keyword_index.forget_all()
    fresh = tmp_path_factory.mktemp("other-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PAPERTIDE_DATA_DIR", str(fresh))
        get_settings.cache_clear()
        assert queued(session) == set()

        assert found(session, "bandit") == ["2601.70001"]
    get_settings.cache_clear()


def test_reindex_rebuilds_from_the_database_and_keeps_what_changed_meanwhile(
    database: str, session: Session
) -> None:
    make_paper(session, id="2601.80001", abstract="Sparse autoencoders.")
    session.commit()
    index = keyword_index_now()
    with index.writer() as writer:  # a document for a paper the database never had: the rebuild drops it
        writer.replace([KeywordDoc("2601.99999", "Sparse ghost", "", [], [], None, None, False)])
        writer.commit()
    make_paper(session, id="2601.80002", abstract="Sparse mixtures of experts.")
    session.commit()

    assert jobs.rebuild_keyword_index() == 2

    assert queued(session) == set()
    assert sorted(found(session, "sparse")) == ["2601.80001", "2601.80002"]
    assert index.num_docs() == 2


def test_reindex_reads_the_papers_in_batches_not_the_whole_table_at_once(
    database: str, session: Session
) -> None:
    # At a million papers one list of every row is gigabytes: the rebuild must stream them.
    for n in range(5):
        make_paper(session, id=f"2601.8100{n}", abstract=f"Streamed paper {n}.")
    session.commit()

    assert jobs.rebuild_keyword_index(batch_size=2, progress=False) == 5
    with unit_of_work() as reading:
        batches = [len(docs) for docs in search_repository.every_paper(reading, batch_size=2)]

    assert batches == [2, 2, 1]
    assert sorted(found(session, "streamed")) == [f"2601.8100{n}" for n in range(5)]


def test_a_paper_changed_while_an_empty_index_fills_is_indexed_once_with_its_new_text(
    database: str, session: Session
) -> None:
    # Filling an empty index adds papers without a delete first; a paper queued again after it was
    # added must still be replaced, not added twice.
    make_paper(session, id="2601.82001", abstract="Tidal heating of moons.")
    make_paper(session, id="2601.82002", abstract="Tidal locking of planets.")
    session.commit()
    index = keyword_index.shared(get_settings())
    filled: set[str] = set()
    with index.writer() as writer:
        with unit_of_work() as feeding:
            assert search_service.index_pending(feeding, writer, limit=10, filling=filled) == 2
            writer.commit()
        session.execute(
            update(Paper).where(Paper.id == "2601.82001").values(abstract="Tidal disruption of stars.")
        )
        session.commit()
        with unit_of_work() as feeding:
            assert search_service.index_pending(feeding, writer, limit=10, filling=filled) == 1
            writer.commit()
    index.reload()

    assert index.num_docs() == 2
    assert sorted(found(session, "tidal")) == ["2601.82001", "2601.82002"]
    assert found(session, "disruption") == ["2601.82001"]
    assert found(session, "heating") == []
