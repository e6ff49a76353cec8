"""How the encoder runs its transformer: the backends behind ``ModelConfig.backend``.

- ``torch``: the sentence-transformers model in fp32, length-sorted batches under a token budget, without
  sentence-transformers' per-call overhead. Same vectors as ``SentenceTransformer.encode`` (cosine > 0.99999).
- ``ct2-int8``: the transformer converted by CTranslate2 to int8 weights, activations quantised per token at run
  time (:mod:`indexer.ct2_build`). CPU only; run like ``onnx-int8``. The fastest CPU path measured here (2.6x
  sentence-transformers) but every MatMul is int8, which costs ~1.5 nDCG@10 points on SciFact, so it is opt-in.
- ``onnx-int8``: the transformer exported to ONNX, attention and layer norms fused by ONNX Runtime's BERT
  optimiser, weights quantised to uint8 per channel, activations quantised per text at run time, the
  feed-forward down-projections left in fp32. CPU only; one text per run, texts spread over one
  single-threaded run per core. Built once per model (see :mod:`indexer.onnx_build`), never downloaded.
- ``torch-bf16``: the GPU path: for mean-pooled BERT / XLM-R models, packed batches with no padding
  (:class:`PackedRunner`, :mod:`indexer.gpu_encode`); for others, length-sorted padded batches under bf16
  autocast.
  Not measured on a GPU, so ``auto`` does not pick it; :mod:`indexer.gpu_encode` is the measured GPU path, to be
  registered here as one more :class:`BackendSpec`.
- ``auto``: the first available of :data:`AUTO_CPU` (``onnx-int8``, ``torch``) or, on a GPU, :data:`AUTO_GPU`;
  if one cannot serve the model (its build fails), the next.

Vectors of different backends must not be mixed in one index. The rule is numeric: backends whose vectors match
fp32 within the issue's tolerance (cosine >= 0.999 per text) share the model's fingerprint; the others (int8:
cosine >= 0.996 on short queries, ~0.999 median) add their name to it, so an index built with one refuses the
other (see :func:`fingerprint_for`, :func:`backend_for_index` and :func:`mismatch_hint`).

Non-goals: training, models whose sentence-transformers pipeline is more than Transformer -> mean/CLS pooling ->
Normalize (they run through ``SentenceTransformer.encode`` on the ``torch`` backend).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from indexer.config import EncoderBackend, ModelConfig
from indexer.errors import ConfigError

logger = logging.getLogger(__name__)

@dataclasses.dataclass(frozen=True)
class BackendSpec:
    """What selection needs to know about a backend. Adding one: a spec here, its runner in
    :func:`open_runner`, its name in ``indexer.config.EncoderBackend``, and (to make it a default) a place in
    :data:`AUTO_CPU` / :data:`AUTO_GPU`."""

    name: str
    numerics: str  # backends of one class give interchangeable vectors (cosine >= 0.999 per text)
    device: str  # "cpu", "cuda" or "any"
    needs: tuple[str, ...] = ()  # importable modules it requires
    install: str = ""  # how to get them

    def missing(self) -> str | None:
        """The first required module that cannot be imported, or ``None``."""
        for module in self.needs:
            try:
                importlib.import_module(module)
            except ImportError:
                return module
        return None


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec("torch", numerics="fp32", device="any"),
        BackendSpec("torch-bf16", numerics="fp32", device="cuda"),  # unmeasured on a GPU: auto does not pick it
        BackendSpec(
            "ct2-int8",
            numerics="int8",
            device="cpu",
            needs=("ctranslate2",),
            install="pip install 'e5search[ct2]' (ctranslate2)",
        ),
        BackendSpec(
            "onnx-int8",
            numerics="int8",
            device="cpu",
            needs=("onnxruntime", "onnx"),
            install="pip install 'e5search[onnx]' (onnxruntime, onnx)",
        ),
    )
}
NUMERICS = {name: spec.numerics for name, spec in BACKENDS.items()}
AUTO_CPU: tuple[str, ...] = ("onnx-int8", "torch")  # first available wins; ct2-int8 is opt-in (accuracy)
AUTO_GPU: tuple[str, ...] = ("torch",)  # the GPU path goes first here once it is measured
GPU_BATCH_TOKENS = 32_768  # padded tokens per forward pass on GPU
CPU_BATCH_TOKENS = 8_192  # on CPU, about what sentence-transformers' 32 texts of SciFact length make
SOLO_THREADS = 4  # cores one lone text (a query) is split over; more only adds synchronisation
_PREPROCESS_GROUP = 64  # texts tokenised per sentence-transformers preprocess call


def fingerprint_for(model_fingerprint: str, backend: str) -> str:
    """The encoder fingerprint: the model's for fp32-class backends, ``<model>+<backend>`` for the others."""
    return model_fingerprint if NUMERICS[backend] == "fp32" else f"{model_fingerprint}+{backend}"


