"""One search query's embedding on a CPU, the ways a web process could run it, in the same run.

    .venv/bin/python bench/query_embedding.py            # 200 queries a path, alone and beside a busy process
    .venv/bin/python bench/query_embedding.py --quick    # 40 queries

The queries are the bundled sample's titles and 2-4 word phrases from them. Each path embeds them
one at a time (as search does) and prints p50 / p95 ms, first on an otherwise idle machine, then
beside one other process that keeps a core busy (what a web process has next to the worker):
- torch as the worker runs it, one thread per core (the baseline);
- torch on one thread (`embeddings.encoder.embed_queries_on_one_thread`);
- ONNX Runtime on one thread, the export papertide makes (`embeddings.query_encoder.for_queries`);
- torch with int8 dynamic quantisation of its Linear layers (tried; not used).
Each path's lowest cosine to the baseline's vector of the same query says whether it is the same
search: ONNX must stay at 0.9999 or more.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "src/papertide/data/hf_daily_papers.json.gz"


def queries(n: int) -> list[str]:
    days = json.loads(gzip.decompress(SAMPLE.read_bytes()))
    titles = [item["paper"]["title"] for items in days.values() for item in items]
    rng = random.Random(0)
    out = []
    while len(out) < n:
        words = rng.choice(titles).split()
        if len(out) % 2 == 0:
            out.append(" ".join(words))
        else:
            start = rng.randrange(max(1, len(words) - 2))
            out.append(" ".join(words[start : start + rng.randint(2, 4)]))
    return out


def timed(encode: Callable[[list[str]], Any], texts: list[str]) -> tuple[float, float]:
    import numpy as np

    for text in texts[:5]:
        encode([text])
    ms = []
    for text in texts:
        start = time.perf_counter()
        encode([text])
        ms.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="40 queries")
    args = parser.parse_args()
    count = 40 if args.quick else args.queries

    import copy
    import os

    import numpy as np
    import torch

    from papertide.config import DEFAULT_EMBEDDING_MODEL
    from papertide.embeddings import query_encoder
    from papertide.embeddings.encoder import SentenceTransformerEncoder

    texts = queries(count)
    base = SentenceTransformerEncoder(DEFAULT_EMBEDDING_MODEL, device="cpu")
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as data_dir:
        onnx = query_encoder.for_queries(base, data_dir=Path(data_dir))
        assert isinstance(onnx, query_encoder.OnnxQueryEncoder), "the ONNX export failed"
        quantised = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(base.pipeline.transformer), {torch.nn.Linear}, dtype=torch.qint8
        )

        def int8(batch: list[str]) -> Any:
            ids = torch.tensor([base.pipeline.tokenizer.encode(batch[0]).ids])
            with torch.inference_mode():
                hidden = quantised(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            return torch.nn.functional.normalize(hidden.mean(1), dim=1).numpy()

        paths: list[tuple[str, int, Callable[[list[str]], Any]]] = [
            (f"torch, {cores} threads (baseline)", cores, base.encode),
            ("torch, 1 thread (web processes until ONNX)", 1, base.encode),
            ("ONNX Runtime, 1 thread (web processes now)", 1, onnx.encode),
            ("torch int8 dynamic quantisation, 1 thread (not used)", 1, int8),
        ]
        reference = base.encode(texts)
        print(f"{count} queries, one at a time; {cores} cores; torch {torch.__version__}\n")
        print(
            "| path | alone p50 / p95 ms | beside a busy process p50 / p95 ms | lowest cosine to the baseline |"
        )
        print("|---|---:|---:|---:|")
        for label, threads, encode in paths:
            torch.set_num_threads(threads)
            alone = timed(encode, texts)
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                time.sleep(0.5)
                busy = timed(encode, texts)
            finally:
                hog.kill()
                hog.wait()
            vectors = np.concatenate([encode([text]) for text in texts])
            cosine = float(np.min(np.sum(vectors * reference, axis=1)))
            print(
                f"| {label} | {alone[0]:.1f} / {alone[1]:.1f} | {busy[0]:.1f} / {busy[1]:.1f} | {cosine:.5f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
