"""A profile's taste, learned from its votes: logistic regression on paper embeddings (pure, numpy).

Scholar Inbox's recipe (arXiv:2504.08385, section 3): liked papers and the profile's own phrases
are positives, disliked papers negatives, and a few thousand random papers the reader has not seen
weak negatives, so the model learns what sets the liked papers apart from the corpus at large
rather than from the handful the reader happened to dislike. `bench/learning.py` measures it and
chose the constants below (docs/benchmarks.md#learning-from-votes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Vectors = np.ndarray[Any, Any]

# The constants below were chosen on bench/learning.py's simulated readers; the runs are in
# docs/benchmarks.md#learning-from-votes. Switched on from the first vote (4 runs of 18 readers),
# the model ranked worse than the phrases alone in 16 of 72 runs after one vote, in 4 to 8 after
# two to five votes: it takes over at the second.
MIN_VOTES: int = 2
# The background papers together weigh as much as the positives (likes and phrases), and never
# less than 4 likes: so 2,000 or 5,000 of them give the same model, they never drown a handful of
# votes, and the "ordinary paper" side has weight even before the first like.
BACKGROUND_RATIO = 1.0
BACKGROUND_FLOOR = 4.0
# "Less like this" is a deliberate click against the paper the ranking put first; counting it as
# three likes lifted precision@8 after 10 votes from 0.904 to 0.929 (1, 3 tried).
DISLIKE_WEIGHT = 3.0
PHRASE_WEIGHT = 1.0  # a phrase counts as one liked paper (1, 2, 3 tried; more did not help)
# relevance() blends the model with what the reader typed, the phrases keeping a share of
# PHRASE_PRIOR / (PHRASE_PRIOR + votes): 5/7 after two votes, 1/3 after ten, 1/7 after thirty. Fitted
# on readers of another clustering (bench/learning.py --cluster-seed 1, 12 and 25 topics; 1, 2, 3, 5,
# 10, 30 tried) than the one docs/benchmarks.md reports, so the printed numbers are not tuned on themselves.
PHRASE_PRIOR = 5.0
L2 = 0.3  # the penalty on the weights (0.1, 0.3, 1, 3 tried); the bias is left (nearly) free
_BIAS_L2 = 1e-3  # keeps the bias finite when every example is on one side; ranking ignores it
_MAX_STEPS = 25
_TOLERANCE = 1e-6
_CG_TOLERANCE = 1e-3  # an inexact Newton step is enough: the outer steps correct it
_JSON_VERSION = 1


@dataclass(frozen=True)
class ProfileModel:
    """The learned ranking of one interest profile."""

    weights: Vectors  # (dim,) float32
    bias: float
    votes: int  # how many votes it was trained on
    center: Vectors | None = None  # (dim,) the corpus mean taken off every vector before scoring
    # The embedding model whose space the weights live in: a model of another one's space (after
    # EMBEDDING_MODEL changes, even at the same dimension) must be trained again, never used.
    embedding_model: str | None = None

    @property
    def dim(self) -> int:
        return int(self.weights.shape[0])

    @property
    def ready(self) -> bool:
        """Whether the profile has voted enough for this model to rank its papers (MIN_VOTES)."""
        return self.votes >= MIN_VOTES

    def score(self, vectors: Vectors) -> Vectors:
        """(n,) probabilities in (0, 1) that the reader likes each paper; higher ranks first."""
        matrix = _features(_as_rows(vectors, dim=self.dim, name="vectors"), self.center)  # as train saw them
        return _sigmoid(matrix @ self.weights.astype(np.float64) + self.bias)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict; from_json gives back a model that scores identically."""
        return {
            "version": _JSON_VERSION,
            "weights": [float(w) for w in self.weights],  # float32 -> float64 is exact, so is the way back
            "bias": float(self.bias),
            "votes": int(self.votes),
            "center": None if self.center is None else [float(c) for c in self.center],
            "embedding_model": self.embedding_model,
        }

    @classmethod
    def from_json(cls, data: object) -> ProfileModel:
        """The model to_json stored; ValueError when the data is not one, whatever it is."""
        if not isinstance(data, Mapping):
            raise ValueError(f"profile model: expected an object, got {type(data).__name__}")
        try:
            return cls._from_mapping(data)
        except OverflowError:  # an integer too large for a float, in any field
            raise ValueError("profile model: a number is too large") from None

    @classmethod
    def _from_mapping(cls, data: Mapping[str, object]) -> ProfileModel:
        if data.get("version") != _JSON_VERSION:
            raise ValueError(
                f"profile model: unknown version {data.get('version')!r}, expected {_JSON_VERSION}"
            )
        raw_weights, bias, votes = data.get("weights"), data.get("bias"), data.get("votes")
        if not isinstance(bias, int | float) or isinstance(bias, bool) or not math.isfinite(bias):
            raise ValueError(f"profile model: 'bias' must be a finite number, not {bias!r}")
        if not isinstance(votes, int) or isinstance(votes, bool) or votes < 0:
            raise ValueError(f"profile model: 'votes' must be a count, not {votes!r}")
        weights = _vector_from_json(raw_weights, "weights")
        raw_center = data.get("center")
        center = None if raw_center is None else _vector_from_json(raw_center, "center")
        if center is not None and center.shape != weights.shape:
            raise ValueError(f"profile model: 'center' has {len(center)} numbers, 'weights' {len(weights)}")
        embedding_model = data.get("embedding_model")  # absent before models named it: unknown
        if embedding_model is not None and not isinstance(embedding_model, str):
            raise ValueError(f"profile model: 'embedding_model' must be a name, not {embedding_model!r}")
        return cls(
            weights=weights, bias=float(bias), votes=votes, center=center, embedding_model=embedding_model
        )


