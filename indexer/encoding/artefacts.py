"""What the ONNX and CTranslate2 artefacts share: where they live, when one is finished, the quality probe.

Artefacts live in ``<cache>/<kind>/<model fingerprint>-int8/`` (``-fp32/`` for the fp32 ONNX model) with a
``build.json`` written last; one counts as finished only when that record names the current format and model.
:func:`probe` embeds :data:`PROBE_TEXTS` (multilingual) with a candidate runner, so the builders can compare it
with fp32 and refuse an artefact below :data:`MIN_PROBE_COSINE` (:data:`MIN_FP32_PROBE_COSINE` for fp32 ones).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from indexer.cache import package_versions

logger = logging.getLogger(__name__)

RECORD = "build.json"


MIN_PROBE_COSINE = 0.995  # measured (bench/results/encode.md): >= 0.998 on short multilingual texts


MIN_FP32_PROBE_COSINE = 0.9999  # an fp32 artefact must stay in the fp32 numerics class (bf16 autocast's bar)


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


def artefact_folder(home: Path, model_fingerprint: str, kind: str = "int8") -> Path:
    """``<home>/<fingerprint>-<kind>``, the fingerprint made safe for a file name (shared with
    :mod:`indexer.encoding.ct2_build`; ``kind="fp32"`` for the fused fp32 ONNX model of the lone-text path)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_fingerprint)
    return home / f"{safe}-{kind}"


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
    from indexer.models.lean import lean_pooling, sentence_transformer
    from indexer.tokens import token_ids

    ref = sentence_transformer(st_model).encode(
        list(PROBE_TEXTS), normalize_embeddings=True, convert_to_numpy=True
    )  # (n, dim)
    runner = runner_class(path, lean_pooling(st_model) or "mean", workers=1)
    return np.sum(ref * runner.embed(token_ids(st_model, PROBE_TEXTS)), axis=1)  # (n,)


def write_record(staging: Path, fields: dict, packages: tuple[str, ...], started: float) -> dict:
    """Write an artefact's ``build.json`` into its staging folder, last (it is what marks the build finished):
    ``fields`` plus the versions of ``packages``, the build time and its duration; returns the record."""
    record = {
        **fields,
        "versions": package_versions(*packages),
        "built_at": datetime.now(timezone.utc).isoformat(),
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    (staging / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    probed = {k: v for k, v in record.items() if k.startswith("probe_")}  # each builder's own check
    logger.info("built %s in %.0f s (%s)", staging.name, record["build_seconds"], probed)
    return record
