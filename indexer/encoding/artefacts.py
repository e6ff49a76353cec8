"""Build, check and cache the int8 ONNX model behind ``backend='onnx-int8'``, offline, once per model.

Recipe (measured on a 2-core AVX2 CPU, see bench/results/encode.md): export the transformer to ONNX with eager
attention (ONNX Runtime's BERT optimiser fuses that pattern into one Attention node; SDPA's export it does not),
fuse attention, embeddings + layer norm, skip layer norm and bias GELU, then quantise dynamically: weights uint8
per output channel, activations uint8 per tensor and run. Two measured choices make it accurate enough to be the
default (cosine vs fp32 on 320 multilingual sentences, min / median: all-int8 s8 weights 0.988 / 0.996):
- u8 x u8 instead of u8 x s8: AVX2 CPUs without VNNI multiply u8 x s8 with ``vpmaddubsw``, whose int16 pair
  sums saturate (0.994 / 0.997);
- the feed-forward down-projections (the MatMuls reading GELU's long-tailed output) are not int8: per-tensor
  uint8 of that activation was most of the remaining error (with both: 0.998 / 0.999). Where their weights are
  exactly 4-bit already (the default model is rebuilt from Q4_0 blocks of 32), they are stored as ONNX Runtime's
  ``MatMulNBits`` with fp32 compute: the same numbers in an eighth of the bytes, which matters for short texts
  (a query's MatMuls are bound by reading weights). Any other model keeps them fp32.
The result is checked against the torch model on multilingual probe texts before it is kept, and the fused
graph is dropped for the plain one if the fusion broke it.

Artefacts live in ``<cache>/onnx/<model fingerprint>-int8/`` (``model.onnx`` + ``build.json``), keyed by the
model's content fingerprint, so a retrained model never reuses a stale export. The folder is built in a staging
directory and renamed into place; ``build.json`` is written last. Nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RECORD = "build.json"


MIN_PROBE_COSINE = 0.995  # measured (bench/results/encode.md): >= 0.998 on short multilingual texts


PROBE_TEXTS = (
    "query: how do plants turn sunlight into sugar",
    "passage: Photosynthesis converts light energy into chemical energy stored in glucose.",
    "passage: Die Photosynthese wandelt Lichtenergie in chemische Energie um.",
    "passage: La photosynthèse transforme l'énergie lumineuse en énergie chimique.",
    "passage: Фотосинтез превращает энергию света в химическую энергию.",
    "passage: 光合作用将光能转化为储存在葡萄糖中的化学能。",
    "passage: 光合成は光エネルギーを化学エネルギーに変換する。",
    "passage: البناء الضوئي يحول الطاقة الضوئية إلى طاقة كيميائية.",
)


def artefact_folder(home: Path, model_fingerprint: str) -> Path:
    """``<home>/<fingerprint>-int8``, the fingerprint made safe for a file name (shared with :mod:`indexer.ct2_build`)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_fingerprint)
    return home / f"{safe}-int8"


def finished_artefact(folder: Path, fmt: int, model_fingerprint: str, check: str) -> Path | None:
    """``folder / check`` if ``folder``'s build record says format ``fmt`` of this model (a build writes its record
    last, so a record means a finished build), else ``None``."""
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("format") != fmt or record.get("model_fingerprint") != model_fingerprint:
        return None
    return folder / check if (folder / check).exists() else None


def probe(st_model, runner_class, path: Path) -> np.ndarray:
    """Cosine of a runner's vectors (``runner_class(path, pooling, workers=1)``) with the torch model's on
    :data:`PROBE_TEXTS`."""
    from indexer.encoding.runners import lean_pooling
    from indexer.tokens import token_ids

    ref = st_model.encode(list(PROBE_TEXTS), normalize_embeddings=True, convert_to_numpy=True)  # (n, dim)
    runner = runner_class(path, lean_pooling(st_model) or "mean", workers=1)
    return np.sum(ref * runner.embed(token_ids(st_model, PROBE_TEXTS)), axis=1)  # (n,)