def relevance(
    model: ProfileModel | None,
    *,
    vectors: Vectors,
    phrase_vectors: Vectors | None,
    phrase_scores: Vectors | None,
) -> Vectors:
    """(n,) scores of `vectors` for one profile, higher is closer: the order its digest ranks them in.

    Until the model is `ready` (or without one) it is the phrases alone, `phrase_scores`: how well
    each paper matches what the reader typed as the reason line judges it (matching.PhraseMatcher's
    calibrated score, best over the phrases). From then on, the model's log-odds and the papers'
    best cosine to `phrase_vectors`, each as a z-score over these candidates, weighted
    PHRASE_PRIOR / (PHRASE_PRIOR + votes) for the phrases: a handful of votes is a noisy sample of
    a reader's taste, and the model alone ranked some readers below what they typed
    (docs/benchmarks.md#learning-from-votes; the calibrated score in that blend did no better
    there). Without phrases the model ranks alone; with neither, every paper scores 0, so a stable
    sort keeps the candidates' order.
    """
    count = len(np.asarray(vectors))
    if model is None or not model.ready:
        return np.zeros(count) if phrase_scores is None else _checked_scores(phrase_scores, count=count)
    rows = _as_rows(vectors, dim=model.dim, name="vectors")
    learned = _features(rows, model.center) @ model.weights.astype(np.float64) + model.bias
    if phrase_vectors is None or np.asarray(phrase_vectors).size == 0:
        return learned
    share = PHRASE_PRIOR / (PHRASE_PRIOR + model.votes)
    return (1.0 - share) * _zscore(learned) + share * _zscore(_phrase_similarity(rows, phrase_vectors))


def _checked_scores(scores: Vectors, *, count: int) -> Vectors:
    """`scores` as (count,) finite floats; ValueError saying what does not fit."""
    flat = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(flat) != count:
        raise ValueError(f"relevance: {count} vectors but {len(flat)} phrase scores")
    if not np.all(np.isfinite(flat)):
        raise ValueError("relevance: phrase scores must be finite (no NaN or infinity)")
    return flat


def _phrase_similarity(rows: Vectors, phrase_vectors: Vectors) -> Vectors:
    """Each row's best cosine to any phrase, as compose.py's phrase-only ranking has it."""
    phrases = _features(_as_rows(phrase_vectors, dim=rows.shape[1], name="phrase_vectors"), None)
    return np.asarray((_features(rows, None) @ phrases.T).max(axis=1))


def _zscore(scores: Vectors) -> Vectors:
    """Scores on a common scale across the candidates; all-equal scores become zeros."""
    if not len(scores):
        return scores
    spread = float(scores.std())
    return np.asarray((scores - scores.mean()) / (spread if spread > 0 else 1.0))


def _vector_from_json(raw: object, name: str) -> Vectors:
    """A non-empty flat list of finite numbers as float32; ValueError naming the field otherwise."""
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in raw)
    ):
        raise ValueError(f"profile model: {name!r} must be a non-empty list of numbers")
    vector = np.asarray(raw, dtype=np.float32)
    if not np.all(np.isfinite(vector)):
        raise ValueError(f"profile model: {name!r} must hold finite numbers only")
    return vector