def has_onnxruntime() -> bool:
    return BACKENDS["onnx-int8"].missing() is None


def wants_cuda(device: str | None) -> bool:
    """Whether the model runs on a GPU: ``device`` says cuda, or it is unset and CUDA is available."""
    if device is not None:
        return str(device).startswith("cuda")
    import torch

    return torch.cuda.is_available()


def auto_candidates(device: str | None) -> list[str]:
    """The backends ``auto`` may use here, installed ones only, best first (torch always comes last)."""
    return [b for b in (AUTO_GPU if wants_cuda(device) else AUTO_CPU) if BACKENDS[b].missing() is None]


def choose_backend(requested: str, device: str | None) -> str:
    """Resolve ``auto`` and check that an explicit choice can run here.

    >>> choose_backend("auto", "cpu")  # "onnx-int8" with onnxruntime installed, else "torch"
    """
    if requested == "auto":
        return auto_candidates(device)[0]
    cuda = wants_cuda(device)
    spec = BACKENDS[requested]
    missing = spec.missing()
    if missing is not None:
        raise ConfigError(
            f"backend={requested!r} needs {missing}, which is not installed: {spec.install}, "
            "or use backend='torch' (--backend torch)"
        )
    if spec.device == "cpu" and cuda:
        raise ConfigError(f"backend={requested!r} runs on CPU only; device={device!r}: set device='cpu'")
    if spec.device == "cuda" and not cuda:
        raise ConfigError(
            f"backend={requested!r} is a GPU path and no CUDA device is in use: use backend='torch' on CPU "
            f"(its vectors are interchangeable with {requested!r}'s)"
        )
    return requested


def backend_for_index(config: ModelConfig, recorded: dict[str, Any] | None) -> ModelConfig:
    """The model config to encode with for an existing index whose manifest recorded ``recorded``.

    With ``backend='auto'`` it picks a backend whose vectors match the index's: an index built before backends
    existed (no ``backend`` recorded) or with an fp32-class backend gets auto's fp32-class choice, an index of
    another class gets the backend that built it. An explicit backend is kept; if its vectors differ, the
    fingerprint check refuses it, naming both backends (:func:`mismatch_hint`).
    """
    if config.backend != "auto" or not recorded:
        return config
    built_with = str(recorded.get("backend", "torch"))
    numerics = NUMERICS.get(built_with, "fp32")
    if numerics != "fp32":
        pinned = built_with
    else:
        auto = choose_backend("auto", config.device)
        pinned = auto if NUMERICS[auto] == "fp32" else "torch"
    return dataclasses.replace(config, backend=cast(EncoderBackend, pinned))


