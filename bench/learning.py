"""Learning from votes: simulated readers on the bundled sample, learned ranking vs phrases alone.

    .venv/bin/python bench/learning.py [--quick] [--topics 12] [--votes 30] [--cluster-seed 0] [--draws 1]

Readers. The sample's papers are embedded with the configured model (all-MiniLM-L6-v2) and split
into topics by papertide's own topic code, `ranking.topics.spherical_kmeans` (seed 0), with
`--topics` clusters: 12 by default, about 100 papers each, so that 30 likes and a digest of 8 still
fit inside one topic. Each topic is named by `ranking.topics.label_terms`, as the topics page names
it ("robot manipulation action"). Every topic of at least 45 papers gets a reader who likes its
papers and nothing else, with that name as their one interest phrase; then readers of two topics
(the largest with the smallest, and so on), with two phrases. No reader is left out.

Protocol, one vote a round: the digest is the top 8 of the papers the reader has not voted on; they
vote on its first item, "more like this" if it is in their topics, else "less like this". The
digest is ranked by `learning.relevance`, exactly as `digests.build.profile_fit` calls it: until
`learning.MIN_VOTES` votes by the phrases alone, as the calibrated match scores them
(`matching.PhraseMatcher`, its background the whole sample; best over the reader's phrases); from
then on by the phrases' cosine blended with `learning.train`'s model (liked papers and phrases
positive, disliked negative, 1,000 random unvoted papers as weak negatives), retrained after every
vote. The phrase-only digest, what a reader who never votes gets, is the calibrated match's top 8
of the same unvoted papers. After 0, 3, 10 and 30 votes it prints precision@8 (the share of the
digest in the reader's topics) for both, then the mean over readers after 1 to 5
votes with the model switched on from the first vote (what MIN_VOTES is chosen from), and the time
of one `train` call with 2,000 background vectors on one BLAS thread.

Reference. After 10 votes the same unvoted papers are also ranked with their labels seen
(`labels_seen`: the shipped model trained on the true labels of one half, about 600 votes, scoring
the other half, and the other way round). It is not a method a reader could get; it says how far
these embeddings and these topics let any ranking of this kind go. A reader it leaves below 0.8 is
one the target cannot reach by changing the blend or the model's constants.

Noise. One vote changes the rest of a reader's trajectory, so one run is one sample. `--draws N`
runs every reader N times with a different draw of the background papers (seeds `reader + 1000 *
draw`); each cell is then the mean over the draws, and the summary counts the readers that meet
the target (0.8 or more after 10 votes, and not below phrases only) in each draw.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "src/papertide/data/hf_daily_papers.json.gz"
CACHE_DIR = Path(tempfile.gettempdir())  # the sample's embeddings, so a rerun skips the model
DIGEST = 8
BACKGROUND = 1000
MIN_TOPIC = 45  # 30 votes and a full digest of unseen topic papers still fit in a topic this size
CHECKPOINTS = (0, 3, 10, 30)
REFERENCE_AT = 10  # the target's checkpoint: where labels_seen ranks the papers still unvoted
LABELS_SEEN = -1  # the key of labels_seen's pair in simulate's result (never a vote count)


@dataclass(frozen=True)
class Corpus:
    texts: list[str]
    vectors: Any  # (n, dim) unit vectors from the real model


@dataclass(frozen=True)
class Reader:
    topics: tuple[int, ...]
    phrases: tuple[str, ...]


def load_corpus(*, use_cache: bool) -> Corpus:
    """The sample's papers (one per id) and their embeddings, cached in the temp dir by content."""
    import numpy as np

    from papertide.embeddings.encoder import get_encoder, paper_text
    from papertide.ingest.sources import sample

    records = {r.id: r for r in sample.parse_sample(SAMPLE).records}
    texts = [paper_text(records[i].title, records[i].abstract) for i in sorted(records)]
    encoder = get_encoder()
    key = hashlib.sha256("\n".join([encoder.name, *texts]).encode()).hexdigest()[:16]
    cache = CACHE_DIR / f"papertide-bench-learning-{key}.npy"
    if use_cache and cache.exists():
        return Corpus(texts, np.load(cache))
    start = time.perf_counter()
    vectors = encoder.encode(texts)
    print(f"embedded {len(texts)} papers in {time.perf_counter() - start:.1f}s", flush=True)
    if use_cache:
        np.save(cache, vectors)
    return Corpus(texts, vectors)


