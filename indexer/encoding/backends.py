"""How the encoder runs its transformer: the backends behind ``ModelConfig.backend``.

- ``torch``: the sentence-transformers model in fp32, length-sorted batches under a token budget, without
  sentence-transformers' per-call overhead. Same vectors as ``SentenceTransformer.encode`` (cosine > 0.99999).
- ``ct2-int8``: the transformer converted by CTranslate2 to int8 weights, activations quantised per token at run
  time (:mod:`indexer.encoding.ct2_build`). CPU only; run like ``onnx-int8``. The fastest CPU path measured here (2.6x
  sentence-transformers) but every MatMul is int8, which costs ~1.5 nDCG@10 points on SciFact, so it is opt-in.
- ``onnx-int8``: the transformer exported to ONNX, attention and layer norms fused by ONNX Runtime's BERT
  optimiser, weights quantised to uint8 per channel, activations quantised per text at run time, the
  feed-forward down-projections left in fp32. CPU only; one text per run, texts spread over one
  single-threaded run per core. Built once per model (see :mod:`indexer.encoding.onnx_build`), never downloaded.
- ``torch-bf16``: bf16 autocast. On a GPU, for mean-pooled BERT / XLM-R models, packed batches with no padding
  (:class:`PackedRunner`, :mod:`indexer.encoding.gpu_encode`; not measured on a GPU yet, so ``auto`` does not pick
  it there). On a CPU with bf16 instructions (AMX, AVX512-BF16), length-sorted padded batches under autocast:
  cosine >= 0.9999 to fp32, and on AMX the fastest CPU path measured. Refused on CPUs without them.
- ``auto``: on a GPU the first available of :data:`AUTO_GPU`; on CPU the order a calibration measured on this
  machine (:mod:`indexer.encoding.machine`, written by ``e5search setup``), else ``torch-bf16`` first where the CPU
  has bf16 instructions, then :data:`AUTO_CPU` (``onnx-int8``, ``torch``); if one cannot serve the model (its
  build fails), the next.

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
import importlib.util
import logging
from typing import Any, cast

from indexer.config import EncoderBackend, ModelConfig
from indexer.encoding.machine import fast_bf16, read_calibration
from indexer.encoding.runners import Ct2Runner, OnnxRunner, PackedRunner, Runner, TorchRunner
from indexer.errors import ConfigError
from indexer.models.lean import lean_pooling

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
        """The first required module that is not installed, or ``None``. Looked up, not imported: importing
        ``onnx`` alone took 0.5 s of every CLI run, most of which never use it."""
        for module in self.needs:
            try:
                if importlib.util.find_spec(module) is None:
                    return module
            except (ImportError, ValueError):  # a broken install, or a module blocked in sys.modules
                return module
        return None


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec("torch", numerics="fp32", device="any"),
        # bf16 autocast: on a GPU (packed, no padding) and on CPUs with bf16 instructions (AMX, AVX512-BF16);
        # cosine >= 0.9999 to fp32 on CPU, so it shares fp32's fingerprint and indexes
        BackendSpec("torch-bf16", numerics="fp32", device="any"),
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


AUTO_CPU: tuple[str, ...] = (
    "onnx-int8",
    "torch",
)  # without bf16 instructions or a calibration; ct2 is opt-in


AUTO_GPU: tuple[str, ...] = ("torch",)  # the GPU path goes first here once it is measured


def fingerprint_for(model_fingerprint: str, backend: str) -> str:
    """The encoder fingerprint: the model's for fp32-class backends, ``<model>+<backend>`` for the others."""
    return model_fingerprint if NUMERICS[backend] == "fp32" else f"{model_fingerprint}+{backend}"


def wants_cuda(device: str | None) -> bool:
    """Whether the model runs on a GPU: ``device`` says cuda, or it is unset and CUDA is available."""
    if device is not None:
        return str(device).startswith("cuda")
    import torch

    return torch.cuda.is_available()


def cpu_order() -> tuple[str, ...]:
    """``auto``'s order on this CPU: the calibration's (``e5search setup``) if this machine has one, else by CPU
    features (bf16 instructions put ``torch-bf16`` first). ``torch`` always comes last, as the fallback."""
    record = read_calibration()
    if record and record.get("order"):
        ranked = tuple(b for b in record["order"] if b in BACKENDS and b != "torch")
        return (*ranked, "torch")
    return (("torch-bf16",) if fast_bf16() else ()) + AUTO_CPU


def auto_candidates(device: str | None) -> list[str]:
    """The backends ``auto`` may use here, installed ones only, best first (torch always comes last)."""
    order = AUTO_GPU if wants_cuda(device) else cpu_order()
    return [
        b
        for b in order
        if BACKENDS[b].missing() is None and (b != "torch-bf16" or wants_cuda(device) or fast_bf16())
    ]


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
    if requested == "torch-bf16" and not cuda and not fast_bf16():
        raise ConfigError(
            "backend='torch-bf16' on CPU needs bf16 instructions (AMX or AVX512-BF16), which this CPU lacks: "
            "use backend='onnx-int8' or 'torch' (or --backend auto, which measures what is fastest here)"
        )
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


def open_runner(st_model, backend: str, model_fingerprint: str, show_progress: bool = False) -> Runner | None:
    """The runner for a resolved backend; ``None`` means: use ``SentenceTransformer.encode`` (torch only).

    Builds the int8 ONNX artefact on first use (for ``torch`` / ``torch-bf16`` on CPU with onnxruntime, the fp32
    one that serves lone texts). Raises :class:`ConfigError` when the backend can't serve this model; the caller
    decides whether to fall back.
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
        from indexer.encoding.onnx_build import FORMAT, ensure_int8_model

        path = ensure_int8_model(st_model, model_fingerprint, show_progress=show_progress)
        runner = OnnxRunner(path, pooling)
        runner.revision = f"onnx-format{FORMAT}"
        return runner
    if backend == "ct2-int8":
        from indexer.encoding.ct2_build import FORMAT as CT2_FORMAT
        from indexer.encoding.ct2_build import ensure_ct2_model

        ct2 = Ct2Runner(ensure_ct2_model(st_model, model_fingerprint, show_progress=show_progress), pooling)
        ct2.revision = f"ct2-format{CT2_FORMAT}"
        return ct2
    if backend == "torch-bf16" and pooling == "mean" and st_model.device.type == "cuda":
        try:
            return PackedRunner(st_model)
        except ValueError as exc:  # another architecture: the padded runner serves it
            logger.info("packed GPU path unavailable (%s); padded bf16 batches instead", exc)
    solo = None  # on CPU with onnxruntime and onnx: made on the first lone text (a query), so an index run,
    if st_model.device.type == "cpu" and BACKENDS["onnx-int8"].missing() is None:  # which encodes batches,
        solo = functools.partial(_fp32_solo, st_model, model_fingerprint, pooling)  # never builds it
    return TorchRunner(st_model, pooling, bf16=backend == "torch-bf16", solo_factory=solo)


def _fp32_solo(st_model, model_fingerprint: str, pooling: str) -> Runner | None:
    """Lone texts (queries) on the fused fp32 ONNX model: fp32 class, so fingerprint and cache key stay."""
    from indexer.encoding.onnx_build import ensure_fp32_model

    try:
        return OnnxRunner(ensure_fp32_model(st_model, model_fingerprint), pooling, lone_only=True)
    except Exception as exc:  # noqa: BLE001 - an optimisation: torch still serves lone texts
        logger.warning("no fp32 ONNX model for lone texts (%s); they run on torch", exc)
        return None