def mismatch_hint(recorded: dict[str, Any], model_fingerprint: str | None) -> str:
    """When the model is the index's but the backend's numerics differ: the fix, for the refusal message."""
    built_with = str(recorded.get("backend", "torch"))
    recorded_model = recorded.get("model_fingerprint", recorded.get("fingerprint"))
    if model_fingerprint is None or recorded_model != model_fingerprint:
        return ""
    return (
        f" The model is the same but the index was encoded with backend {built_with!r}, whose vectors differ "
        f"from this backend's beyond tolerance: pass --backend {built_with} (or --backend auto, which follows "
        "the index), or index into a new --index folder with the backend you want."
    )


# ------------------------------------------------------------------------------------------- tokenisation
def lean_pooling(st_model) -> str | None:
    """``"mean"`` or ``"cls"`` when the model is Transformer -> Pooling -> (Normalize), which the lean backends
    reproduce; ``None`` for any other pipeline (it then runs through ``SentenceTransformer.encode``)."""
    mods = list(st_model)
    if not 2 <= len(mods) <= 3 or not hasattr(mods[0], "auto_model") or type(mods[1]).__name__ != "Pooling":
        return None
    if len(mods) == 3 and type(mods[2]).__name__ != "Normalize":
        return None
    mode = mods[1].pooling_mode
    mode = mode[0] if isinstance(mode, (tuple, list)) and len(mode) == 1 else mode
    if mode not in ("mean", "cls") or not getattr(mods[1], "include_prompt", True):
        return None
    return mode


def token_ids(st_model, texts: Sequence[str]) -> list[np.ndarray]:
    """Each text's token ids exactly as sentence-transformers prepares them (its own preprocess: truncation,
    special tokens, lower-casing), without the padding. Texts are grouped by length so padding stays small."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(texts)
    for start in range(0, len(order), _PREPROCESS_GROUP):
        idx = order[start : start + _PREPROCESS_GROUP]
        features = st_model.preprocess([texts[i] for i in idx])
        ids = features["input_ids"].numpy().astype(np.int64)  # (group, longest)
        mask = features["attention_mask"].numpy().astype(bool)  # (group, longest)
        for row, i in enumerate(idx):
            out[i] = ids[row][mask[row]]
    return out


def pool(hidden: np.ndarray, mode: str) -> np.ndarray:
    """(seq, hidden) token states of one unpadded text -> (hidden,) unit vector."""
    vec = hidden.mean(axis=0) if mode == "mean" else hidden[0]
    return vec / max(float(np.linalg.norm(vec)), 1e-12)


def available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


# ------------------------------------------------------------------------------------------------ runners
class Runner(Protocol):
    def embed(self, seqs: list[np.ndarray], show_progress: bool = False) -> np.ndarray: ...  # (n, dim)


@functools.lru_cache(maxsize=4)
def _ort_session(path: str, threads: int = 1):
    """One session per artefact, thread count and process, without spin-waiting (on a shared machine spinning
    threads take cores from everything else). Batches run one text per single-threaded call, several calls at
    once: that scales better than splitting one text's small matrix products over cores. A lone text (a query)
    has nothing to run beside it, so it gets a session that splits it over ``threads`` cores."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class _PerTextRunner:
    """One unpadded text per run, texts spread over one single-threaded run per core; a lone text (a query) has
    nothing to run beside it, so it goes to a runtime that splits it over up to :data:`SOLO_THREADS` cores.
    Activations are quantised per run, so a text's vector does not depend on the texts encoded with it (the
    embedding cache relies on that). Subclasses say how one text runs."""

    revision = ""  # the artefact's format: part of the embedding cache's key

    def __init__(self, pooling: str, workers: int | None = None):
        self.pooling = pooling
        self.workers = workers or available_cpus()
        self._pool: ThreadPoolExecutor | None = None

    def _hidden(self, ids: np.ndarray, solo: bool) -> np.ndarray:  # (seq,) -> (seq, hidden)
        raise NotImplementedError

    def _one(self, ids: np.ndarray, solo: bool = False) -> np.ndarray:
        return pool(self._hidden(ids, solo), self.pooling)

    def embed(self, seqs: list[np.ndarray], show_progress: bool = False) -> np.ndarray:
        from tqdm.auto import tqdm

        assert seqs, "callers handle the empty batch"
        if len(seqs) == 1 and self.workers > 1:  # a query: split it over the cores (same numbers, less latency)
            return self._one(seqs[0], solo=True)[None, :]
        longest_first = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))  # balances the workers
        if len(seqs) > 1 and self.workers > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="e5search-encode")
            vecs = self._pool.map(self._one, (seqs[i] for i in longest_first))
        else:
            vecs = map(self._one, (seqs[i] for i in longest_first))
        done = list(tqdm(vecs, total=len(seqs), disable=not show_progress, unit="text"))
        out = np.empty((len(seqs), done[0].shape[0]), np.float32)
        out[longest_first] = np.stack(done)  # (n, hidden)
        return out


