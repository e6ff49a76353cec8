"""The index a server answers from: opened once, its models loaded once, shared by the server's threads.

Which parts are safe from several threads at once, and why only the models get a lock:

- ``Index.reading()`` pins one SQLite snapshot and the generation it names per query, and switches to a newer
  generation (committed by this server's job or by ``e5search index`` in another process) under its own lock,
  so concurrent queries each see one whole generation and new queries see the newest. FAISS searches and
  BM25 retrieval only read. SQLAlchemy gives each query its own pooled connection.
- The models get one lock (:class:`SerialEncoder`: encoding and tokenizer calls; :class:`SerialReranker`). A fast
  tokenizer called from two threads with different truncation settings (``Index.search`` counts a query's
  tokens untruncated while the model's own call truncates) has failed with "Already borrowed" in earlier
  tokenizers releases, which is why the indexing reader takes its own copy (:mod:`indexer.build.scan`). Not
  reproduced with tokenizers 0.23.3 (900 mixed calls from 6 threads), so the lock is insurance, and on CPU it
  costs nothing measurable: one encoding already keeps every core busy (``python bench/serve_throughput.py
  --compare-lock``: with and without the lock within the noise of a shared 2-core machine, bench/results/
  serve.md). An indexing job's encoding takes the same lock a group of chunks at a time, so a query waits at
  most one group.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from e5search.records import info_record, search_record
from indexer.config import SearchConfig
from indexer.encoding.encoder import TextEncoder
from indexer.errors import ConfigError
from indexer.retrieval.rerank import Reranker
from indexer.search.index import Filters, Index
from indexer.types import SearchMode

logger = logging.getLogger(__name__)


class _SerialTokenizer:
    """A tokenizer whose calls hold ``lock``; everything else is the tokenizer's own. A deep copy is a private
    tokenizer (the indexing reader takes one for its thread) and needs no lock."""

    def __init__(self, inner, lock: threading.RLock):
        self._inner, self._lock = inner, lock

    def __call__(self, *args, **kwargs):
        with self._lock:
            return self._inner(*args, **kwargs)

    def __getattr__(self, name: str):
        if name.startswith("_"):  # not delegated: a half-built copy must not recurse looking for _inner
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __deepcopy__(self, memo: dict):
        return copy.deepcopy(self._inner, memo)


class SerialEncoder:
    """A :class:`TextEncoder` used by one thread at a time (model and tokenizer); the rest is the encoder's."""

    def __init__(self, inner: TextEncoder, lock: threading.RLock):
        self._inner, self._lock = inner, lock
        self._tokenizer = _SerialTokenizer(inner.tokenizer, lock)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    @property
    def tokenizer(self) -> _SerialTokenizer:
        return self._tokenizer

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self._inner.encode_queries(texts)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        with self._lock:
            return self._inner.encode_passages(texts, show_progress)


class SerialReranker:
    """A cross-encoder loaded on first use and scored by one thread at a time."""

    def __init__(self, name: str, lock: threading.RLock):
        self.name, self._lock = name, lock
        self._model: Reranker | None = None

    def _loaded(self) -> Reranker:
        with self._lock:
            if self._model is None:
                self._model = Reranker(self.name)
            return self._model

    @property
    def interpolation(self) -> float:
        return self._loaded().interpolation

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self._loaded().score(query, passages)


@dataclass(frozen=True)
class Query:
    """One query of a request: its text and, in a batch, the caller's id for it."""

    text: str
    qid: str | None = None


def open_index(
    location: str,
    encoder: TextEncoder | None = None,
    reranker: SerialReranker | None = None,
    config: SearchConfig = SearchConfig(),
) -> Index:
    """The one place the server opens its index; ``location`` is passed on as given (a folder today)."""
    return Index.open(location, encoder=encoder, reranker=reranker, config=config)  # type: ignore[arg-type]


class ServedIndex:
    """The served index and its models, opened once. :meth:`search` and :meth:`info` answer the routes."""

    def __init__(
        self,
        location: str,
        encoder: TextEncoder | None = None,
        reranker: str | None = None,
        config: SearchConfig = SearchConfig(),
    ):
        self.location = location
        self.model_lock = threading.RLock()
        serial_reranker = SerialReranker(reranker, self.model_lock) if reranker else None
        self.index = open_index(location, encoder, serial_reranker, config)
        self.encoder = SerialEncoder(self.index.encoder, self.model_lock)  # loads the index's model once
        self.index.use_encoder(self.encoder)

    def warm_up(self) -> None:
        """Load now what the first query would (BM25 files, the language identifier, the model's first pass)."""
        self.index.bm25.query_terms("warm up")
        self.encoder.encode_queries(["warm up"])

    def search(
        self,
        queries: Sequence[Query],
        mode: SearchMode = "hybrid",
        k: int = 10,
        rerank: bool = False,
        filters: Filters | None = None,
    ) -> list[dict]:
        """Each query's record, exactly as ``e5search search --json`` prints it (with ``_id`` in a batch)."""
        return [
            search_record(self.index.search(q.text, mode=mode, k=k, rerank=rerank, filters=filters), q.qid)
            for q in queries
        ]

    def info(self) -> dict:
        return info_record(self.index)

    def source_root(self) -> str:
        """The folder the index holds files from (what ``POST /index`` re-indexes by default)."""
        root = self.index.manifest.get("source_root")
        if not root:
            raise ConfigError(f"the index at {self.location} records no source folder: give a path to index")
        return str(root)

    def close(self) -> None:
        self.index.close()
