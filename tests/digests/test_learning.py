"""A profile's learned model, on synthetic embeddings: what a reader would notice in their next digest."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from papertide.digests.learning import MIN_VOTES, ProfileModel, nearest_liked, relevance, train

DIM = 32
Vectors = np.ndarray[Any, Any]


def _unit(matrix: Vectors) -> Vectors:
    return np.asarray(matrix / np.linalg.norm(matrix, axis=-1, keepdims=True), dtype=np.float32)


def _directions() -> dict[str, Vectors]:
    """Four topic directions with a shared part, as real paper embeddings have one."""
    rng = np.random.default_rng(7)
    common = rng.normal(size=DIM)
    return {name: common / np.linalg.norm(common) * 0.5 + _unit(rng.normal(size=DIM)) for name in "ABCD"}


DIRECTIONS = _directions()


def papers(topic: str, n: int, *, seed: int, spread: float = 0.1) -> Vectors:
    """n unit vectors around one topic's direction."""
    rng = np.random.default_rng(seed)
    return _unit(DIRECTIONS[topic] + rng.normal(scale=spread, size=(n, DIM)))


def background(n: int = 400, *, seed: int = 99) -> Vectors:
    """Random papers from every topic, the way a random sample of the corpus mixes them."""
    return np.concatenate([papers(topic, n // 4, seed=seed + i) for i, topic in enumerate("ABCD")])


def none() -> Vectors:
    return np.zeros((0, DIM), dtype=np.float32)


def test_after_three_likes_and_three_dislikes_the_liked_topic_ranks_above_the_disliked_one() -> None:
    model = train(
        liked=papers("A", 3, seed=1), disliked=papers("B", 3, seed=2), phrases=none(), background=background()
    )
    unseen_a, unseen_b = model.score(papers("A", 50, seed=3)), model.score(papers("B", 50, seed=4))

    assert unseen_a.min() > unseen_b.max()
    assert model.votes == 6


def test_the_liked_topic_also_ranks_above_topics_the_reader_never_voted_on() -> None:
    model = train(liked=papers("A", 3, seed=1), disliked=none(), phrases=none(), background=background())

    liked_topic = model.score(papers("A", 50, seed=3))
    for other in "BCD":
        assert liked_topic.min() > model.score(papers(other, 50, seed=5)).max()


def test_a_dislike_pushes_papers_like_it_down_the_digest() -> None:
    liked, phrases = papers("A", 3, seed=1), papers("A", 1, seed=11)
    candidates = np.concatenate([papers("A", 20, seed=3), papers("C", 20, seed=6), papers("D", 20, seed=8)])
    before = train(liked=liked, disliked=none(), phrases=phrases, background=background())
    after = train(liked=liked, disliked=papers("C", 1, seed=12), phrases=phrases, background=background())

    near_the_dislike = slice(20, 40)
    assert np.all(after.score(candidates)[near_the_dislike] < before.score(candidates)[near_the_dislike])
    assert _mean_rank(after, candidates, near_the_dislike) > _mean_rank(before, candidates, near_the_dislike)


def _mean_rank(model: ProfileModel, candidates: Vectors, members: slice) -> float:
    """Mean position (0 = top of the digest) of the candidates in `members`."""
    ranks = np.empty(len(candidates))
    ranks[np.argsort(-model.score(candidates), kind="stable")] = np.arange(len(candidates))
    return float(ranks[members].mean())


def test_phrases_alone_point_the_model_at_their_topic() -> None:
    model = train(liked=none(), disliked=none(), phrases=papers("B", 2, seed=13), background=background())

    assert model.score(papers("B", 30, seed=4)).min() > model.score(papers("A", 30, seed=3)).max()
    assert model.votes == 0
    assert not model.ready


def test_only_dislikes_still_rank_the_disliked_topic_last() -> None:
    model = train(liked=none(), disliked=papers("D", 4, seed=14), phrases=none(), background=background())
    scores = model.score(np.concatenate([papers(t, 20, seed=20 + i) for i, t in enumerate("ABCD")]))

    assert np.all(np.isfinite(scores))
    assert scores[60:].max() < scores[:60].min()


def test_scores_are_probabilities() -> None:
    model = train(
        liked=papers("A", 3, seed=1), disliked=papers("B", 3, seed=2), phrases=none(), background=background()
    )
    scores = model.score(background())

    assert scores.dtype == np.float64
    assert np.all((scores > 0) & (scores < 1))


def test_duplicate_and_contradictory_votes_give_finite_scores() -> None:
    paper = papers("A", 1, seed=1)
    model = train(
        liked=np.repeat(paper, 5, axis=0),
        disliked=np.repeat(paper, 2, axis=0),
        phrases=np.repeat(paper, 2, axis=0),
        background=np.repeat(paper, 300, axis=0),
    )

    assert np.all(np.isfinite(model.weights))
    assert np.isfinite(model.bias)
    assert np.all(np.isfinite(model.score(background())))


def test_every_vote_on_one_side_with_nothing_else_still_gives_a_finite_model() -> None:
    model = train(liked=papers("A", 4, seed=1), disliked=none(), phrases=none(), background=none())

    assert np.all(np.isfinite(model.score(background())))
    assert model.score(papers("A", 10, seed=3)).min() > model.score(papers("C", 10, seed=6)).max()


def test_the_model_starts_ranking_after_min_votes() -> None:
    def model_after(votes: int) -> ProfileModel:
        return train(
            liked=papers("A", votes, seed=1), disliked=none(), phrases=none(), background=background()
        )

    assert not model_after(MIN_VOTES - 1).ready
    assert model_after(MIN_VOTES).ready


def test_a_stored_model_scores_exactly_as_the_trained_one() -> None:
    model = train(
        liked=papers("A", 3, seed=1),
        disliked=papers("B", 2, seed=2),
        phrases=papers("A", 1, seed=11),
        background=background(),
    )
    stored = json.loads(json.dumps(model.to_json()))  # what the JSONB column gives back
    loaded = ProfileModel.from_json(stored)
    candidates = background(seed=5)

    assert np.array_equal(loaded.score(candidates), model.score(candidates))
    assert loaded.votes == model.votes == 5


def test_a_stored_model_keeps_the_name_of_its_embedding_model() -> None:
    model = train(liked=papers("A", 3, seed=1), disliked=none(), phrases=none(), background=background())
    named = ProfileModel.from_json(json.loads(json.dumps(replace(model, embedding_model="m-v2").to_json())))
    older = {key: value for key, value in model.to_json().items() if key != "embedding_model"}

    assert named.embedding_model == "m-v2"
    assert ProfileModel.from_json(older).embedding_model is None  # from before models named it


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"version": 99, "weights": [0.1], "bias": 0.0, "votes": 1},
        {"version": 1, "weights": [], "bias": 0.0, "votes": 1},
        {"version": 1, "weights": ["x"], "bias": 0.0, "votes": 1},
        {"version": 1, "weights": [float("nan")], "bias": 0.0, "votes": 1},
        {"version": 1, "weights": [0.1], "bias": "0", "votes": 1},
        {"version": 1, "weights": [0.1], "bias": True, "votes": 1},
        {"version": 1, "weights": [0.1], "bias": 0.0, "votes": True},
        {"version": 1, "weights": [0.1], "bias": 0.0, "votes": -1},
        {"version": 1, "weights": [0.1, 0.2], "bias": 0.0, "votes": 1, "center": [0.1]},
        {"version": 1, "weights": [0.1], "bias": 10**400, "votes": 1},
        {"version": 1, "weights": [10**400], "bias": 0.0, "votes": 1},
        {"version": 1, "weights": [0.1], "bias": 0.0, "votes": 1, "embedding_model": 7},
        [1, 2, 3],
        None,
    ],
)
def test_a_broken_stored_model_is_refused_with_a_clear_error(broken: object) -> None:
    with pytest.raises(ValueError, match="profile model"):
        ProfileModel.from_json(broken)


