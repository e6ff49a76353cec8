"""The cross-encoder on ONNX Runtime, int8: built, checked against fp32 and cached like the embedding encoder's.

The recipe is the encoder's (:mod:`.onnx_build`): export with eager attention, ONNX Runtime's BERT fusions,
dynamic quantisation (int8 weights per output channel, activations per run; the feed-forward down-projections
kept fp32, or exact 4-bit where lossless). One difference, measured: on CPUs with VNNI the weights are s8
(:func:`signed_weights`), since ONNX Runtime's u8 x u8 kernels there were no faster than fp32 for the reranker's
long inputs; elsewhere u8 as the encoder's. Only the graph differs: it takes the pair's ``input_ids``,
``attention_mask`` (and ``token_type_ids`` where the tokenizer makes them) and returns the one logit.

Before it is kept, the int8 model scores :data:`indexer.models.rerank_pairs.PROBE_PAIRS` (multilingual) beside
the torch fp32 model: every score within :data:`MAX_PROBE_DIFF` of fp32's, and at least
:data:`MIN_PROBE_AGREEMENT` of the passage pairs that fp32 tells apart (by more than that tolerance) ordered
alike within each query. It lives in ``<cache>/onnx/<reranker fingerprint>-rerank-int8/`` (``model.onnx`` +
``build.json``, written last), so a retrained reranker never reuses a stale export.

:class:`OnnxScorer` runs it like :class:`indexer.encoding.runners.OnnxRunner` runs the encoder: one unpadded
pair per run, pairs spread over one single-threaded run per core, a lone pair split over the cores. Since
activations are quantised per run, a pair's score does not depend on the pairs scored with it.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from indexer.cache import staged_folder
from indexer.encoding.artefacts import artefact_folder, finished_artefact, write_record
from indexer.encoding.machine import cpu_identity
from indexer.encoding.onnx_build import (
    OPSET,
    _quiet_onnx_tools,
    _require_builders,
    exact_q4_weights,
    fuse,
    onnx_home,
    quantize_int8,
    store_q4,
)
from indexer.encoding.runners import SOLO_THREADS, _ort_session, available_cpus
from indexer.errors import E5SearchError
from indexer.models.rerank_pairs import PROBE_PAIRS
from indexer.models.reranker_delta import head_of

logger = logging.getLogger(__name__)

FORMAT = 1  # bump when the recipe changes what it writes
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # u8 x s8 dot products without int16 saturation
# |int8 - fp32| per probe score: 0.02 for a sigmoid head (0..1); a raw-logit head may spread its scores wider, and
# the tolerance grows with the fp32 scores' range on the probe pairs once that is over 1
MAX_PROBE_DIFF = 0.02
MIN_PROBE_AGREEMENT = 0.95  # share of fp32's decided passage pairs (per query) that int8 orders alike


def signed_weights(flags: frozenset[str] | None = None) -> bool:
    """s8 weights where the CPU has VNNI (measured here: 1.6x the u8 model's speed, same probe error); u8 x u8
    elsewhere, as the encoder (AVX2's ``vpmaddubsw`` saturates on u8 x s8)."""
    flags = cpu_identity()[1] if flags is None else flags
    return any(f in flags for f in VNNI_FLAGS)


def artefact_dir(fingerprint: str) -> Path:
    """``<cache>/onnx/<fingerprint>-rerank-int8`` (``-rerank-s8`` for the VNNI CPUs' signed weights)."""
    return artefact_folder(onnx_home(), fingerprint, "rerank-s8" if signed_weights() else "rerank-int8")


def find_int8_reranker(fingerprint: str) -> Path | None:
    return finished_artefact(artefact_dir(fingerprint), FORMAT, fingerprint, "model.onnx")


def _tokenize(cross_encoder, pairs) -> list[dict[str, np.ndarray]]:
    """Each pair on its own, unpadded, truncated to the model's max length: ``{input name: (1, seq)}``."""
    tok = cross_encoder.tokenizer
    max_length = cross_encoder.max_seq_length
    out = []
    for q, p in pairs:
        feats = tok(q, p, truncation=True, max_length=max_length, return_tensors="np")
        out.append({k: v.astype(np.int64) for k, v in feats.items()})
    return out


def export_fp32(cross_encoder, path: Path) -> list[str]:
    """The classifier as an fp32 ONNX graph (dynamic batch and sequence axes); returns its input names."""
    import torch

    model = copy.deepcopy(cross_encoder[0].model).float().cpu().eval()
    model.set_attn_implementation("eager")  # the pattern ONNX Runtime's attention fusion recognises
    feats = cross_encoder.tokenizer(
        ["a query", "a longer query here"], ["a passage", "p"], padding=True, return_tensors="pt"
    )
    names = list(feats.keys())
    score = (
        copy.deepcopy(cross_encoder[2].linear).float().eval() if head_of(cross_encoder) == "mean" else None
    )

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.score = score

        def forward(self, *inputs):
            given = dict(zip(names, inputs))
            if self.score is None:
                return self.inner(**given).logits  # (batch, labels)
            hidden = self.inner(**given).last_hidden_state  # (batch, seq, dim): the mean head's pooling
            mask = given["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            return self.score((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9))  # (batch, 1)

    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Logits(model),
            tuple(feats[n] for n in names),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**{n: axes for n in names}, "logits": {0: "batch"}},
        )
    return names


class OnnxScorer:
    """Scores (query, passage) pairs with an ONNX cross-encoder; ``activation`` maps logits to scores."""

    def __init__(self, model_path: Path, cross_encoder, workers: int | None = None):
        self.path = str(model_path)
        self.cross_encoder = cross_encoder
        self.workers = workers or available_cpus()
        self._pool: ThreadPoolExecutor | None = None

    def _one(self, feats: dict[str, np.ndarray], solo: bool = False) -> float:
        session = _ort_session(self.path, min(self.workers, SOLO_THREADS) if solo else 1)
        return float(session.run(None, feats)[0].reshape(-1)[-1])

    def logits(self, pairs) -> np.ndarray:
        feats = _tokenize(self.cross_encoder, pairs)
        if len(feats) == 1 and self.workers > 1:
            return np.array([self._one(feats[0], solo=True)], dtype=np.float32)
        longest_first = sorted(range(len(feats)), key=lambda i: -feats[i]["input_ids"].shape[1])
        if self._pool is None and self.workers > 1:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="e5search-rerank")
        ordered = [feats[i] for i in longest_first]
        done = list(self._pool.map(self._one, ordered) if self._pool else map(self._one, ordered))
        out = np.empty(len(feats), np.float32)
        out[longest_first] = done
        return out

    def score(self, pairs) -> np.ndarray:
        """Scores as ``CrossEncoder.predict`` gives them: logits through the model's activation."""
        import torch

        logits = torch.from_numpy(self.logits(pairs))
        with torch.no_grad():
            return self.cross_encoder.activation_fn(logits).numpy().astype(np.float32)