class OnnxRunner(_PerTextRunner):
    """ONNX Runtime on CPU (:mod:`indexer.onnx_build`)."""

    def __init__(self, model_path: Path, pooling: str, workers: int | None = None):
        super().__init__(pooling, workers)
        self.path = str(model_path)
        self.session = _ort_session(self.path)

    def _hidden(self, ids: np.ndarray, solo: bool) -> np.ndarray:
        session = _ort_session(self.path, min(self.workers, SOLO_THREADS)) if solo else self.session
        feeds = {"input_ids": ids[None, :], "attention_mask": np.ones((1, len(ids)), np.int64)}
        return session.run(None, feeds)[0][0]  # (seq, hidden)


class Ct2Runner(_PerTextRunner):
    """CTranslate2 on CPU (:mod:`indexer.ct2_build`): int8 weights, activations quantised per token and run."""

    def __init__(self, model_path: Path, pooling: str, workers: int | None = None):
        import ctranslate2

        super().__init__(pooling, workers)
        self.path = str(model_path)
        # one replica per worker thread, each on one core; its calls release the GIL
        self.encoder = ctranslate2.Encoder(self.path, device="cpu", compute_type="int8", intra_threads=1,
                                           inter_threads=self.workers)
        self._solo: Any = None

    def _hidden(self, ids: np.ndarray, solo: bool) -> np.ndarray:
        if solo and self._solo is None:
            import ctranslate2

            self._solo = ctranslate2.Encoder(self.path, device="cpu", compute_type="int8", inter_threads=1,
                                             intra_threads=min(self.workers, SOLO_THREADS))
        out = (self._solo if solo else self.encoder).forward_batch([ids.tolist()])
        return np.asarray(out.last_hidden_state)[0]  # (seq, hidden)


