"""Cross-encoder reranking over a retriever's top candidates.

Any sentence-transformers ``CrossEncoder`` folder or hub id works. When the repository ships a reranker delta
(``indexer/assets/reranker/``, see :mod:`indexer.models.default_reranker`), ``default_reranker()`` names it and it is
rebuilt offline on first use; ``E5SEARCH_RERANKER`` overrides it (``none`` turns it off). Asking to rerank without
any reranker is an error, never a silent no-op.

How it runs on a CPU (``backend``), like the encoder (:mod:`indexer.encoding.backends`): ``torch`` (fp32),
``torch-bf16`` (bf16 autocast; CPUs with bf16 instructions only) or ``onnx-int8``
(:mod:`indexer.encoding.rerank_onnx`: built once per reranker, kept only if it reproduces fp32's scores on
multilingual probe pairs). ``auto`` takes the first of :func:`auto_order` that can serve the model.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, cast

import numpy as np

from indexer.config import SearchConfig
from indexer.encoding import machine
from indexer.errors import ConfigError, E5SearchError

logger = logging.getLogger(__name__)

NO_RERANKER = (
    "no reranker configured: pass --reranker with a sentence-transformers CrossEncoder folder or hub id "
    "(or set E5SEARCH_RERANKER)"
)


OFF = ("none", "off")  # E5SEARCH_RERANKER values that turn the default reranker off


RERANK_K = SearchConfig.rerank_top  # candidates the cross-encoder rescores by default (the one home: config)


RerankBackend = Literal["auto", "torch", "torch-bf16", "onnx-int8"]
RERANK_BACKENDS: tuple[str, ...] = ("auto", "torch", "torch-bf16", "onnx-int8")


def default_reranker() -> str | None:
    """``E5SEARCH_RERANKER`` if set (``none``/``off``: no reranker), else the shipped default, if any."""
    from indexer.models import default_reranker as dr

    env = os.environ.get("E5SEARCH_RERANKER", "").strip()
    if env.lower() in OFF:
        return None
    return env or (dr.DEFAULT_RERANKER if dr.is_shipped(dr.ASSET_DIR) else None)


def auto_order() -> tuple[str, ...]:
    """What ``auto`` tries, in order, on this CPU: the int8 ONNX model, then bf16 autocast where the CPU
    multiplies bf16 in hardware, then fp32 torch. Measured on an AMX Xeon (bench/results/rerank_latency.md):
    int8 2.5x fp32 torch, bf16 autocast only 1.1x (unlike the encoder's short texts, where bf16 wins)."""
    return ("onnx-int8",) + (("torch-bf16",) if machine.fast_bf16() else ()) + ("torch",)


def interpolate(first: Sequence[float], scores: Sequence[float], alpha: float) -> np.ndarray:
    """``alpha · z(cross-encoder) + (1 − alpha) · z(first stage)`` over one query's reranked head (z: the head's
    z-score, so scales do not matter); ``alpha >= 1`` is the cross-encoder's scores as they are. A reranker can
    then refine the first stage's order without collapsing it.

    >>> int(interpolate([3.0, 2.0, 1.0], [0.0, 0.0, 1.0], 0.5).argmax())
    0
    """
    ce = np.asarray(scores, dtype=np.float64)
    if alpha >= 1.0 or len(ce) < 2:
        return ce
    fs = np.asarray(first, dtype=np.float64)

    def z(x: np.ndarray) -> np.ndarray:
        return (x - x.mean()) / (x.std() + 1e-6)

    return alpha * z(ce) + (1.0 - alpha) * z(fs)


def _load(model: str, device: str | None, max_length: int | None):
    from sentence_transformers import CrossEncoder

    from indexer.models import default_reranker as dr

    if model == dr.DEFAULT_RERANKER:
        model = str(dr.build_default_reranker(asset_dir=dr.ASSET_DIR))  # once: rebuilt offline, then cached
    looks_like_path = model.startswith((".", "/", "~")) or os.sep in model
    if looks_like_path and not os.path.isdir(os.path.expanduser(model)):
        raise ConfigError(f"reranker {model!r}: no such folder; give a CrossEncoder folder or hub id")
    try:
        return CrossEncoder(os.path.expanduser(model), device=device, max_length=max_length), model
    except OSError as exc:
        raise ConfigError(
            f"reranker {model!r} could not be loaded ({exc}); offline, only local folders and models "
            "already in the Hugging Face cache work"
        ) from exc


def _shipped_interpolation(model: str) -> float:
    from indexer.models import default_reranker as dr

    return (
        float(dr.read_meta(dr.ASSET_DIR).get("interpolation", 1.0)) if model == dr.DEFAULT_RERANKER else 1.0
    )


class Reranker:
    """``score(query, passages)``: one cross-encoder score per passage, higher is more relevant.

    ``pairs_scored`` counts the (query, passage) pairs scored so far (the app's one-pass promise is tested on it).
    """

    def __init__(
        self,
        model: str,
        device: str | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        backend: RerankBackend = "auto",
        interpolation: float | None = None,
    ):
        """``max_length``: input tokens per (query, passage); None takes the model folder's own (else 512).
        ``interpolation``: the cross-encoder's weight against the first stage (:func:`interpolate`); None takes
        the shipped reranker's (chosen on dev sets, in its ``reranker.json``), 1.0 for any other."""
        if backend not in RERANK_BACKENDS:
            raise ConfigError(f"reranker backend={backend!r}: use one of {', '.join(RERANK_BACKENDS)}")
        self.model, folder = _load(model, device, max_length)
        self.name = model
        self.interpolation = interpolation if interpolation is not None else _shipped_interpolation(model)
        self.batch_size = batch_size
        self.pairs_scored = 0
        self._onnx = None
        on_cpu = self.model.device.type == "cpu"
        order = (auto_order() if on_cpu else ("torch",)) if backend == "auto" else (backend,)
        self.backend = self._open(order, Path(os.path.expanduser(folder)), explicit=backend != "auto")

    def _open(self, order: Sequence[str], folder: Path, explicit: bool) -> str:
        for name in order:
            try:
                if name == "torch-bf16" and not machine.fast_bf16():
                    raise ConfigError("torch-bf16 needs a CPU with bf16 instructions (AMX or AVX512-BF16)")
                if name == "onnx-int8":
                    self._onnx = self._open_onnx(folder)
                return name
            except E5SearchError as exc:
                if explicit:
                    raise
                logger.info("reranker backend %s unavailable (%s); trying the next", name, exc)
        return "torch"

    def _open_onnx(self, folder: Path):
        from indexer.encoding.encoder import folder_fingerprint
        from indexer.encoding.rerank_onnx import OnnxScorer, ensure_int8_reranker

        if not folder.is_dir() or self.model.device.type != "cpu":
            raise ConfigError("onnx-int8 reranking needs a local CrossEncoder folder and the CPU")
        try:
            path = ensure_int8_reranker(self.model, folder_fingerprint(folder))
        except E5SearchError:
            raise
        except Exception as exc:  # noqa: BLE001 - an export the exporter cannot do: the torch path serves it
            raise E5SearchError(f"the ONNX export failed ({type(exc).__name__}: {exc})") from exc
        return OnnxScorer(path, self.model)

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """(n,) scores of ``passages`` for ``query``."""
        self.pairs_scored += len(passages)
        if not passages:
            return np.zeros(0, dtype=np.float32)
        pairs = [(query, p) for p in passages]
        if self._onnx is not None:
            return cast(np.ndarray, self._onnx.score(pairs))
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.backend == "torch-bf16"):
            scores = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return np.asarray(scores, dtype=np.float32).reshape(len(passages), -1)[:, -1]
