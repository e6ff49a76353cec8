"""The one place that applies E5 prompts, pooling and normalisation.

Call sites ask for ``encode_queries`` or ``encode_passages``; they never paste ``query: `` / ``passage: ``
themselves. Prompts come from the model folder (``config_sentence_transformers.json``), falling back to the
``ModelConfig`` defaults (E5's prompts) when the folder records none.

The model loads through sentence-transformers (tokenizer, prompts, pooling, fingerprint), or, for a folder whose
pipeline the lean runners reproduce, with transformers alone and the same result (:mod:`indexer.models.lean`); how
its transformer runs is the backend's business (:mod:`indexer.encoding.backends`): by default int8 ONNX Runtime on CPU,
fp32 torch otherwise. The backend is part of :meth:`Encoder.describe` and, when its vectors differ from fp32
beyond tolerance, of the fingerprint.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from indexer.config import IndexConfig, ModelConfig
from indexer.encoding.backends import (
    NUMERICS,
    auto_candidates,
    backend_for_index,
    choose_backend,
    fingerprint_for,
    mismatch_hint,
    open_runner,
)
from indexer.errors import IndexStateError
from indexer.models.lean import load_lean, model_folder
from indexer.tokens import token_ids

logger = logging.getLogger(__name__)


_PASSAGE_PROMPT_NAMES = ("passage", "document", "corpus")


class TextEncoder(Protocol):
    """What the indexer needs from an embedding model (the real one, a wrapper such as the app's query memo, or
    a fake in tests). Read-only members may be plain attributes in an implementation."""

    name: str
    dim: int
    max_length: int  # tokens, including special tokens and the prompt
    query_prompt: str
    passage_prompt: str

    @property
    def fingerprint(
        self,
    ) -> str: ...  # the model's, plus the backend's name where its vectors differ from fp32

    @property
    def model_fingerprint(self) -> str: ...  # the model's alone, whatever the backend

    @property
    def cache_key(
        self,
    ) -> str: ...  # the fingerprint plus anything else that changes vectors (artefact format)

    @property
    def on_gpu(self) -> bool: ...  # whether encoding leaves the CPU free

    @property
    def tokenizer(self): ...  # a transformers fast tokenizer

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray: ...

    def describe(self) -> dict: ...  # what the index manifest records about the encoder


def resolve_prompts(recorded: dict[str, str] | None, query: str, passage: str) -> tuple[str, str]:
    """(query prompt, passage prompt): the ones a model folder records (``config_sentence_transformers.json``),
    else ``query`` / ``passage``. The trainer reads a model's prompts through this too, so both agree.

    >>> resolve_prompts({"query": "q: ", "document": "d: "}, "query: ", "passage: ")
    ('q: ', 'd: ')
    """
    recorded = recorded or {}
    return recorded.get("query", query), next(
        (recorded[n] for n in _PASSAGE_PROMPT_NAMES if n in recorded), passage
    )


def folder_fingerprint(folder: Path) -> str:
    """A content fingerprint of a model folder: configs hashed whole, weights by size and sampled bytes.

    Cheap enough for every CLI call (reads ~1 MB per weights file) and changes whenever the weights do.
    """
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel.startswith(".") or "/." in rel or rel == "e5search_build.json":
            continue
        h.update(rel.encode())
        size = path.stat().st_size
        h.update(str(size).encode())
        with open(path, "rb") as f:
            if size <= 4 << 20:
                h.update(f.read())
            else:
                for frac in (0.0, 0.25, 0.5, 0.75):
                    f.seek(int(size * frac))
                    h.update(f.read(256 << 10))
                f.seek(max(0, size - (256 << 10)))
                h.update(f.read())
    return h.hexdigest()[:16]


def _model_folder(model) -> Path | None:
    """The local folder a model was loaded from (hub models: their cache snapshot)."""
    name = model_folder(model)
    if name and os.path.isdir(name):
        return Path(name)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True)) if name else None
    except Exception:  # noqa: BLE001 - any failure means "no local folder to hash"
        return None


@functools.lru_cache(maxsize=4)
def _load(path: str, device: str | None):
    """Models load once per process: opening several indexes (or the CLI's --queries) reuses them. A folder whose
    pipeline the lean runners reproduce loads without sentence-transformers (:mod:`indexer.models.lean`)."""
    from indexer.models.resolve import load_model

    return load_lean(path, device) or load_model(path, device=device)


class Encoder:
    """A sentence-transformers bi-encoder with E5 prompts, mean pooling and L2 normalisation.

    >>> enc = Encoder(ModelConfig())               # the default model, rebuilt offline on first use
    >>> enc.encode_queries(["how are you"]).shape  # (1, 384)
    >>> enc.describe()["backend"]                  # "onnx-int8" on CPU with onnxruntime installed
    """

    def __init__(self, config: ModelConfig = ModelConfig(), show_progress: bool = False):
        from indexer.models.resolve import resolve_model

        self.config = config
        self.name = config.model
        self.model = _load(resolve_model(config.model), config.device)
        prompts = self.model.prompts or {}
        self.query_prompt, self.passage_prompt = resolve_prompts(
            prompts, config.query_prompt, config.passage_prompt
        )
        if "query" not in prompts:
            logger.info(
                "model %s records no prompts; using %r / %r",
                config.model,
                self.query_prompt,
                self.passage_prompt,
            )
        get_dim = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim() or 0)
        self.max_length = int(self.model.max_seq_length)
        folder = _model_folder(self.model)
        self.model_fingerprint = folder_fingerprint(folder) if folder else f"hub:{config.model}"
        self.backend, self._runner = _open_backend(self.model, config, self.model_fingerprint, show_progress)
        self.fingerprint = fingerprint_for(self.model_fingerprint, self.backend)

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @property
    def cache_key(self) -> str:
        """The fingerprint plus the int8 artefact's format: embeddings cached by an older build of the same backend
        (whose vectors may differ) are not reused."""
        revision = getattr(self._runner, "revision", "")
        return f"{self.fingerprint}@{revision}" if revision else self.fingerprint

    @property
    def on_gpu(self) -> bool:
        """Whether the model computes on a GPU (then the CPU is free to read the next files meanwhile)."""
        return self.model.device.type == "cuda"  # ONNX Runtime runs on CPU, with the model kept there

    def _encode(self, texts: Sequence[str], prompt: str, show_progress: bool) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._runner is not None:
            ids = token_ids(self.model, [prompt + t for t in texts])
            return np.ascontiguousarray(self._runner.embed(ids, show_progress), dtype=np.float32)  # (n, dim)
        emb = self.model.encode(
            list(texts),
            prompt=prompt,
            batch_size=self.config.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(emb, dtype=np.float32)  # (n, dim)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prompt, show_progress=False)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.passage_prompt, show_progress=show_progress)

    def describe(self) -> dict:
        return {
            "model": self.name,
            "fingerprint": self.fingerprint,
            "model_fingerprint": self.model_fingerprint,
            "backend": self.backend,
            "numerics": NUMERICS[self.backend],
            "dim": self.dim,
            "max_length": self.max_length,
            "query_prompt": self.query_prompt,
            "passage_prompt": self.passage_prompt,
        }


def _open_backend(model, config: ModelConfig, model_fingerprint: str, show_progress: bool):
    """(resolved backend, runner or None for ``SentenceTransformer.encode``). ``auto`` falls back along its list
    (say ``ct2-int8`` -> ``onnx-int8`` -> ``torch``) when a backend cannot serve this model; an explicit one raises."""
    backend = choose_backend(config.backend, config.device)
    candidates = auto_candidates(config.device) if config.backend == "auto" else [backend]
    for i, backend in enumerate(candidates):
        try:
            return backend, open_runner(model, backend, model_fingerprint, show_progress)
        except Exception as exc:
            if i + 1 == len(candidates):
                raise
            logger.warning(
                "backend %s unavailable for %s (%s); trying %s", backend, config.model, exc, candidates[i + 1]
            )
    raise AssertionError("unreachable: candidates is never empty")


def prepare_encoder(config: ModelConfig = ModelConfig(), show_progress: bool = False) -> dict:
    """Load the model and build what its backend needs (the int8 ONNX model, the fp32 one that serves lone texts
    on CPU, which encoding otherwise builds only at the first query), for setup.

    >>> prepare_encoder()["backend"]  # doctest: +SKIP
    'onnx-int8'
    """
    encoder = Encoder(config, show_progress=show_progress)
    getattr(encoder._runner, "solo", None)  # TorchRunner.solo: built here rather than at the first query
    return encoder.describe()


# ------------------------------------------------------------------------------ which encoder serves an index
def model_for_index(manifest: dict, model: ModelConfig | None = None) -> ModelConfig:
    """The model config that encodes for the index whose manifest is ``manifest`` (``{}`` for a new index).

    ``model`` is the caller's choice (``--model`` / ``--backend``), else the model config the index recorded. With
    ``backend='auto'`` the backend follows the index (:func:`~indexer.encoding.backends.backend_for_index`), so an
    index built with torch is searched with torch even where the int8 backend is installed.
    """
    if model is None:
        stored = manifest.get("config")
        model = IndexConfig.from_dict(stored).model if stored else ModelConfig()
    return backend_for_index(model, manifest.get("model"))


def check_encoder(manifest: dict, encoder: TextEncoder) -> None:
    """Refuse ``encoder`` for an index whose recorded model (fingerprint, dim) differs, naming the fix."""
    model = manifest.get("model")
    if not model or (
        model.get("fingerprint") == encoder.fingerprint and model.get("dim", encoder.dim) == encoder.dim
    ):
        return
    hint = mismatch_hint(model, encoder.model_fingerprint)
    raise IndexStateError(
        f"this index was built with model {model.get('model')!r} (fingerprint {model.get('fingerprint')}, "
        f"dim {model.get('dim')}); the encoder given is {encoder.name!r} ({encoder.fingerprint}, dim {encoder.dim})."
        + (
            hint
            or " Use the index's own model (the same --model, or none) or index into a new --index folder"
        )
    )


def encoder_for_index(manifest: dict, model: ModelConfig | None = None) -> Encoder:
    """Load the encoder :func:`model_for_index` names and check it against the index.

    >>> encoder_for_index(read_index_manifest(".e5search/sample")).backend  # doctest: +SKIP
    'onnx-int8'
    """
    encoder = Encoder(model_for_index(manifest, model))
    check_encoder(manifest, encoder)
    return encoder