def train(*, liked: Vectors, disliked: Vectors, phrases: Vectors, background: Vectors) -> ProfileModel:
    """Fit a profile's model: liked papers and phrases are positives, disliked papers negatives,
    `background` (random papers the reader has not seen) weak negatives. Each argument is (n, dim)
    and may be empty; rows need not be unit length."""
    dim = _common_dim(liked=liked, disliked=disliked, phrases=phrases, background=background)
    named = {"liked": liked, "phrases": phrases, "disliked": disliked, "background": background}
    parts = {name: _as_rows(array, dim=dim, name=name) for name, array in named.items()}
    counts = {name: len(part) for name, part in parts.items()}
    design, center = _design(list(parts.values()), dim=dim, background=counts["background"])
    labels = np.zeros(len(design))
    labels[: counts["liked"] + counts["phrases"]] = 1.0
    weights, bias = fit_logistic(design, labels, _sample_weights(counts), l2=L2)
    return ProfileModel(
        weights=weights.astype(np.float32),
        bias=bias,
        votes=counts["liked"] + counts["disliked"],
        center=center,
    )


def _design(parts: list[Vectors], *, dim: int, background: int) -> tuple[Vectors, Vectors | None]:
    """The rows stacked as the model sees them, plus a column of ones; and the center taken off."""
    design = np.empty((sum(len(part) for part in parts), dim + 1), dtype=np.float64)
    offsets = np.cumsum([0, *(len(part) for part in parts)])
    for start, part in zip(offsets, parts, strict=False):
        design[start : start + len(part), :dim] = part
    rows = design[:, :dim]
    _normalise(rows)
    # Centre on the background's mean and re-normalise: every embedding shares a large "this is an
    # ML paper" component, and taking it off lets the model weigh what sets papers apart
    # (precision@8 after 3 votes 0.938 against 0.896 without; docs/benchmarks.md).
    center = rows[len(rows) - background :].mean(axis=0).astype(np.float32) if background else None
    if center is not None:
        rows -= center  # the float32 center the model stores, so scoring sees the same features
        _normalise(rows)
    design[:, dim] = 1.0
    return design, center


def _sample_weights(counts: Mapping[str, int]) -> Vectors:
    """How much each row counts, in the order train() stacks them: liked, phrases, disliked, background."""
    positive_total = counts["liked"] + PHRASE_WEIGHT * counts["phrases"]
    background_total = max(BACKGROUND_FLOOR, BACKGROUND_RATIO * positive_total)
    return np.concatenate(
        [
            np.ones(counts["liked"]),
            np.full(counts["phrases"], PHRASE_WEIGHT),
            np.full(counts["disliked"], DISLIKE_WEIGHT),
            np.full(counts["background"], background_total / max(counts["background"], 1)),
        ]
    )


def fit_logistic(
    design: Vectors, labels: Vectors, sample_weights: Vectors, *, l2: float
) -> tuple[Vectors, float]:
    """Weighted L2-regularised logistic regression on (n, dim + 1) rows whose last column is 1.

    Minimises sum_i c_i * logloss(y_i, w.x_i + b) + l2/2 * |w|^2 and returns (w, b), by truncated
    Newton: each step is solved by conjugate gradients on Hessian-vector products (two passes over
    the rows) instead of forming the (dim + 1)^2 Hessian, which alone takes ~20 ms for 2,000 rows of
    dim 384. The objective is strictly convex, so a few damped steps from w = 0 reach its optimum.
    """
    dim = design.shape[1] - 1
    penalty = np.full(dim + 1, l2, dtype=np.float64)
    penalty[dim] = _BIAS_L2
    theta = np.zeros(dim + 1, dtype=np.float64)
    total = float(sample_weights.sum())
    if total > 0:  # start the bias at the weighted base rate: the first step then only shapes w
        rate = min(max(float(sample_weights @ labels) / total, 1e-6), 1 - 1e-6)
        theta[dim] = math.log(rate / (1 - rate))
    squares = design * design  # for the CG preconditioner, the Hessian's diagonal
    loss = _objective(design, labels, sample_weights, penalty, theta)
    for _ in range(_MAX_STEPS):
        probability = _sigmoid(design @ theta)
        gradient = design.T @ (sample_weights * (probability - labels)) + penalty * theta
        curvature = sample_weights * probability * (1 - probability)
        step = _newton_step(design, curvature, penalty, gradient, diagonal=curvature @ squares + penalty)
        theta, new_loss = _line_search(design, labels, sample_weights, penalty, theta, step, loss)
        if loss - new_loss <= _TOLERANCE * max(1.0, abs(loss)):
            break
        loss = new_loss
    return theta[:dim], float(theta[dim])