class TorchRunner:
    """The sentence-transformers model's own transformer, without sentence-transformers' per-call overhead:
    length-sorted batches under a token budget (little padding), no attention mask for a lone text (PyTorch's
    SDPA then takes its unmasked kernel), pooling on the device and one copy back to the host at the end."""

    def __init__(self, st_model, pooling: str, bf16: bool = False):
        self.model = st_model[0].auto_model
        self.device = st_model.device
        self.pooling = pooling
        self.bf16 = bf16
        self.pad_id = int(getattr(st_model.tokenizer, "pad_token_id", None) or 0)
        self.max_tokens = GPU_BATCH_TOKENS if self.device.type == "cuda" else CPU_BATCH_TOKENS

    def _batches(self, seqs: list[np.ndarray]) -> list[list[int]]:
        """Longest first, each batch at most ``max_tokens`` padded tokens."""
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
        batches: list[list[int]] = []
        for i in order:
            if batches and (len(batches[-1]) + 1) * len(seqs[batches[-1][0]]) <= self.max_tokens:
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def _forward(self, seqs: list[np.ndarray]):
        """(b,) unpadded texts -> (b, hidden) unit vectors, on the model's device."""
        import torch

        longest = len(seqs[0])
        ids = torch.full((len(seqs), longest), self.pad_id, dtype=torch.long)  # (b, seq)
        mask = torch.zeros((len(seqs), longest), dtype=torch.long)  # (b, seq)
        for row, s in enumerate(seqs):
            ids[row, : len(s)] = torch.from_numpy(s)
            mask[row, : len(s)] = 1
        pin = self.device.type == "cuda"
        ids = (ids.pin_memory() if pin else ids).to(self.device, non_blocking=pin)
        mask = (mask.pin_memory() if pin else mask).to(self.device, non_blocking=pin)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(input_ids=ids, attention_mask=mask if len(seqs) > 1 else None)
        hidden = out.last_hidden_state.float()  # (b, seq, hidden)
        if self.pooling == "mean":
            m = mask.unsqueeze(-1).float()  # (b, seq, 1)
            vec = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)  # (b, hidden)
        else:
            vec = hidden[:, 0]  # (b, hidden)
        return torch.nn.functional.normalize(vec, dim=-1)

    def embed(self, seqs: list[np.ndarray], show_progress: bool = False) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        batches = self._batches(seqs)
        with torch.inference_mode():
            pooled = [self._forward([seqs[i] for i in b]) for b in tqdm(batches, disable=not show_progress)]
            vecs = torch.cat(pooled).cpu().numpy()  # (n, hidden), one device -> host copy
        out = np.zeros_like(vecs, dtype=np.float32)
        out[[i for b in batches for i in b]] = vecs
        return out


def open_runner(st_model, backend: str, model_fingerprint: str, show_progress: bool = False) -> Runner | None:
    """The runner for a resolved backend; ``None`` means: use ``SentenceTransformer.encode`` (torch only).

    Builds the int8 ONNX artefact on first use. Raises :class:`ConfigError` when the backend can't serve
    this model; the caller decides whether to fall back.
    """
    pooling = lean_pooling(st_model)
    if pooling is None:
        if backend == "torch":
            return None
        raise ConfigError(
            f"backend={backend!r} supports Transformer -> mean/CLS pooling -> Normalize models only; "
            "this model has another pipeline: use backend='torch'"
        )
    if backend == "onnx-int8":
        from indexer.onnx_build import FORMAT, ensure_int8_model

        path = ensure_int8_model(st_model, model_fingerprint, show_progress=show_progress)
        runner = OnnxRunner(path, pooling)
        runner.revision = f"onnx-format{FORMAT}"
        return runner
    if backend == "ct2-int8":
        from indexer.ct2_build import FORMAT as CT2_FORMAT
        from indexer.ct2_build import ensure_ct2_model

        ct2 = Ct2Runner(ensure_ct2_model(st_model, model_fingerprint, show_progress=show_progress), pooling)
        ct2.revision = f"ct2-format{CT2_FORMAT}"
        return ct2
    if backend == "torch-bf16" and pooling == "mean":
        try:
            return PackedRunner(st_model)
        except ValueError as exc:  # another architecture: the padded runner serves it
            logger.info("packed GPU path unavailable (%s); padded bf16 batches instead", exc)
    return TorchRunner(st_model, pooling, bf16=backend == "torch-bf16")


class PackedRunner:
    """bf16 on a GPU with no padding at all (:class:`indexer.gpu_encode.GPUEncoder`): token-budget batches of
    concatenated texts, attention per text on nested tensors, batches prepared on a CPU thread ahead of the GPU."""

    def __init__(self, st_model):
        import torch

        from indexer.gpu_encode import GPUEncoder

        self.encoder = GPUEncoder(st_model, dtype=torch.bfloat16, max_tokens=4 * GPU_BATCH_TOKENS, packed=True)

    def embed(self, seqs: list[np.ndarray], show_progress: bool = False) -> np.ndarray:
        vecs = self.encoder.encode_ids(seqs)  # (n, dim)
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
