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

import contextlib
import logging
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from indexer.cache import staged_folder
from indexer.encoding.artefacts import (
    MIN_FP32_PROBE_COSINE,
    MIN_PROBE_COSINE,
    artefact_folder,
    finished_artefact,
    probe,
    write_record,
)
from indexer.errors import ConfigError, E5SearchError
from indexer.models.lean import backbone

logger = logging.getLogger(__name__)


FORMAT = 3  # bump when the recipe changes what it writes; older artefacts are then rebuilt
FP32_FORMAT = 1  # the same for the fused fp32 model (ensure_fp32_model), kept in ``<fingerprint>-fp32/``

OPSET = 17


_GELU_DEPTH = 4  # producers walked back from a MatMul's input looking for a GELU


Q4_BLOCK = 32  # Q4_0's block length


def onnx_home() -> Path:
    from indexer.cache import cache_home

    return cache_home() / "onnx"


def artefact_dir(model_fingerprint: str) -> Path:
    return artefact_folder(onnx_home(), model_fingerprint)


def find_int8_model(model_fingerprint: str) -> Path | None:
    """The finished ``model.onnx`` for this model fingerprint, or ``None``."""
    return finished_artefact(artefact_dir(model_fingerprint), FORMAT, model_fingerprint, "model.onnx")


@contextlib.contextmanager
def _quiet_onnx_tools() -> Iterator[None]:
    """ONNX Runtime's optimiser and quantiser log every node at INFO, some through the root logger (whose
    module-level calls would also install a handler where none is configured): hold them to warnings."""
    root = logging.getLogger()
    noisy = [root] + [
        logging.getLogger(n) for n in ("onnx_model", "onnx_model_bert", "fusion_base", "fusion_utils")
    ]
    levels = [lg.level for lg in noisy]
    placeholder = logging.NullHandler() if not root.handlers else None
    if placeholder is not None:
        root.addHandler(placeholder)
    for lg in noisy:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for lg, level in zip(noisy, levels):
            lg.setLevel(level)
        if placeholder is not None:
            root.removeHandler(placeholder)


def _require_builders() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime.quantization  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"building the int8 ONNX model needs onnx and onnxruntime ({exc}): pip install onnxruntime onnx, "
            "or use backend='torch'"
        ) from exc


def _last_hidden(model):
    """Wraps the transformer so the exported graph takes (input_ids, attention_mask) and returns token states."""
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return LastHidden(model)


def export_fp32(st_model, path: Path) -> None:
    """The transformer as an fp32 ONNX graph with dynamic batch and sequence axes."""
    import copy

    import torch

    model = copy.deepcopy(backbone(st_model)).float().cpu().eval()
    model.set_attn_implementation("eager")  # the pattern ONNX Runtime's attention fusion recognises
    features = st_model.preprocess(
        ["passage: a short text", "passage: a longer text, so the batch is padded"]
    )
    args = (features["input_ids"].cpu(), features["attention_mask"].cpu())
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _last_hidden(model),
            args,
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
        )


def fuse(src: Path, dst: Path, config) -> dict[str, int]:
    """ONNX Runtime's transformer fusions; returns how many of each fused operator it made."""
    from onnxruntime.transformers import optimizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = optimizer.optimize_model(
            str(src),
            model_type="bert",
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
            opt_level=0,
        )
    model.save_model_to_file(str(dst))
    return {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}


def gelu_fed_matmuls(model) -> list[str]:
    """Names of the MatMuls that read a GELU's output (the feed-forward down-projections), fused (``Gelu``,
    ``BiasGelu``, ``FastGelu``) or not (the ``Erf`` pattern: ``x * 0.5 * (1 + erf(x / sqrt 2))``)."""
    producer = {out: node for node in model.graph.node for out in node.output}
    names = []
    for node in model.graph.node:
        if node.op_type != "MatMul":
            continue
        frontier = [node.input[0]]
        for _ in range(_GELU_DEPTH):  # the unfused pattern ends 3 nodes after the Erf
            parents = [producer[t] for t in frontier if t in producer]
            if any(p.op_type in ("Gelu", "BiasGelu", "FastGelu", "Erf") for p in parents):
                names.append(node.name)
                break
            frontier = [t for p in parents if p.op_type in ("Mul", "Add", "Div") for t in p.input]
    return names


