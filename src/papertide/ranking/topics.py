"""Topics (pure): clusters of papers in embedding space, stable ids, labels, weekly sizes, momentum."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

# Words that say nothing about a topic in an abstract; the rest is left to tf-idf.
STOPWORDS = frozenset(
    """
    a about above across after again against all also although among an and any approach are as at
    based be been being between both but by can could data does each effective efficient even
    existing first for from further has have however i in into is it its large learning method
    methods model models more most new not novel of on one only or other our over paper performance
    present propose proposed results show shows such than that the their them then there these this
    those through to two under use used using via was we well what when where which while with
    within without work yet task tasks based framework study training
    """.split()  # noqa: SIM905 (one word list reads better than a hundred lines)
)
_WORD = re.compile(r"[a-z][a-z0-9\-]{2,}")
MATCH_SHARE = 0.5  # a new cluster keeps an old topic's id when more than half its papers were in it
REFIT_SHARE = 0.1  # refit once this share of the clustered papers has changed since the last fit
FIT_SAMPLE = 25_000  # papers a fit learns centroids from; every paper then joins the nearest centroid
LABEL_SAMPLE = 50  # papers per topic its label is learnt from (spread over its members)
BASELINE_WEEKS = 4
WEEKS_SHOWN = 12
WINDOW = timedelta(weeks=WEEKS_SHOWN)  # papers listed in this window before as_of are clustered


@dataclass(frozen=True)
class Cluster:
    topic_id: int
    paper_ids: list[str]


@dataclass(frozen=True)
class FitState:
    """What the last fit left: its model, how many papers it clustered, how many changed since."""

    model: str
    papers: int
    changed: int
    has_centroids: bool


def cluster_count(n_papers: int) -> int:
    """About one topic per 50 papers, between 2 and 200."""
    return max(2, min(200, round(math.sqrt(n_papers / 2))))


def needs_refit(fit: FitState | None, *, model: str, pending: int) -> bool:
    """Refit when there is no fit, the vectors come from another model, or more than REFIT_SHARE of
    the window has changed since the fit (`pending`: papers given, moved off or taken from a topic).

    Between refits a new paper joins the nearest centroid: cheap, and fine while the window still
    looks like what was fitted; once a tenth of it is new, new directions deserve topics of their own.
    """
    if fit is None or fit.model != model or not fit.has_centroids:
        return True
    return pending > REFIT_SHARE * fit.papers


def fit_sample(n: int, *, limit: int = FIT_SAMPLE, seed: int = 0) -> np.ndarray[Any, Any]:
    """The rows a fit learns from, in order: all of them up to `limit`, else a fixed random `limit`."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def fit_centroids(
    vectors: np.ndarray[Any, Any], k: int, *, iterations: int = 30, seed: int = 0
) -> np.ndarray[Any, Any]:
    """Spherical k-means (cosine) on unit vectors: k unit centroids; deterministic for the same input."""
    n = vectors.shape[0]
    k = min(k, n)
    rng = np.random.default_rng(seed)
    centers = np.empty((k, vectors.shape[1]), dtype=vectors.dtype)
    centers[0] = vectors[rng.integers(n)]
    closest = vectors @ centers[0]
    for j in range(1, k):  # k-means++ seeding: far points are likelier centres
        weights = np.clip(1.0 - closest.astype(np.float64), 0, None) ** 2
        total = weights.sum()
        centers[j] = vectors[rng.choice(n, p=weights / total) if total > 0 else rng.integers(n)]
        closest = np.maximum(closest, vectors @ centers[j])
    labels = nearest(vectors, centers)
    for step in range(iterations):
        sums = _sums(vectors, labels, k)
        norms = np.linalg.norm(sums, axis=1)
        filled = norms > 0  # an empty cluster keeps its centre
        centers[filled] = sums[filled] / norms[filled, None]
        new_labels = nearest(vectors, centers)
        if step > 0 and np.array_equal(new_labels, labels):
            break
        labels = new_labels
    return centers


def _sums(vectors: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], k: int) -> np.ndarray[Any, Any]:
    """The sum of each cluster's vectors (zero for an empty one): sorted once, added in runs."""
    order = np.argsort(labels, kind="stable")
    present, starts = np.unique(labels[order], return_index=True)
    sums = np.zeros((k, vectors.shape[1]), dtype=vectors.dtype)
    sums[present] = np.add.reduceat(vectors[order], starts, axis=0)
    return sums


