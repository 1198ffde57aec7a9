"""papertide's encoder path gives what plain sentence-transformers encode gives, in the caller's order."""

from __future__ import annotations

import numpy as np
import pytest

from papertide.embeddings.pipeline import PipelineEncoder


@pytest.fixture(scope="module")
def plain_and_pipeline(real_encoder):  # type: ignore[no-untyped-def]
    return real_encoder.model, real_encoder.pipeline


def test_outputs_match_plain_encode_in_order(plain_and_pipeline) -> None:  # type: ignore[no-untyped-def]
    model, pipeline = plain_and_pipeline
    long_text = "Transformers for speech. " * 120  # far past 128 tokens: truncation must happen at 256
    texts = ["short", long_text, "Protein folding with diffusion models.", "", "A second short one"] * 7

    plain = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    ours = pipeline.encode(texts)

    assert ours.shape == (35, 384)
    assert float(np.min(np.sum(plain * ours, axis=1))) >= 0.999
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    assert float(ours[0] @ ours[5]) > 0.9999, "the same text, wherever it sits, gets the same vector"


def test_small_batches_and_worker_processes_agree(plain_and_pipeline) -> None:  # type: ignore[no-untyped-def]
    model, pipeline = plain_and_pipeline
    texts = [f"paper {i}: " + "attention " * (i * 7 % 300) for i in range(40)]
    in_processes = PipelineEncoder(model, tokens_per_batch=512, chunk_size=8, workers=2, dtype=pipeline.dtype)
    try:
        spread = in_processes.encode(texts)
    finally:
        in_processes.close()

    assert float(np.min(np.sum(spread * pipeline.encode(texts), axis=1))) >= 0.9999


def test_no_texts_no_vectors(plain_and_pipeline) -> None:  # type: ignore[no-untyped-def]
    _, pipeline = plain_and_pipeline
    assert pipeline.encode([]).shape == (0, 384)


def test_other_architectures_are_refused_clearly(plain_and_pipeline) -> None:  # type: ignore[no-untyped-def]
    model, _ = plain_and_pipeline
    from sentence_transformers import SentenceTransformer

    transformer_only = SentenceTransformer(modules=[model[0]], device="cpu")
    with pytest.raises(ValueError, match="handles Transformer \\+ mean Pooling models"):
        PipelineEncoder(transformer_only)
