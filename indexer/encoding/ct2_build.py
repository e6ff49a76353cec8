"""Build, check and cache the CTranslate2 int8 model behind ``backend='ct2-int8'``, offline, once per model.

CTranslate2 (OpenNMT) runs BERT / XLM-R encoders with int8 weights (per output row) and int8 activations
quantised per token at run time. On our 2-core AVX2 CPU it encodes SciFact abstracts ~1.3x faster than the
ONNX Runtime int8 model (2.6x sentence-transformers fp32, bench/results/encode.md), because every matrix
product is int8, the feed-forward down-projections included. Those are what costs accuracy (the reason
:mod:`indexer.encoding.onnx_build` keeps them in higher precision) and CTranslate2 has no per-layer choice: SciFact
nDCG@10 64.6 vs 66.1 in fp32, so the backend is opt-in (``--backend ct2-int8``), for users who trade 1.5 points
for speed.

The transformer is saved with ``save_pretrained`` into a staging folder and converted with CTranslate2's own
Transformers converter; the result is checked against the torch model on multilingual probe texts before it is
kept. Artefacts live in ``<cache>/ct2/<model fingerprint>-int8/`` (the converted model + ``build.json``, written
last), keyed by the model's content fingerprint. Nothing is downloaded.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from indexer.cache import staged_folder
from indexer.encoding.artefacts import (
    MIN_PROBE_COSINE,
    artefact_folder,
    finished_artefact,
    probe,
    write_record,
)
from indexer.errors import ConfigError, E5SearchError
from indexer.models.lean import backbone

logger = logging.getLogger(__name__)


FORMAT = 1  # bump when the recipe changes what it writes; older artefacts are then rebuilt


RECORD = "build.json"


MODEL_DIR = "model"


def artefact_dir(model_fingerprint: str) -> Path:
    from indexer.cache import cache_home

    return artefact_folder(cache_home() / "ct2", model_fingerprint)


def find_ct2_model(model_fingerprint: str) -> Path | None:
    """The finished converted model folder for this model fingerprint, or ``None``."""
    return finished_artefact(artefact_dir(model_fingerprint), FORMAT, model_fingerprint, MODEL_DIR)


def _convert(st_model, staging: Path) -> dict[str, Any]:
    """Save, convert and check inside ``staging``; returns what goes into ``build.json``."""
    from ctranslate2.converters import TransformersConverter

    source = staging / "transformers"
    backbone(st_model).save_pretrained(source)
    st_model.tokenizer.save_pretrained(source)
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    # transformers 5 dropped this field from BERT-like configs (absolute positions are all it has left); the
    # converter still reads it
    config.setdefault("position_embedding_type", "absolute")
    (source / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    try:
        TransformersConverter(str(source)).convert(str(staging / MODEL_DIR), quantization="int8")
    except Exception as exc:  # an architecture or a config CTranslate2 does not know
        raise ConfigError(
            f"CTranslate2 cannot convert this model ({type(exc).__name__}: {exc}); use backend='onnx-int8' or 'torch'"
        ) from exc
    shutil.rmtree(source)
    from indexer.encoding.runners import Ct2Runner

    cosines = probe(st_model, Ct2Runner, staging / MODEL_DIR)
    if cosines.min() < MIN_PROBE_COSINE:
        raise E5SearchError(
            f"the CTranslate2 int8 model does not reproduce this model (probe cosine {cosines.min():.4f} < "
            f"{MIN_PROBE_COSINE}); use backend='onnx-int8' or 'torch'"
        )
    return {
        "probe_cosine_min": round(float(cosines.min()), 5),
        "probe_cosine_mean": round(float(cosines.mean()), 5),
    }


def ensure_ct2_model(
    st_model, model_fingerprint: str, force: bool = False, show_progress: bool = False
) -> Path:
    """Path of the converted int8 model for ``st_model``, built unless already cached (measured for the default
    model: ~20 s, once).

    >>> ensure_ct2_model(SentenceTransformer(folder), folder_fingerprint(folder))  # doctest: +SKIP
    PosixPath('~/.cache/e5search/ct2/<fingerprint>-int8/model')
    """
    found = None if force else find_ct2_model(model_fingerprint)
    if found is not None:
        return found
    target = artefact_dir(model_fingerprint)
    logger.warning("building the CTranslate2 int8 model for %s (once, under a minute)", model_fingerprint)
    started = time.perf_counter()
    with staged_folder(target, lambda: find_ct2_model(model_fingerprint) is not None, force) as staging:
        built = _convert(st_model, staging)
        fields = {
            "format": FORMAT,
            "model_fingerprint": model_fingerprint,
            "weights": "int8 per output row (CTranslate2 quantization='int8')",
            "activations": "int8 dynamic per token, per run",
            **built,
        }
        write_record(
            staging, fields, ("ctranslate2", "torch", "transformers", "sentence-transformers"), started
        )
    return target / MODEL_DIR
