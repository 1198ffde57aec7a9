"""Queries embedded by ONNX Runtime: the torch model's vectors, an export made once, torch as the fallback."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from papertide.embeddings import query_encoder
from papertide.embeddings.encoder import SentenceTransformerEncoder
from tests.factories import FakeEncoder

QUERIES = [
    "world models",
    "how can large language models reason step by step",
    "Set-Based Transformer for Atmospheric Compensation: Robust and 3D-Aware",
    "Müller\u2013Schmidt équations de Navier\u2013Stokes",
    "a",
    " ".join(["protein folding with equivariant diffusion"] * 80),  # past the model's 256 tokens
]


@pytest.fixture(scope="module")
def exported(real_encoder: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    data_dir = tmp_path_factory.mktemp("data")
    return query_encoder.for_queries(real_encoder, data_dir=data_dir), data_dir


def test_onnx_query_vectors_are_the_torch_models_vectors(
    real_encoder: Any, exported: tuple[Any, Path]
) -> None:
    encoder, _ = exported
    assert isinstance(encoder, query_encoder.OnnxQueryEncoder)

    ours = encoder.encode(QUERIES)
    torch_vectors = real_encoder.encode(QUERIES)

    assert ours.shape == torch_vectors.shape == (len(QUERIES), 384)
    assert ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(ours * torch_vectors, axis=1)) > 0.9999
    assert encoder.encode([]).shape == (0, 384)


def test_the_export_is_made_once_and_reused_by_the_next_process(
    real_encoder: Any, exported: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, data_dir = exported
    files = list((data_dir / query_encoder.DIRECTORY).iterdir())
    assert [f.suffix for f in files] == [".onnx"]  # no partial file left behind

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    import torch

    monkeypatch.setattr(torch.onnx, "export", no_export)
    again = query_encoder.for_queries(real_encoder, data_dir=data_dir)

    assert isinstance(again, query_encoder.OnnxQueryEncoder)
    assert np.sum(again.encode(["world models"])[0] * real_encoder.encode(["world models"])[0]) > 0.9999


def test_without_onnx_runtime_queries_go_to_torch(
    real_encoder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("exporter unavailable")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with caplog.at_level(logging.WARNING):
        encoder = query_encoder.for_queries(real_encoder, data_dir=tmp_path)

    assert encoder is real_encoder
    assert "queries are embedded by torch" in caplog.text
    assert not list((tmp_path / query_encoder.DIRECTORY).glob("*"))  # the partial file is gone


def test_encoders_it_cannot_mirror_are_used_as_they_are(tmp_path: Path) -> None:
    fake = FakeEncoder()

    assert query_encoder.for_queries(fake, data_dir=tmp_path) is fake


def test_a_damaged_export_is_made_again(real_encoder: SentenceTransformerEncoder, tmp_path: Path) -> None:
    folder = tmp_path / query_encoder.DIRECTORY
    folder.mkdir()
    damaged = folder / f"{query_encoder._graph_key(real_encoder)}.onnx"
    damaged.write_bytes(b"not a model")

    encoder = query_encoder.for_queries(real_encoder, data_dir=tmp_path)

    assert isinstance(encoder, query_encoder.OnnxQueryEncoder)
    assert damaged.stat().st_size > 1_000_000
    assert np.sum(encoder.encode(["world models"])[0] * real_encoder.encode(["world models"])[0]) > 0.9999