def _newton_step(
    design: Vectors, curvature: Vectors, penalty: Vectors, gradient: Vectors, *, diagonal: Vectors
) -> Vectors:
    """Solve (X^T diag(curvature) X + diag(penalty)) step = gradient by CG, preconditioned by its diagonal."""
    step = np.zeros_like(gradient)
    residual = gradient.copy()
    preconditioned = residual / diagonal
    direction = preconditioned.copy()
    rz = float(residual @ preconditioned)
    goal = _CG_TOLERANCE * float(np.linalg.norm(gradient))
    if goal == 0.0:  # already at the optimum
        return step
    for _ in range(len(gradient)):
        product = design.T @ (curvature * (design @ direction)) + penalty * direction
        alpha = rz / float(direction @ product)
        step += alpha * direction
        residual -= alpha * product
        if float(np.linalg.norm(residual)) <= goal:
            break
        preconditioned = residual / diagonal
        rz_next = float(residual @ preconditioned)
        direction = preconditioned + (rz_next / rz) * direction
        rz = rz_next
    return step


def nearest_liked(vector: Vectors, *, liked: Vectors, liked_ids: Sequence[str]) -> tuple[str, float] | None:
    """The liked paper closest to `vector` (cosine of unit vectors) and that cosine; None with no likes."""
    query = np.asarray(vector, dtype=np.float64).reshape(-1)
    matrix = _features(_as_rows(liked, dim=query.shape[0], name="liked"), None)
    if len(matrix) != len(liked_ids):
        raise ValueError(f"nearest_liked: {len(matrix)} liked vectors but {len(liked_ids)} ids")
    if not len(matrix):
        return None
    norm = float(np.linalg.norm(query))
    cosines = matrix @ (query / norm if norm > 0 else query)
    best = int(np.argmax(cosines))
    return liked_ids[best], float(cosines[best])


def _line_search(
    design: Vectors,
    labels: Vectors,
    sample_weights: Vectors,
    penalty: Vectors,
    theta: Vectors,
    step: Vectors,
    loss: float,
) -> tuple[Vectors, float]:
    """Halve the Newton step until the objective falls (a full step nearly always does)."""
    scale = 1.0
    for _ in range(30):
        candidate = theta - scale * step
        candidate_loss = _objective(design, labels, sample_weights, penalty, candidate)
        if candidate_loss <= loss:
            return candidate, candidate_loss
        scale /= 2
    return theta, loss


def _objective(
    design: Vectors, labels: Vectors, sample_weights: Vectors, penalty: Vectors, theta: Vectors
) -> float:
    margin = design @ theta
    # log(1 + e^m) - y*m, written so that it neither overflows nor loses precision for large |m|
    log_loss = np.logaddexp(0.0, margin) - labels * margin
    return float(sample_weights @ log_loss + 0.5 * (penalty * theta) @ theta)


def _sigmoid(margin: Vectors) -> Vectors:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * margin)))  # exact logistic, no overflow warnings


def _common_dim(**arrays: Vectors) -> int:
    """The one embedding dimension every non-empty argument shares; ValueError naming the mismatch."""
    dims = {name: _width(array, name) for name, array in arrays.items()}
    known = {name: dim for name, dim in dims.items() if dim is not None}
    if len(set(known.values())) > 1:
        listed = ", ".join(f"{name} has dim {dim}" for name, dim in known.items())
        raise ValueError(f"train: every vector must have the same dimension, but {listed}")
    if not known:
        raise ValueError("train: no vectors at all, so the embedding dimension is unknown")
    return next(iter(known.values()))


def _width(array: Vectors, name: str) -> int | None:
    matrix = np.asarray(array)
    if matrix.ndim != 2:
        if matrix.size == 0:
            return None
        raise ValueError(f"{name}: expected a 2-D array (n, dim), got shape {matrix.shape}")
    return int(matrix.shape[1]) if matrix.shape[1] else None


def _as_rows(array: Vectors, *, dim: int, name: str) -> Vectors:
    """`array` as (n, dim) floats (not copied), an empty array of any shape as (0, dim); else ValueError."""
    matrix = np.asarray(array)
    if matrix.size == 0:
        return np.zeros((0, dim), dtype=np.float64)
    if not np.issubdtype(matrix.dtype, np.number) or np.iscomplexobj(matrix):
        raise ValueError(f"{name}: expected real numbers, got {matrix.dtype}")
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise ValueError(f"{name}: expected vectors of dim {dim}, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name}: vectors must be finite (no NaN or infinity)")
    return matrix


def _features(matrix: Vectors, center: Vectors | None) -> Vectors:
    """The rows as train() fits them: unit length, then (with a center) centred and unit length again."""
    features = np.array(matrix, dtype=np.float64)
    _normalise(features)
    if center is not None:
        features -= center.astype(np.float64)
        _normalise(features)
    return features


def _normalise(matrix: Vectors) -> None:
    """Scale each row to unit length in place; a zero row stays zero."""
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    if np.allclose(norms, 1.0, rtol=0, atol=1e-6):  # the encoder's vectors already are: skip a pass
        return
    matrix /= np.where(norms > 0, norms, 1.0)[:, None]
