"""Cross-encoder reranking over a retriever's top candidates.

Any sentence-transformers ``CrossEncoder`` folder or hub id works. No cross-encoder ships with the product
offline, so asking to rerank without one configured is an error, never a silent no-op.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from indexer.errors import ConfigError

logger = logging.getLogger(__name__)

NO_RERANKER = (
    "no reranker configured: pass --reranker with a sentence-transformers CrossEncoder folder or hub id "
    "(or set E5SEARCH_RERANKER); e5search ships none offline"
)


def default_reranker() -> str | None:
    """The reranker named by ``E5SEARCH_RERANKER``, if any."""
    return os.environ.get("E5SEARCH_RERANKER") or None


class Reranker:
    def __init__(self, model: str, device: str | None = None, batch_size: int = 32, max_length: int | None = None):
        """``max_length``: input tokens per (query, passage); None takes the model folder's own (else 512)."""
        from sentence_transformers import CrossEncoder

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
        self.name = model
        self.batch_size = batch_size

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0, dtype=np.float32)
        scores = self.model.predict(
            [(query, p) for p in passages], batch_size=self.batch_size, show_progress_bar=False
        )
        return np.asarray(scores, dtype=np.float32).reshape(len(passages), -1)[:, -1]