def test_vectors_of_another_model_are_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="liked has dim 32, disliked has dim 16"):
        train(
            liked=papers("A", 3, seed=1), disliked=np.ones((2, 16)), phrases=none(), background=background()
        )
    model = train(liked=papers("A", 3, seed=1), disliked=none(), phrases=none(), background=background())
    with pytest.raises(ValueError, match="dim 32"):
        model.score(np.ones((4, 16)))


def test_no_vectors_at_all_is_an_error_not_a_model() -> None:
    with pytest.raises(ValueError, match="no vectors"):
        train(
            liked=np.zeros((0,)), disliked=np.zeros((0,)), phrases=np.zeros((0,)), background=np.zeros((0,))
        )


def test_nearest_liked_names_the_closest_liked_paper() -> None:
    liked = np.concatenate([papers("A", 1, seed=1), papers("B", 1, seed=2), papers("C", 1, seed=3)])
    candidate = papers("B", 1, seed=40)[0]

    found = nearest_liked(candidate, liked=liked, liked_ids=["2601.00001", "2601.00002", "2601.00003"])

    assert found is not None
    paper_id, cosine = found
    assert paper_id == "2601.00002"
    assert cosine == pytest.approx(float(liked[1] @ candidate), abs=1e-6)


def test_nearest_liked_is_none_without_likes_and_refuses_ids_that_do_not_match() -> None:
    candidate = papers("A", 1, seed=1)[0]

    assert nearest_liked(candidate, liked=none(), liked_ids=[]) is None
    with pytest.raises(ValueError, match="2 liked vectors but 1 ids"):
        nearest_liked(candidate, liked=papers("A", 2, seed=2), liked_ids=["x"])


def test_the_background_weighs_the_same_however_many_papers_are_passed() -> None:
    """500 or 2,000 random papers: the votes keep the same say, so scores and digest hardly move."""
    votes: dict[str, Any] = {
        "liked": papers("A", 3, seed=1),
        "disliked": papers("B", 2, seed=2),
        "phrases": none(),
    }
    small = train(**votes, background=background(500, seed=50))
    large = train(**votes, background=background(2000, seed=60))
    candidates = background(seed=70)

    assert np.abs(small.score(candidates) - large.score(candidates)).max() < 0.05
    top_small = set(np.argsort(-small.score(candidates))[:20].tolist())
    top_large = set(np.argsort(-large.score(candidates))[:20].tolist())
    assert len(top_small & top_large) >= 16


