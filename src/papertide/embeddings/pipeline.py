"""papertide's encoder path: tokenize once, in parallel, bucketed by length; run the model bare.

`SentenceTransformer.encode` spends most of a GPU's time on the CPU: it tokenizes each batch on
the critical path and pads every batch to its longest text. Here tokenization runs ahead of the
model — in worker processes on a GPU machine (many cores; each also uses the tokenizer's own Rust
threads), in one thread on a small CPU box — and yields length-bucketed batches padded by
vectorised numpy (tokenize.py). The model side only copies ids, runs the transformer, and
mean-pools + normalises on the device. Outputs match `encode(..., normalize_embeddings=True)`.

This module imports no papertide settings, so bench/embed.py can run it anywhere torch runs.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from torch.nn import functional

from papertide.embeddings.tokenize import (
    TokenBatch,
    build_tokenizer,
    init_worker,
    tokenize_chunk,
    tokenize_in_worker,
)

_DONE = object()


class PipelineEncoder:
    """Encode texts with a sentence-transformers model (Transformer -> mean Pooling -> Normalize)."""

    def __init__(
        self,
        model: Any,
        *,
        tokens_per_batch: int = 16_384,
        chunk_size: int = 4096,
        workers: int = 0,
        prefetch: int = 4,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.model = model
        self.device = model.device
        self.transformer = model[0].auto_model
        self.max_length = int(model.max_seq_length)
        self.tokens_per_batch = tokens_per_batch
        self.chunk_size = chunk_size
        self.workers = workers
        self.prefetch = prefetch
        self.dtype = dtype
        self.pad_id = int(model.tokenizer.pad_token_id or 0)
        # The bundled tokenizer.json pads and truncates at 128, which sentence-transformers
        # overrides per call; our own copy is set to the model's max_seq_length instead.
        self.tokenizer_json = model.tokenizer.backend_tokenizer.to_str()
        self.tokenizer = build_tokenizer(self.tokenizer_json, self.max_length)
        self._pool: ProcessPoolExecutor | None = None
        self._check_modules()

    def _check_modules(self) -> None:
        names = [type(module).__name__ for module in self.model]
        pooling = self.model[1] if len(names) > 1 else None
        mean = (
            getattr(pooling, "pooling_mode_mean_tokens", False)
            or getattr(pooling, "pooling_mode", "") == "mean"
        )
        if names[:2] != ["Transformer", "Pooling"] or not mean:
            raise ValueError(f"the pipeline handles Transformer + mean Pooling models, not {names}")

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray[Any, Any]:
        """Unit-length float32 embeddings, in the order of `texts`."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        outputs: list[torch.Tensor] = []
        orders: list[np.ndarray[Any, Any]] = []
        with torch.inference_mode():
            for batch in self._batches(texts):
                outputs.append(self._forward(batch))
                orders.append(batch.order)
        vectors = torch.cat(outputs).cpu().numpy()
        result = np.empty_like(vectors)
        result[np.concatenate(orders)] = vectors
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _forward(self, batch: TokenBatch) -> torch.Tensor:
        # Plain (pageable) copies: a batch of ids is ~0.5 MB, and allocating pinned memory per batch
        # cost more than the copy it speeds up.
        ids = torch.from_numpy(batch.input_ids).to(
            self.device
        )  # int32 ids: the embedding takes them as they are
        lengths = torch.from_numpy(batch.lengths).to(self.device)
        mask = (torch.arange(ids.shape[1], device=self.device)[None, :] < lengths[:, None]).long()
        autocast = torch.autocast(self.device.type, dtype=self.dtype) if self.dtype else nullcontext()
        with autocast:
            hidden = self.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
        # Pool in float32: a sum over 256 fp16 token vectors loses digits the cosine check would see.
        weights = mask.unsqueeze(-1).float()
        pooled = (hidden.float() * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return functional.normalize(pooled, p=2, dim=1)

    def _jobs(self, texts: Sequence[str]) -> Iterator[tuple[Sequence[str], int, int, int]]:
        for start in range(0, len(texts), self.chunk_size):
            yield texts[start : start + self.chunk_size], start, self.tokens_per_batch, self.pad_id

    def _batches(self, texts: Sequence[str]) -> Iterator[TokenBatch]:
        if self.workers > 0:
            yield from self._from_processes(texts)
        else:
            yield from self._from_thread(texts)

    def _from_processes(self, texts: Sequence[str]) -> Iterator[TokenBatch]:
        """Chunks tokenized by worker processes, in order, while the model runs on earlier ones."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=init_worker,
                initargs=(
                    self.tokenizer_json,
                    self.max_length,
                    max(1, (os.cpu_count() or 2) // self.workers),
                ),
            )
        for batches in self._pool.map(tokenize_in_worker, self._jobs(texts)):
            yield from batches

    def _from_thread(self, texts: Sequence[str]) -> Iterator[TokenBatch]:
        """Batches from one producer thread, at most `prefetch` chunks ahead of the model."""
        ready: queue.Queue[Any] = queue.Queue(maxsize=self.prefetch)
        failure: list[BaseException] = []

        def produce() -> None:
            try:
                for chunk, start, tokens, pad_id in self._jobs(texts):
                    ready.put(
                        tokenize_chunk(
                            self.tokenizer, chunk, start=start, tokens_per_batch=tokens, pad_id=pad_id
                        )
                    )
            except BaseException as error:  # re-raised in the consumer
                failure.append(error)
            finally:
                ready.put(_DONE)

        thread = threading.Thread(target=produce, name="tokenize", daemon=True)
        thread.start()
        while (item := ready.get()) is not _DONE:
            yield from item
        thread.join()
        if failure:
            raise failure[0]


def cpu_autocast_dtype() -> torch.dtype | None:
    """bf16 where the CPU computes it natively (AMX, AVX512-BF16): about twice fp32, cosine > 0.9999."""
    try:
        supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        supported = False
    return torch.bfloat16 if supported else None