def nearest(vectors: np.ndarray[Any, Any], centroids: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The index of each vector's most similar centroid (in blocks: a million rows fit in memory)."""
    labels = np.empty(vectors.shape[0], dtype=np.int64)
    for start in range(0, vectors.shape[0], 65536):
        labels[start : start + 65536] = np.argmax(vectors[start : start + 65536] @ centroids.T, axis=1)
    return labels


def spherical_kmeans(
    vectors: np.ndarray[Any, Any], k: int, *, iterations: int = 30, seed: int = 0
) -> np.ndarray[Any, Any]:
    """Cluster unit vectors by cosine similarity: each one's nearest fitted centroid."""
    return nearest(vectors, fit_centroids(vectors, k, iterations=iterations, seed=seed))


def assign_ids(
    groups: Sequence[Sequence[str]], previous: Mapping[str, int], *, next_id: int
) -> list[Cluster]:
    """Give each new group the id of the old topic most of its papers came from, else a fresh id.

    Largest groups choose first, and each old id is used once, so a topic that mostly keeps its
    papers keeps its id across runs.
    """
    clusters = []
    taken: set[int] = set()
    for group in sorted(groups, key=lambda g: (-len(g), sorted(g)[0] if g else "")):
        votes = Counter(previous[pid] for pid in group if pid in previous)
        chosen = None
        for topic_id, count in votes.most_common():
            if topic_id not in taken and count > MATCH_SHARE * len(group):
                chosen = topic_id
                break
        if chosen is None:
            chosen = next_id
            next_id += 1
        taken.add(chosen)
        clusters.append(Cluster(topic_id=chosen, paper_ids=list(group)))
    return clusters


def word_set(text: str) -> set[str]:
    """The distinct words of `text` that can name a topic (set operations: no Python loop per word)."""
    return set(_WORD.findall(text.lower())) - STOPWORDS


def label_terms(
    cluster_texts: Sequence[str], all_texts_df: Counter[str], n_docs: int, *, top: int = 3
) -> list[str]:
    """The cluster's most distinctive words: frequent in it, rare elsewhere (tf-idf)."""
    return _top_terms([word_set(text) for text in cluster_texts], all_texts_df, n_docs, top=top)


def _top_terms(
    word_sets: Sequence[set[str]], all_texts_df: Counter[str], n_docs: int, *, top: int
) -> list[str]:
    counts: Counter[str] = Counter()
    for text_words in word_sets:
        counts.update(text_words)
    scored = [
        (count * math.log((1 + n_docs) / (1 + all_texts_df[word])), word)
        for word, count in counts.items()
        if count >= 2 or len(word_sets) < 4
    ]
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [word for _, word in scored[:top]]


def document_frequencies(texts: Sequence[str]) -> Counter[str]:
    frequencies: Counter[str] = Counter()
    for text in texts:
        frequencies.update(word_set(text))
    return frequencies


def group_labels(groups: Mapping[int, Sequence[str]], *, top: int = 3) -> dict[int, list[str]]:
    """label_terms for every group at once, against all the groups' texts; each text read once."""
    word_sets = {key: [word_set(text) for text in texts] for key, texts in groups.items()}
    frequencies: Counter[str] = Counter()
    for sets in word_sets.values():
        for text_words in sets:
            frequencies.update(text_words)
    n_docs = sum(len(sets) for sets in word_sets.values())
    return {key: _top_terms(sets, frequencies, n_docs, top=top) for key, sets in word_sets.items()}


def label_sample(members: Sequence[str], *, limit: int = LABEL_SAMPLE) -> list[str]:
    """Up to `limit` of a topic's members, spread evenly over them."""
    return list(members[:: max(1, len(members) // limit)][:limit])


def week_start(moment: datetime | date) -> date:
    day = moment.date() if isinstance(moment, datetime) else moment
    return day - timedelta(days=day.weekday())


def weekly_sizes(
    listed: Sequence[datetime], *, as_of: datetime, weeks: int = WEEKS_SHOWN
) -> list[dict[str, Any]]:
    """Papers per week (Monday-based) for the `weeks` weeks up to as_of, oldest first."""
    return weekly_from_counts(
        Counter(week_start(moment) for moment in listed if moment <= as_of), as_of=as_of, weeks=weeks
    )


def weekly_from_counts(
    counts: Mapping[date, int], *, as_of: datetime, weeks: int = WEEKS_SHOWN
) -> list[dict[str, Any]]:
    """weekly_sizes from papers counted per week start (a Monday), as SQL counts them."""
    last = week_start(as_of)
    starts = [last - timedelta(weeks=w) for w in range(weeks - 1, -1, -1)]
    return [{"week": start.isoformat(), "papers": counts.get(start, 0)} for start in starts]


def momentum(listed: Sequence[datetime], *, as_of: datetime, baseline_weeks: int = BASELINE_WEEKS) -> float:
    """Papers in the last 7 days against the weekly mean of the 4 weeks before (smoothed by +1).

    1.0 is a steady topic; 2.0 means it doubled its pace this week.
    """
    week = timedelta(days=7)
    this_week = sum(1 for t in listed if as_of - week < t <= as_of)
    before = sum(1 for t in listed if as_of - week * (1 + baseline_weeks) < t <= as_of - week)
    return momentum_from_counts(this_week, before, baseline_weeks=baseline_weeks)


def momentum_from_counts(this_week: int, before: int, *, baseline_weeks: int = BASELINE_WEEKS) -> float:
    """momentum() from the two counts: the last 7 days, and the `baseline_weeks` weeks before them."""
    return (this_week + 1.0) / (before / baseline_weeks + 1.0)
