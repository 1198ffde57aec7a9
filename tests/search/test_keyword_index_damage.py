"""A keyword index that cannot be opened is told apart from one that is busy or being filled, and
`papertide reindex` can start over from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from papertide.config import Settings
from papertide.search import keyword_index
from papertide.search.keyword_index import (
    KeywordDoc,
    KeywordIndex,
    KeywordIndexBusy,
    KeywordIndexDamaged,
    KeywordIndexUnavailable,
)
from papertide.web import search_views

DOC = KeywordDoc("2601.00001", "Graph nets", "Graph neural networks.", ["Ada"], ["cs.LG"], None, None, False)


def filled(path: Path) -> KeywordIndex:
    index = KeywordIndex(path)
    with index.writer() as writer:
        writer.add([DOC])
        writer.commit()
    return index


def test_an_unreadable_meta_file_is_damaged(tmp_path: Path) -> None:
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "meta.json").write_text("{ not json")

    with pytest.raises(KeywordIndexDamaged, match="cannot open the keyword index"):
        KeywordIndex(tmp_path / "index")


def test_missing_segment_files_are_damaged(tmp_path: Path) -> None:
    filled(tmp_path / "index")
    for part in (tmp_path / "index").glob("*.term"):
        part.unlink()

    with pytest.raises(KeywordIndexDamaged):
        KeywordIndex(tmp_path / "index")


def test_the_reader_is_told_who_must_act_on_a_damaged_index_and_to_wait_for_one_being_built() -> None:
    damaged = search_views.unavailable_sentence(KeywordIndexDamaged("cannot open"))
    building = search_views.unavailable_sentence(KeywordIndexUnavailable("could not be searched"))

    assert damaged.startswith("The keyword index is damaged; an administrator must run `papertide reindex`")
    assert "Semantic search still works" in damaged
    assert building == search_views.KEYWORD_INDEX_BUILDING


def test_a_writer_held_elsewhere_is_busy(tmp_path: Path) -> None:
    index = filled(tmp_path / "index")

    with index.writer(), pytest.raises(KeywordIndexBusy):  # noqa: SIM117 - the second is what fails
        with KeywordIndex(tmp_path / "index").writer():
            pass


def test_an_index_folder_that_cannot_be_made_is_unavailable_not_damaged(tmp_path: Path) -> None:
    # A file where the folder should be: no process can make it, root included (a read-only or full
    # DATA_DIR fails the same way); reindex cannot mend it, so it must not be called damaged.
    settings = Settings(data_dir=tmp_path)
    path = keyword_index.index_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a folder")

    with pytest.raises(KeywordIndexUnavailable) as refused:
        KeywordIndex(path)

    assert not isinstance(refused.value, KeywordIndexDamaged | KeywordIndexBusy)
    assert "cannot use the keyword index folder" in str(refused.value)
    sentence = search_views.unavailable_sentence(refused.value)
    assert "reindex" not in sentence, "a reindex would not help"
    assert "being built" not in sentence, "nor would waiting"
    assert "administrator fixes it" in sentence
    with pytest.raises(KeywordIndexUnavailable):
        keyword_index.discard_if_damaged(settings)
    assert path.read_text() == "not a folder", "nothing was deleted"


def test_discarding_removes_a_damaged_index_and_keeps_a_healthy_one(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    path = keyword_index.index_path(settings)
    filled(path)

    assert not keyword_index.discard_if_damaged(settings)
    assert KeywordIndex(path).num_docs() == 1

    (path / "meta.json").write_text("{ not json")
    assert keyword_index.discard_if_damaged(settings)
    assert KeywordIndex(path).num_docs() == 0, "a new, empty index opens where the damaged one was"