def probe_check(cross_encoder, scorer: OnnxScorer) -> dict[str, float]:
    """Max |diff| to the torch fp32 scores on the probe pairs, absolute and divided by their range where that is
    over 1 (a sigmoid head scores in 0..1, a raw-logit head in any range), and the share of decided orders kept."""
    want = np.asarray(cross_encoder.predict(list(PROBE_PAIRS), show_progress_bar=False), np.float64)
    got = scorer.score(list(PROBE_PAIRS)).astype(np.float64)
    scale = max(float(np.ptp(want)), 1.0)
    queries = [q for q, _ in PROBE_PAIRS]
    decided = kept = 0
    for i in range(len(queries)):
        for j in range(i + 1, len(queries)):
            if queries[i] == queries[j] and abs(want[i] - want[j]) > MAX_PROBE_DIFF * scale:
                decided += 1
                kept += (want[i] - want[j]) * (got[i] - got[j]) > 0
    return {
        "probe_max_abs_diff": round(float(np.max(np.abs(got - want))), 6),
        "probe_max_scaled_diff": round(float(np.max(np.abs(got - want))) / scale, 6),
        "probe_order_agreement": round(kept / decided, 4) if decided else 1.0,
        "probe_decided_orders": decided,
    }


def _passes(check: dict[str, float]) -> bool:
    return (
        check["probe_max_scaled_diff"] <= MAX_PROBE_DIFF
        and check["probe_order_agreement"] >= MIN_PROBE_AGREEMENT
    )


def _build_in(staging: Path, cross_encoder) -> dict[str, Any]:
    import onnx

    fp32, fused = staging / "fp32.onnx", staging / "fused.onnx"
    inputs = export_fp32(cross_encoder, fp32)
    try:
        fuse(fp32, fused, cross_encoder[0].model.config)
    except Exception as exc:  # noqa: BLE001 - the fusions are an optimisation; the plain graph still works
        logger.info("ONNX Runtime fusion failed (%s); quantising the plain graph", exc)
    for source in ([fused] if fused.exists() else []) + [fp32]:
        kept = quantize_int8(source, staging / "model.onnx", signed=signed_weights())
        packed = store_q4(staging / "model.onnx", exact_q4_weights(onnx.load(str(source)), kept))
        check = probe_check(cross_encoder, OnnxScorer(staging / "model.onnx", cross_encoder, workers=1))
        _ort_session.cache_clear()  # the staging file is about to move
        if _passes(check):
            break
        logger.warning("int8 reranker from %s fails the probe: %s", source.name, check)
    else:
        raise E5SearchError(
            f"the int8 ONNX reranker does not reproduce the fp32 scores ({check}); the torch path serves it"
        )
    fp32.unlink()
    fused.unlink(missing_ok=True)
    weights = "int8 per output channel, " + ("s8" if signed_weights() else "u8")
    return {
        "inputs": inputs,
        "fused": source == fused,
        "weights": weights,
        "matmuls_exact_4bit": packed,
        **check,
    }


def ensure_int8_reranker(cross_encoder, fingerprint: str, force: bool = False) -> Path:
    """Path of the checked int8 ONNX model of ``cross_encoder``, built once per fingerprint (a 6-layer
    reranker: about half a minute)."""
    found = None if force else find_int8_reranker(fingerprint)
    if found is not None:
        return found
    _require_builders()
    target = artefact_dir(fingerprint)
    logger.warning("building the int8 ONNX reranker for %s (once)", fingerprint)
    started = time.perf_counter()
    with staged_folder(target, lambda: find_int8_reranker(fingerprint) is not None, force) as staging:
        with _quiet_onnx_tools():
            built = _build_in(staging, cross_encoder)
        fields = {"format": FORMAT, "model_fingerprint": fingerprint, "opset": OPSET, **built}
        write_record(staging, fields, ("onnxruntime", "onnx", "torch", "transformers"), started)
    return target / "model.onnx"