def quantize_int8(src: Path, dst: Path, signed: bool = False) -> list[str]:
    """Dynamic int8 of ``src`` into ``dst`` (``signed``: s8 weights, for VNNI CPUs); returns the fp32 MatMuls."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep_fp32 = gelu_fed_matmuls(onnx.load(str(src), load_external_data=False))
    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8 if signed else QuantType.QUInt8,  # u8 x u8: no vpmaddubsw saturation
        per_channel=True,
        nodes_to_exclude=keep_fp32,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # fused nodes have no inferred types
    )
    return keep_fp32


def exact_q4_weights(model, names: list[str], block: int = Q4_BLOCK) -> list[str]:
    """The MatMuls among ``names`` whose (K, N) weight is exactly symmetric 4-bit in blocks of ``block`` along K
    (Q4_0: per block ``d = w[argmax |w|] / -8`` and every ``w / d`` an integer in [-8, 7]), i.e. whose
    ``MatMulNBits`` form loses nothing."""
    from onnx import numpy_helper

    weights = {t.name: t for t in model.graph.initializer}
    exact = []
    for node in model.graph.node:
        if node.name not in names or node.input[1] not in weights:
            continue
        w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)  # (K, N)
        if w.ndim != 2 or w.shape[0] % block:
            continue
        blocks = w.reshape(-1, block, w.shape[1])  # (K / block, block, N)
        peak = np.take_along_axis(
            blocks, np.abs(blocks).argmax(axis=1)[:, None, :], axis=1
        )  # (K / block, 1, N)
        d = peak / -8.0
        q = np.divide(blocks, d, out=np.zeros_like(blocks), where=d != 0)
        levels = np.rint(q)
        if np.all((levels >= -8) & (levels <= 7)) and np.array_equal(levels * d, blocks):
            exact.append(node.name)
    return exact


def store_q4(path: Path, names: list[str]) -> int:
    """Rewrite the MatMuls ``names`` of the model at ``path`` as 4-bit ``MatMulNBits`` (fp32 compute), in place.
    Returns how many were rewritten: 0 when ONNX Runtime's weight-only quantiser is unavailable."""
    if not names:
        return 0
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    except ImportError as exc:  # it needs onnx-ir (the ``onnx`` extra installs it)
        logger.info("4-bit weights skipped (%s); the down-projections stay fp32", exc)
        return 0
    import onnx

    model = onnx.load(str(path))
    others = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.name not in names]
    quantizer = MatMulNBitsQuantizer(  # it takes every MatMul not excluded, whatever nodes_to_include says
        model, bits=4, block_size=Q4_BLOCK, is_symmetric=True, accuracy_level=1, nodes_to_exclude=others
    )
    quantizer.process()
    quantizer.model.save_model_to_file(str(path), use_external_data_format=False)
    return sum(node.op_type == "MatMulNBits" for node in quantizer.model.model.graph.node)


def probe_cosines(st_model, path: Path) -> np.ndarray:
    """Cosine of the ONNX model's vectors with the torch model's on :data:`PROBE_TEXTS`."""
    from indexer.encoding.runners import OnnxRunner, _ort_session

    cosines = probe(st_model, OnnxRunner, path)
    _ort_session.cache_clear()  # the staging file is about to move
    return cosines


