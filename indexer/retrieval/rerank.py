"""Cross-encoder reranking over a retriever's top candidates.

Any sentence-transformers ``CrossEncoder`` folder or hub id works. When the repository ships a reranker delta
(``indexer/assets/reranker/``, see :mod:`indexer.models.default_reranker`), ``default_reranker()`` names it and it is
rebuilt offline on first use; ``E5SEARCH_RERANKER`` overrides it (``none`` turns it off). Asking to rerank without
any reranker is an error, never a silent no-op.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from indexer.errors import ConfigError

NO_RERANKER = (
    "no reranker configured: pass --reranker with a sentence-transformers CrossEncoder folder or hub id "
    "(or set E5SEARCH_RERANKER)"
)


OFF = ("none", "off")  # E5SEARCH_RERANKER values that turn the default reranker off


def default_reranker() -> str | None:
    """``E5SEARCH_RERANKER`` if set (``none``/``off``: no reranker), else the shipped default, if any."""
    from indexer.models.default_reranker import DEFAULT_RERANKER, is_shipped

    env = os.environ.get("E5SEARCH_RERANKER", "").strip()
    if env.lower() in OFF:
        return None
    return env or (DEFAULT_RERANKER if is_shipped() else None)


class Reranker:
    def __init__(
        self, model: str, device: str | None = None, batch_size: int = 32, max_length: int | None = None
    ):
        """``max_length``: input tokens per (query, passage); None takes the model folder's own (else 512)."""
        from sentence_transformers import CrossEncoder

        from indexer.models.default_reranker import DEFAULT_RERANKER, build_default_reranker

        name = model
        if model == DEFAULT_RERANKER:
            model = str(build_default_reranker())  # once: rebuilt offline from the shipped delta, then cached
        looks_like_path = model.startswith((".", "/", "~")) or os.sep in model
        if looks_like_path and not os.path.isdir(os.path.expanduser(model)):
            raise ConfigError(f"reranker {model!r}: no such folder; give a CrossEncoder folder or hub id")
        try:
            self.model = CrossEncoder(os.path.expanduser(model), device=device, max_length=max_length)
        except OSError as exc:
            raise ConfigError(
                f"reranker {model!r} could not be loaded ({exc}); offline, only local folders and models "
                "already in the Hugging Face cache work"
            ) from exc
        self.name = name
        self.batch_size = batch_size

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0, dtype=np.float32)
        scores = self.model.predict(
            [(query, p) for p in passages], batch_size=self.batch_size, show_progress_bar=False
        )
        return np.asarray(scores, dtype=np.float32).reshape(len(passages), -1)[:, -1]