def topic_labels(corpus: Corpus, k: int, *, seed: int = 0) -> tuple[Any, dict[int, str]]:
    """Each paper's topic (papertide's spherical k-means, seed 0 unless told) and each topic's name."""
    import numpy as np

    from papertide.ranking import topics

    labels = topics.spherical_kmeans(corpus.vectors, k, seed=seed)
    frequencies = topics.document_frequencies(corpus.texts)
    names = {
        int(t): " ".join(
            topics.label_terms(
                [corpus.texts[i] for i in np.flatnonzero(labels == t)], frequencies, len(corpus.texts)
            )
        )
        for t in np.unique(labels)
    }
    return labels, names


def make_readers(labels: Any, names: dict[int, str]) -> list[Reader]:
    """A reader per topic of MIN_TOPIC papers or more, then two-topic readers pairing them."""
    sizes = Counter(int(t) for t in labels)
    eligible = [t for t, n in sorted(sizes.items(), key=lambda item: (-item[1], item[0])) if n >= MIN_TOPIC]
    chosen = [(t,) for t in eligible] + [(eligible[i], eligible[-1 - i]) for i in range(len(eligible) // 2)]
    return [Reader(topics=ids, phrases=tuple(names[t] for t in ids)) for ids in chosen]


def phrase_matches(corpus: Corpus, readers: list[Reader], phrase_vectors: list[Any]) -> list[Any]:
    """Each reader's calibrated match to every paper (best over their phrases), as a digest scores it
    before the reader votes; the background is the whole sample where a run samples 2,000 papers."""
    from papertide.digests import matching

    matcher = matching.PhraseMatcher(matching.Background.build(corpus.vectors, corpus.texts))
    papers = [matching.PaperText(str(i), text) for i, text in enumerate(corpus.texts)]
    return [
        matcher.scores(list(r.phrases), vectors, papers, corpus.vectors).max(axis=1)
        for r, vectors in zip(readers, phrase_vectors, strict=True)
    ]


def simulate(
    reader: Reader,
    corpus: Corpus,
    labels: Any,
    phrase_vectors: Any,
    phrase_match: Any,
    *,
    votes: int,
    min_votes: int,
    seed: int,
    alone: bool = False,
    labelled: bool = False,
) -> dict[int, tuple[float, float]]:
    """Precision@8 of (learned digest, phrase-only digest) after each number of votes up to `votes`;
    `phrase_match` is each paper's calibrated match to the reader's phrases (the phrase-only ranking).
    With `labelled`, the result also holds `labels_seen`'s pair under LABELS_SEEN, on the papers still
    unvoted after REFERENCE_AT votes (its own random stream: the trajectory is the same either way)."""
    import numpy as np

    from papertide.digests import learning

    rng = np.random.default_rng(seed)
    vectors = corpus.vectors
    relevant = np.isin(labels, reader.topics)
    unvoted = np.ones(len(vectors), dtype=bool)
    liked: list[int] = []
    disliked: list[int] = []
    results = {}
    for given in range(votes + 1):
        pool = np.flatnonzero(unvoted)
        if labelled and given == REFERENCE_AT:
            reference_rng = np.random.default_rng([seed, 1])
            results[LABELS_SEEN] = labels_seen(
                relevant, vectors, phrase_vectors, phrase_match, pool=pool, rng=reference_rng
            )
        model = None
        if given >= min_votes:
            background = rng.choice(pool, size=min(BACKGROUND, len(pool)), replace=False)
            model = learning.train(
                liked=vectors[liked],
                disliked=vectors[disliked],
                phrases=phrase_vectors,
                background=vectors[background],
            )
        if alone and model is not None:  # the model by itself, from min_votes on
            scores = model.score(vectors[pool])
        else:  # exactly what a digest ranks by: the phrases until MIN_VOTES, then blended with the model
            scores = learning.relevance(
                model, vectors=vectors[pool], phrase_vectors=phrase_vectors, phrase_scores=phrase_match[pool]
            )
        digest = pool[np.argsort(-scores, kind="stable")[:DIGEST]]
        phrase_digest = pool[np.argsort(-phrase_match[pool], kind="stable")[:DIGEST]]
        results[given] = (float(relevant[digest].mean()), float(relevant[phrase_digest].mean()))
        first = int(digest[0])
        (liked if relevant[first] else disliked).append(first)
        unvoted[first] = False
    return results


def labels_seen(
    relevant: Any, vectors: Any, phrase_vectors: Any, phrase_match: Any, *, pool: Any, rng: Any
) -> tuple[float, float]:
    """Precision@8 over `pool` of (a ranking that has seen the labels, phrases only): a reference for
    what the embeddings allow, not a method. The pool is split in two halves; each half is ranked by
    `relevance` with `learning.train`'s model trained on the other half's true labels as votes
    (about 600 papers, likes and dislikes; the half is also its background),
    so no paper is scored by a model that saw its own label. The digest is the top 8 of both halves."""
    import numpy as np

    from papertide.digests import learning

    shuffled = rng.permutation(pool)
    halves = (shuffled[: len(pool) // 2], shuffled[len(pool) // 2 :])
    scores = np.empty(len(vectors))
    for scored, seen in (halves, halves[::-1]):
        model = learning.train(
            liked=vectors[seen[relevant[seen]]],
            disliked=vectors[seen[~relevant[seen]]],
            phrases=phrase_vectors,
            background=vectors[seen],
        )
        scores[scored] = learning.relevance(
            model, vectors=vectors[scored], phrase_vectors=phrase_vectors, phrase_scores=phrase_match[scored]
        )
    digest = pool[np.argsort(-scores[pool], kind="stable")[:DIGEST]]
    phrase_digest = pool[np.argsort(-phrase_match[pool], kind="stable")[:DIGEST]]
    return float(relevant[digest].mean()), float(relevant[phrase_digest].mean())


def time_training(corpus: Corpus, *, repeats: int) -> tuple[float, float]:
    """Median and slowest ms of one train(): 10 likes, 5 dislikes, 2 phrases, 2,000 background vectors."""
    import numpy as np

    from papertide.digests import learning

    rng = np.random.default_rng(1)
    vectors = corpus.vectors
    noise = rng.normal(scale=0.02, size=(2000, vectors.shape[1])).astype(np.float32)
    background = vectors[rng.integers(len(vectors), size=2000)] + noise  # more papers than the sample has
    times = []
    for _ in range(repeats):
        picks = rng.choice(len(vectors), size=17, replace=False)
        start = time.perf_counter()
        learning.train(
            liked=vectors[picks[:10]],
            disliked=vectors[picks[10:15]],
            phrases=vectors[picks[15:]],
            background=background,
        )
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def cell(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.3f} / {pair[1]:.3f}"


def mean_over_draws(
    draws: list[list[dict[int, tuple[float, float]]]],
) -> list[dict[int, tuple[float, float]]]:
    """Per reader, each checkpoint's (learned, phrase-only) precision averaged over the draws."""
    return [
        {
            c: (statistics.mean(d[r][c][0] for d in draws), statistics.mean(d[r][c][1] for d in draws))
            for c in draws[0][r]
        }
        for r in range(len(draws[0]))
    ]


def meets_target(result: dict[int, tuple[float, float]], at: int) -> bool:
    """Issue 9's target for one reader: precision@8 of 0.8 or more, and not below phrases only."""
    learned, phrases_only = result[at]
    return learned >= 0.8 and learned >= phrases_only


def print_readers(
    readers: list[Reader],
    draws: list[list[dict[int, tuple[float, float]]]],
    checkpoints: list[int],
) -> None:
    results = mean_over_draws(draws)
    print(f"{'reader (their phrases)':<60}" + "".join(f"{f'{c} votes':>16}" for c in checkpoints))
    for reader, result in zip(readers, results, strict=True):
        name = " + ".join(reader.phrases)
        print(f"{name[:59]:<60}" + "".join(f"{cell(result[c]):>16}" for c in checkpoints))
    means = {
        c: (statistics.mean(r[c][0] for r in results), statistics.mean(r[c][1] for r in results))
        for c in checkpoints
    }
    print(f"{f'mean of {len(readers)} readers':<60}" + "".join(f"{cell(means[c]):>16}" for c in checkpoints))
    at = 10 if 10 in checkpoints else checkpoints[-1]
    learned = [r[at][0] for r in results]
    print(
        f"after {at} votes: worst reader {min(learned):.3f}; {sum(p >= 0.8 for p in learned)}/{len(results)} "
        f"readers at 0.8 or more; learned above phrases only for {sum(r[at][0] > r[at][1] for r in results)}, "
        f"equal for {sum(r[at][0] == r[at][1] for r in results)}, below for {sum(r[at][0] < r[at][1] for r in results)}"
    )
    if len(draws) > 1:  # the counts above are of the means; these are of each draw's own trajectories
        per_draw = [
            (
                sum(meets_target(r, at) for r in d),
                sum(r[at][0] >= 0.8 for r in d),
                sum(r[at][0] < r[at][1] for r in d),
            )
            for d in draws
        ]
        listed = ", ".join(f"{t}/{o}/{b}" for t, o, b in per_draw)
        print(
            f"each of {len(draws)} draws, after {at} votes, readers meeting the target / at 0.8 or more / below "
            f"phrases only: {listed}; mean {statistics.mean(t for t, _, _ in per_draw):.1f} / "
            f"{statistics.mean(o for _, o, _ in per_draw):.1f} / {statistics.mean(b for _, _, b in per_draw):.1f} of {len(results)}"
        )
    else:
        print(
            f"readers meeting the target (0.8 or more and not below phrases only): {sum(meets_target(r, at) for r in results)}/{len(results)}"
        )
    if LABELS_SEEN in results[0]:
        print_labels_seen(readers, draws, results)


def print_labels_seen(
    readers: list[Reader],
    draws: list[list[dict[int, tuple[float, float]]]],
    results: list[dict[int, tuple[float, float]]],
) -> None:
    """How labels_seen ranks the papers left after REFERENCE_AT votes: the target's reach."""
    seen = [r[LABELS_SEEN] for r in results]
    met = statistics.mean(sum(meets_target(r, LABELS_SEEN) for r in d) for d in draws)
    misses = sorted(
        (pair[0], " + ".join(reader.phrases))
        for pair, reader in zip(seen, readers, strict=True)
        if pair[0] < 0.8
    )
    mean = (statistics.mean(p[0] for p in seen), statistics.mean(p[1] for p in seen))
    print(
        f"reference, the same papers left after {REFERENCE_AT} votes ranked with their labels seen "
        f"(labels_seen: cross-fitted halves): mean {cell(mean)}; readers meeting the target "
        f"{met:.1f}/{len(results)} per draw; below 0.8 on average: "
        + ("; ".join(f"{name[:45]} {value:.3f}" for value, name in misses) or "none")
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10 votes, the first 8 readers, a short timing")
    parser.add_argument("--topics", type=int, default=12, help="clusters the sample is split into (12)")
    parser.add_argument("--votes", type=int, default=30, help="votes each reader gives, one a round (30)")
    parser.add_argument(
        "--cluster-seed",
        type=int,
        default=0,
        help="k-means seed for the topics (0); learning.PHRASE_PRIOR was fitted with 1, reported with 0",
    )
    parser.add_argument(
        "--draws", type=int, default=1, help="runs per reader, each with its own background draw (1)"
    )
    parser.add_argument("--no-cache", action="store_true", help=f"re-embed the sample (cache in {CACHE_DIR})")
    args = parser.parse_args()
    os.environ.setdefault("PAPERTIDE_SECRET_KEY", "bench")
    from papertide.digests import learning
    from papertide.embeddings.encoder import get_encoder

    votes = min(args.votes, 10) if args.quick else args.votes
    corpus = load_corpus(use_cache=not args.no_cache)
    labels, names = topic_labels(corpus, args.topics, seed=args.cluster_seed)
    readers = make_readers(labels, names)[: 8 if args.quick else None]
    encoder = get_encoder()
    phrases = [encoder.encode(list(r.phrases)) for r in readers]
    matches = phrase_matches(corpus, readers, phrases)
    checkpoints = [c for c in CHECKPOINTS if c <= votes]
    print(
        f"{len(corpus.texts)} papers, {args.topics} topics (seed {args.cluster_seed}), {len(readers)} readers; "
        f"MIN_VOTES={learning.MIN_VOTES}, PHRASE_PRIOR={learning.PHRASE_PRIOR:g}, {max(1, args.draws)} draw(s); "
        f"precision@{DIGEST} of the digest, learned / phrases only"
    )
    draws = [
        [
            simulate(
                r,
                corpus,
                labels,
                p,
                m,
                votes=votes,
                min_votes=learning.MIN_VOTES,
                seed=i + 1000 * d,
                labelled=votes >= REFERENCE_AT,
            )
            for i, (r, p, m) in enumerate(zip(readers, phrases, matches, strict=True))
        ]
        for d in range(max(1, args.draws))
    ]
    print_readers(readers, draws, checkpoints)
    early = [
        simulate(r, corpus, labels, p, m, votes=5, min_votes=1, seed=i, alone=True)
        for i, (r, p, m) in enumerate(zip(readers, phrases, matches, strict=True))
    ]
    print(
        "the model alone (model.score, no phrase blend) from the first vote on: mean precision@8 "
        "(model / phrases only), readers below phrases only"
    )
    for v in range(1, 6):
        means = (statistics.mean(e[v][0] for e in early), statistics.mean(e[v][1] for e in early))
        print(f"  after {v} votes: {cell(means)}, {sum(e[v][0] < e[v][1] for e in early)} below")
    median, slowest = time_training(corpus, repeats=5 if args.quick else 30)
    print(
        f"train(), 2,000 background vectors of dim {corpus.vectors.shape[1]}, one BLAS thread: median {median:.1f} ms, slowest {slowest:.1f} ms"
    )


if __name__ == "__main__":
    # "One CPU core": numpy's BLAS reads this when it loads, which happens below (papertide imports it).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
