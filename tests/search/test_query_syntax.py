"""What a searcher types becomes words, phrases and exclusions, never index syntax."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from papertide.search.query_syntax import parse


def test_words_phrases_and_exclusions() -> None:
    query = parse('graph "neural radiance fields" -survey -"large language" GPT-4')

    assert query.words == ("graph", "GPT", "4")
    assert query.phrases == (("neural", "radiance", "fields"),)
    assert query.excluded == (("survey",), ("large", "language"))
    assert query.text == "graph neural radiance fields GPT 4"  # what the model embeds: no exclusions


def test_an_unclosed_quote_runs_to_the_end_and_a_one_word_phrase_is_a_word() -> None:
    assert parse('"diffusion').words == ("diffusion",)
    assert parse('speech "text to speech').phrases == (("text", "to", "speech"),)


def test_operators_of_search_engines_are_only_words() -> None:
    query = parse("title:attention AND (bert^5 OR gpt*)")

    assert query.words == ("title", "attention", "AND", "bert", "5", "OR", "gpt")
    assert query.phrases == query.excluded == ()


@given(st.text(max_size=300))
def test_every_part_of_any_input_is_made_of_word_characters(q: str) -> None:
    query = parse(q)
    parts = [*query.words, *(w for p in query.phrases for w in p), *(w for p in query.excluded for w in p)]

    assert all(part and all(ch.isalnum() for ch in part) for part in parts)
