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
BASELINE_WEEKS = 4
WEEKS_SHOWN = 12
WINDOW = timedelta(weeks=WEEKS_SHOWN)  # papers listed in this window before as_of are clustered


@dataclass(frozen=True)
class Cluster:
    topic_id: int
    paper_ids: list[str]


def cluster_count(n_papers: int) -> int:
    """About one topic per 50 papers, between 2 and 200."""
    return max(2, min(200, round(math.sqrt(n_papers / 2))))


def spherical_kmeans(
    vectors: np.ndarray[Any, Any], k: int, *, iterations: int = 30, seed: int = 0
) -> np.ndarray[Any, Any]:
    """Cluster unit vectors by cosine similarity; deterministic for the same vectors, k and seed."""
    n = vectors.shape[0]
    k = min(k, n)
    rng = np.random.default_rng(seed)
    centers = [vectors[rng.integers(n)]]
    for _ in range(1, k):  # k-means++ seeding: far points are likelier centres
        distance = 1.0 - np.max(vectors @ np.stack(centers).T, axis=1)
        weights = np.clip(distance, 0, None) ** 2
        total = weights.sum()
        centers.append(vectors[rng.choice(n, p=weights / total) if total > 0 else rng.integers(n)])
    center_matrix = np.stack(centers)
    labels = np.zeros(n, dtype=np.int64)
    for _ in range(iterations):
        new_labels = np.argmax(vectors @ center_matrix.T, axis=1)
        if _ > 0 and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for j in range(k):
            members = vectors[labels == j]
            if len(members):
                mean = members.sum(axis=0)
                center_matrix[j] = mean / (np.linalg.norm(mean) or 1.0)
    return labels


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


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def label_terms(
    cluster_texts: Sequence[str], all_texts_df: Counter[str], n_docs: int, *, top: int = 3
) -> list[str]:
    """The cluster's most distinctive words: frequent in it, rare elsewhere (tf-idf)."""
    counts: Counter[str] = Counter()
    for text in cluster_texts:
        counts.update(set(words(text)))
    scored = [
        (count * math.log((1 + n_docs) / (1 + all_texts_df[word])), word)
        for word, count in counts.items()
        if count >= 2 or len(cluster_texts) < 4
    ]
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [word for _, word in scored[:top]]


def document_frequencies(texts: Sequence[str]) -> Counter[str]:
    frequencies: Counter[str] = Counter()
    for text in texts:
        frequencies.update(set(words(text)))
    return frequencies


def week_start(moment: datetime | date) -> date:
    day = moment.date() if isinstance(moment, datetime) else moment
    return day - timedelta(days=day.weekday())


def weekly_sizes(
    listed: Sequence[datetime], *, as_of: datetime, weeks: int = WEEKS_SHOWN
) -> list[dict[str, Any]]:
    """Papers per week (Monday-based) for the `weeks` weeks up to as_of, oldest first."""
    last = week_start(as_of)
    starts = [last - timedelta(weeks=w) for w in range(weeks - 1, -1, -1)]
    counts = Counter(week_start(moment) for moment in listed if moment <= as_of)
    return [{"week": start.isoformat(), "papers": counts.get(start, 0)} for start in starts]


def momentum(listed: Sequence[datetime], *, as_of: datetime, baseline_weeks: int = BASELINE_WEEKS) -> float:
    """Papers in the last 7 days against the weekly mean of the 4 weeks before (smoothed by +1).

    1.0 is a steady topic; 2.0 means it doubled its pace this week.
    """
    week = timedelta(days=7)
    this_week = sum(1 for t in listed if as_of - week < t <= as_of)
    before = sum(1 for t in listed if as_of - week * (1 + baseline_weeks) < t <= as_of - week)
    return (this_week + 1.0) / (before / baseline_weeks + 1.0)