def _build_in(staging: Path, st_model) -> dict[str, Any]:
    """Export, fuse, quantise and check inside ``staging``; returns what goes into ``build.json``."""
    import onnx

    fp32, fused = staging / "fp32.onnx", staging / "fused.onnx"
    export_fp32(st_model, fp32)
    stats: dict[str, int] = {}
    try:
        stats = fuse(fp32, fused, backbone(st_model).config)
    except Exception as exc:  # noqa: BLE001 - the fusions are an optimisation; the plain graph still works
        logger.info("ONNX Runtime fusion failed (%s); quantising the plain graph", exc)
    for source in ([fused] if fused.exists() else []) + [fp32]:
        kept = quantize_int8(source, staging / "model.onnx")
        packed = store_q4(staging / "model.onnx", exact_q4_weights(onnx.load(str(source)), kept))
        cosines = probe_cosines(st_model, staging / "model.onnx")
        if cosines.min() >= MIN_PROBE_COSINE:
            break
        logger.warning(
            "int8 model from %s: probe cosine %.4f < %.2f", source.name, cosines.min(), MIN_PROBE_COSINE
        )
    else:
        raise E5SearchError(
            f"the int8 ONNX model does not reproduce this model (probe cosine {cosines.min():.4f} < "
            f"{MIN_PROBE_COSINE}); use backend='torch'"
        )
    fp32.unlink()
    fused.unlink(missing_ok=True)
    return {
        "fused_operators": stats if source == fused else {},
        "matmuls_kept_fp32": len(kept) - packed,
        "matmuls_exact_4bit": packed,
        "probe_cosine_min": round(float(cosines.min()), 5),
        "probe_cosine_mean": round(float(cosines.mean()), 5),
    }


def ensure_int8_model(
    st_model, model_fingerprint: str, force: bool = False, show_progress: bool = False
) -> Path:
    """Path of the int8 ONNX model for ``st_model``, built unless already cached (measured: 34 s, peak RSS of
    the building process ~6.5 GB; a process that only uses the artefact peaks at ~1.1 GB).

    >>> ensure_int8_model(SentenceTransformer(folder), folder_fingerprint(folder))  # doctest: +SKIP
    PosixPath('~/.cache/e5search/onnx/<fingerprint>-int8/model.onnx')
    """
    found = None if force else find_int8_model(model_fingerprint)
    if found is not None:
        return found
    _require_builders()
    target = artefact_dir(model_fingerprint)
    logger.warning("building the int8 ONNX model for %s (once, about a minute)", model_fingerprint)
    started = time.perf_counter()
    with staged_folder(target, lambda: find_int8_model(model_fingerprint) is not None, force) as staging:
        with _quiet_onnx_tools():
            built = _build_in(staging, st_model)
        fields = {
            "format": FORMAT,
            "model_fingerprint": model_fingerprint,
            "opset": OPSET,
            "weights": "uint8 asymmetric per output channel; feed-forward down-projections exact 4-bit "
            "(MatMulNBits, fp32 compute) where lossless, else fp32",
            "activations": "uint8 dynamic per tensor, per run",
            **built,
        }
        write_record(
            staging,
            fields,
            ("onnxruntime", "onnx", "torch", "transformers", "sentence-transformers"),
            started,
        )
    return target / "model.onnx"


def ensure_fp32_model(st_model, model_fingerprint: str) -> Path:
    """The fused fp32 ONNX model for lone texts (``<fingerprint>-fp32/``): built once, kept if it matches torch."""
    folder = artefact_folder(onnx_home(), model_fingerprint, "fp32")
    found = lambda: finished_artefact(folder, FP32_FORMAT, model_fingerprint, "model.onnx")  # noqa: E731
    if found() is None:
        _require_builders()
        started = time.perf_counter()
        with staged_folder(folder, lambda: found() is not None) as staging, _quiet_onnx_tools():
            export_fp32(st_model, staging / "plain.onnx")
            stats = fuse(staging / "plain.onnx", staging / "model.onnx", backbone(st_model).config)
            (staging / "plain.onnx").unlink()
            if (cos := float(probe_cosines(st_model, staging / "model.onnx").min())) < MIN_FP32_PROBE_COSINE:
                raise E5SearchError(f"fp32 ONNX model: probe cosine {cos:.6f} < {MIN_FP32_PROBE_COSINE}")
            fields = {"format": FP32_FORMAT, "model_fingerprint": model_fingerprint, "fused_operators": stats}
            write_record(staging, fields | {"probe_cosine_min": cos}, ("onnxruntime", "torch"), started)
    return folder / "model.onnx"
