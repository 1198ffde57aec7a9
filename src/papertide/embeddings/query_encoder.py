"""Search queries embedded by ONNX Runtime: the same weights as the torch model, half the time.

A web process embeds one short query at a time on one CPU thread. There torch spends 11 / 14 ms
(p50 / p95) on MiniLM; ONNX Runtime runs the same graph in 5.5 / 8.5 ms, its vectors within a
cosine of 0.9999 of torch's (bench/query_embedding.py). Papers are still embedded by
torch (the worker's batches, a GPU): only queries take this path, and only on a CPU.

The graph is exported from the loaded torch model once per model, torch version and weights, into
DATA_DIR/query-models/, written under a temporary name and renamed into place, so web processes
starting together never read a half-written file. When ONNX Runtime or the export is not there,
queries go to torch as before: slower, never wrong.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from papertide.embeddings.encoder import Encoder, SentenceTransformerEncoder

log = logging.getLogger(__name__)

DIRECTORY = "query-models"


class OnnxQueryEncoder:
    """Encoder for queries: the torch model's tokenizer and pooling, its transformer in ONNX Runtime."""

    def __init__(self, base: SentenceTransformerEncoder, graph: Path) -> None:
        import onnxruntime

        self.name, self.dim = base.name, base.dim
        self.tokenizer = base.pipeline.tokenizer
        options = onnxruntime.SessionOptions()
        # One thread, as for torch in a web process (encoder.embed_queries_on_one_thread).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str]) -> np.ndarray[Any, Any]:
        """Unit-length float32 embeddings, the mean of each text's token states, as the pipeline
        makes them. One text at a time: queries come one at a time, and no padding is needed."""
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = np.asarray([self.tokenizer.encode(text).ids], dtype=np.int64)
            hidden = self.session.run(None, {"ids": ids, "mask": np.ones_like(ids)})[0]
            pooled = hidden[0].astype(np.float32).mean(axis=0)
            vectors[row] = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
        return vectors


def for_queries(base: Encoder, *, data_dir: Path) -> Encoder:
    """The fastest encoder for one query at a time: ONNX Runtime on a CPU, else `base` itself."""
    if not isinstance(base, SentenceTransformerEncoder) or base.device != "cpu" or base.pipeline is None:
        return base  # a GPU runs torch fast enough; other architectures have no pipeline to mirror
    folder = data_dir / DIRECTORY
    try:
        graph = exported_graph(base, folder)
        try:
            return OnnxQueryEncoder(base, graph)
        except Exception:  # a damaged file (a full disk, a copy cut short): made again, once
            log.warning("the exported query model %s does not load: exporting it again", graph)
            graph.unlink(missing_ok=True)
            return OnnxQueryEncoder(base, exported_graph(base, folder))
    except Exception as error:  # no onnxruntime, an export torch cannot do: torch still answers
        log.warning("queries are embedded by torch (ONNX Runtime unavailable: %s)", error)
        return base


def exported_graph(base: SentenceTransformerEncoder, folder: Path) -> Path:
    """The model's transformer as an ONNX file in `folder`, exported now unless it already is."""
    import torch

    path = folder / f"{_graph_key(base)}.onnx"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    log.info("exporting %s for ONNX Runtime into %s (once; a few seconds)", base.name, path)
    handle, temporary = tempfile.mkstemp(dir=folder, suffix=".onnx.partial")
    os.close(handle)
    transformer = base.pipeline.transformer

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, ids: Any, mask: Any) -> Any:
            return self.transformer(input_ids=ids, attention_mask=mask).last_hidden_state

    try:
        example = torch.tensor([base.pipeline.tokenizer.encode("an example query").ids])
        length = torch.export.Dim("length", min=2, max=int(base.pipeline.max_length))
        with torch.no_grad():
            torch.onnx.export(
                LastHiddenState().eval(),
                (example, torch.ones_like(example)),
                temporary,
                dynamo=True,
                verbose=False,
                external_data=False,  # one file, so one rename publishes all of it
                input_names=["ids", "mask"],
                output_names=["hidden"],
                dynamic_shapes={"ids": {1: length}, "mask": {1: length}},
            )
        os.replace(temporary, path)  # another process may have done the same: either file serves
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def _graph_key(base: SentenceTransformerEncoder) -> str:
    """Which weights, exported by which torch: a new model or torch version gets a new file."""
    import torch

    folder = Path(base.model_path)
    weights = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    stamp = [
        base.name,
        base.model_path,
        torch.__version__,
        *(f"{w.name}:{w.stat().st_size}" for w in weights),
    ]
    return hashlib.sha256("\n".join(stamp).encode()).hexdigest()[:24]
