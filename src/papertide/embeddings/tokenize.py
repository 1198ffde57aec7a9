"""Tokenization for the encoder pipeline, light enough to run in worker processes (numpy + tokenizers).

Each call tokenizes one chunk with the fast tokenizer's parallel `encode_batch`, sorts it by token
count, and cuts it into batches of about `tokens_per_batch` tokens, each padded only to its own
longest row by vectorised numpy: the only per-row Python left is reading each encoding's ids.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

_tokenizer: Any = None  # one per worker process, built by `init_worker`


@dataclass
class TokenBatch:
    order: np.ndarray[Any, Any]  # positions of these rows in the caller's list
    input_ids: np.ndarray[Any, Any]  # [rows, width] int32, padded with pad_id
    lengths: np.ndarray[Any, Any]  # [rows] int32: the attention mask is `column < length`


def build_tokenizer(tokenizer_json: str, max_length: int) -> Any:
    """A fast tokenizer without the fixed padding/truncation the bundled tokenizer.json carries."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json)
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


def init_worker(tokenizer_json: str, max_length: int, threads: int) -> None:
    """Build this process's tokenizer; its Rust thread pool gets a share of the cores, not all of them."""
    global _tokenizer
    os.environ["RAYON_NUM_THREADS"] = str(threads)  # read when tokenizers starts its pool
    _tokenizer = build_tokenizer(tokenizer_json, max_length)


def tokenize_in_worker(job: tuple[Sequence[str], int, int, int]) -> list[TokenBatch]:
    texts, start, tokens_per_batch, pad_id = job
    return tokenize_chunk(_tokenizer, texts, start=start, tokens_per_batch=tokens_per_batch, pad_id=pad_id)


def tokenize_chunk(
    tokenizer: Any, texts: Sequence[str], *, start: int, tokens_per_batch: int, pad_id: int
) -> list[TokenBatch]:
    """Length-bucketed, padded batches for texts[start:start+len(texts)] of the caller's list."""
    ids = [encoding.ids for encoding in tokenizer.encode_batch(list(texts))]
    lengths = np.fromiter(map(len, ids), dtype=np.int32, count=len(ids))
    flat = np.fromiter(chain.from_iterable(ids), dtype=np.int32, count=int(lengths.sum()))
    offsets = np.concatenate(([0], np.cumsum(lengths, dtype=np.int64)))
    by_length = np.argsort(-lengths, kind="stable")
    batches = []
    first = 0
    while first < len(by_length):
        width = max(int(lengths[by_length[first]]), 1)
        rows = by_length[first : first + max(1, tokens_per_batch // width)]
        batches.append(_pad(rows, lengths, flat, offsets, width, start, pad_id))
        first += len(rows)
    return batches


def _pad(
    rows: np.ndarray[Any, Any],
    lengths: np.ndarray[Any, Any],
    flat: np.ndarray[Any, Any],
    offsets: np.ndarray[Any, Any],
    width: int,
    start: int,
    pad_id: int,
) -> TokenBatch:
    row_lengths = lengths[rows].astype(np.int64)
    row_index = np.repeat(np.arange(len(rows)), row_lengths)
    column = np.arange(int(row_lengths.sum())) - np.repeat(np.cumsum(row_lengths) - row_lengths, row_lengths)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int32)
    input_ids[row_index, column] = flat[np.repeat(offsets[rows], row_lengths) + column]
    return TokenBatch(order=rows + start, input_ids=input_ids, lengths=lengths[rows])