def _top(scores: Vectors, n: int) -> set[int]:
    return set(np.argsort(-scores, kind="stable")[:n].tolist())


def test_after_votes_the_taught_topic_still_ranks_first_and_the_phrases_still_count() -> None:
    """Likes of B under a phrase for B: B first; and a model that only half learned B is held up by the phrase."""
    candidates = np.concatenate([papers(t, 10, seed=30 + i) for i, t in enumerate("ABCD")])
    model = train(
        liked=papers("B", 3, seed=1), disliked=papers("C", 2, seed=2), phrases=none(), background=background()
    )

    scores = relevance(model, vectors=candidates, phrase_vectors=papers("B", 1, seed=11), phrase_scores=None)

    assert model.ready
    assert _top(scores, 10) == set(range(10, 20))


def test_a_few_stray_votes_do_not_outrank_what_the_reader_typed() -> None:
    """Two likes in D against a phrase for A: the blend keeps A on top, the model alone would not."""
    candidates = np.concatenate([papers(t, 10, seed=30 + i) for i, t in enumerate("ABCD")])
    model = train(liked=papers("D", 2, seed=3), disliked=none(), phrases=none(), background=background())

    blended = relevance(model, vectors=candidates, phrase_vectors=papers("A", 1, seed=11), phrase_scores=None)

    assert _top(model.score(candidates), 10) == set(range(30, 40))  # the model alone: D
    assert _top(blended, 5) <= set(range(10))  # the digest's first items: still A


def test_many_votes_outweigh_the_phrases() -> None:
    """Thirty likes in D: the reader's votes now lead, whatever they typed."""
    candidates = np.concatenate([papers(t, 10, seed=30 + i) for i, t in enumerate("ABCD")])
    model = train(liked=papers("D", 30, seed=3), disliked=none(), phrases=none(), background=background())

    scores = relevance(model, vectors=candidates, phrase_vectors=papers("A", 1, seed=11), phrase_scores=None)

    assert _top(scores, 10) == set(range(30, 40))


def test_relevance_without_phrases_or_model() -> None:
    candidates = np.concatenate([papers("A", 5, seed=3), papers("B", 5, seed=4)])
    model = train(liked=papers("B", 3, seed=1), disliked=none(), phrases=none(), background=background())

    assert np.array_equal(
        relevance(None, vectors=candidates, phrase_vectors=None, phrase_scores=None), np.zeros(10)
    )
    assert _top(relevance(model, vectors=candidates, phrase_vectors=none(), phrase_scores=None), 5) == set(
        range(5, 10)
    )
    assert relevance(
        model, vectors=none(), phrase_vectors=papers("A", 1, seed=11), phrase_scores=None
    ).shape == (0,)


def test_before_the_model_is_ready_the_digest_keeps_the_calibrated_matchs_order() -> None:
    """What the reason line calls a match orders the digest until the profile has learned: the
    scores given are the ranking, whatever the cosine says; from MIN_VOTES on the model's blend does."""
    candidates = np.concatenate([papers(t, 10, seed=30 + i) for i, t in enumerate("ABCD")])
    calibrated = np.arange(40, dtype=np.float64)  # ranks D first, where a cosine to the phrase ranks A
    one_vote = train(liked=papers("D", 1, seed=3), disliked=none(), phrases=none(), background=background())
    taught = train(liked=papers("B", 5, seed=1), disliked=none(), phrases=none(), background=background())
    phrase = papers("A", 1, seed=11)

    assert not one_vote.ready
    assert taught.ready
    for model in (None, one_vote):
        scores = relevance(model, vectors=candidates, phrase_vectors=phrase, phrase_scores=calibrated)
        assert np.array_equal(scores, calibrated)
    # no calibrated scores (a profile with no phrases): no order of its own, the pool's stands
    assert np.array_equal(
        relevance(None, vectors=candidates, phrase_vectors=phrase, phrase_scores=None), np.zeros(40)
    )
    learned = relevance(taught, vectors=candidates, phrase_vectors=phrase, phrase_scores=calibrated)
    assert not np.array_equal(learned, calibrated)
    # the blend is the model's and the phrases' cosine (the calibrated score in it did no better)
    assert np.array_equal(
        learned, relevance(taught, vectors=candidates, phrase_vectors=phrase, phrase_scores=None)
    )


def test_relevance_refuses_phrase_scores_that_do_not_fit() -> None:
    candidates = papers("A", 5, seed=3)

    with pytest.raises(ValueError, match="5 vectors but 4 phrase scores"):
        relevance(None, vectors=candidates, phrase_vectors=None, phrase_scores=np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        relevance(None, vectors=candidates, phrase_vectors=None, phrase_scores=np.array([0, 1, np.nan, 2, 3]))
