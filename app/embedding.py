"""Embedding helpers for the app: one query encoding per search, and the dense column's best sentence.

The best sentence of a hit is found by encoding its sentences as passages and taking the one closest to the
query; sentence embeddings are remembered (LRU), so a hit seen before costs nothing. Only shown hits are
encoded, in one batch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from app.highlight import sentence_spans
from indexer.encoding.encoder import TextEncoder

MAX_SENTENCES = 16  # per hit; a longer chunk keeps its first sentences


class QueryMemo:
    """An encoder that remembers its last query embeddings, so the dense and hybrid columns and the sentence
    highlighting of one search encode the query once. Passages go straight through."""

    def __init__(self, encoder: TextEncoder, size: int = 64):
        self.inner = encoder
        self.name, self.fingerprint, self.dim = encoder.name, encoder.fingerprint, encoder.dim
        self.model_fingerprint, self.cache_key = encoder.model_fingerprint, encoder.cache_key
        self.max_length = encoder.max_length
        self.query_prompt, self.passage_prompt = encoder.query_prompt, encoder.passage_prompt
        self._size = size
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def tokenizer(self):
        return self.inner.tokenizer

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if missing:
            vecs = self.inner.encode_queries(missing)  # (n_missing, dim)
            with self._lock:
                self._memo.update(zip(missing, vecs, strict=True))
        with self._lock:
            out = np.stack([self._memo[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
            while len(self._memo) > self._size:
                self._memo.popitem(last=False)
        return out

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self.inner.encode_passages(texts, show_progress=show_progress)

    @property
    def on_gpu(self) -> bool:
        return self.inner.on_gpu

    def describe(self) -> dict:
        return self.inner.describe()


_sentence_cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_sentence_lock = threading.Lock()
_SENTENCE_CACHE_SIZE = 50_000


def _cached(encoder: TextEncoder, sentences: list[str]) -> bool:
    with _sentence_lock:
        return all((encoder.fingerprint, s) in _sentence_cache for s in sentences)


def _sentence_vectors(encoder: TextEncoder, sentences: list[str]) -> np.ndarray:
    """Passage embeddings of ``sentences``, each computed once per process (LRU)."""
    keys = [(encoder.fingerprint, s) for s in sentences]
    with _sentence_lock:
        missing = list(dict.fromkeys(k for k in keys if k not in _sentence_cache))
    if missing:
        vecs = encoder.encode_passages([s for _, s in missing])  # (n_missing, dim)
        with _sentence_lock:
            _sentence_cache.update(zip(missing, vecs, strict=True))
            while len(_sentence_cache) > _SENTENCE_CACHE_SIZE:
                _sentence_cache.popitem(last=False)
    with _sentence_lock:
        return (
            np.stack([_sentence_cache[k] for k in keys]) if keys else np.zeros((0, encoder.dim), np.float32)
        )


def best_sentences(
    encoder: TextEncoder, query: str, texts: Sequence[str], only_cached: bool = False
) -> list[tuple[int, int] | None]:
    """For each text of several sentences, the span of the one closest to ``query`` in embedding space.

    The sentences of all texts are encoded in one batch and remembered; ``only_cached`` skips texts whose
    sentences were never encoded (the hybrid column reuses the dense column's work and adds none).
    """
    spans = [sentence_spans(t)[:MAX_SENTENCES] for t in texts]
    sentences = {i: [texts[i][a:b] for a, b in s] for i, s in enumerate(spans) if len(s) > 1}
    if only_cached:
        sentences = {i: sents for i, sents in sentences.items() if _cached(encoder, sents)}
    out: list[tuple[int, int] | None] = [None] * len(texts)
    if not sentences:
        return out
    flat = [s for sents in sentences.values() for s in sents]
    sims = _sentence_vectors(encoder, flat) @ encoder.encode_queries([query])[0]  # (n_sentences,)
    pos = 0
    for i, sents in sentences.items():
        out[i] = spans[i][int(np.argmax(sims[pos : pos + len(sents)]))]
        pos += len(sents)
    return out
