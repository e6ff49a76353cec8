"""Open an index and search it: dense, BM25, hybrid (weighted fusion, or plain RRF) and cross-encoder reranked.

Every retriever has the same batch call, ``retriever(mode).search(queries, k) -> Run`` (:mod:`.retriever`), so
the eval and the app go through the very code the CLI uses. ``Index.search`` is the single-query path with hits,
filters and timings; ``Index.rank`` and ``Index.rerank`` are the two stages both paths share. Rows come out of
SQLite or PostgreSQL (:mod:`indexer.storage.stores`) through :mod:`indexer.storage.catalog`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from indexer.config import IndexConfig, SearchConfig
from indexer.encoding.encoder import TextEncoder, check_encoder, encoder_for_index
from indexer.errors import QueryError
from indexer.retrieval.bm25 import BM25Index
from indexer.retrieval.dense import DenseIndex
from indexer.retrieval.fusion_model import FusionConfig, fusion_config
from indexer.retrieval.rerank import NO_RERANKER, Reranker
from indexer.search.columns import rerank_rankings
from indexer.search.hybrid import fuse_runs
from indexer.search.reading import Reading, open_generation
from indexer.search.retriever import Retriever
from indexer.storage import catalog
from indexer.storage.pg_vectors import PgDense
from indexer.storage.store import read_manifest
from indexer.storage.stores import FolderStore, Store, open_store
from indexer.tokens import count_tokens
from indexer.types import FusionWeights, Ranked, SearchMode, SearchResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Filters:
    lang: str | None = None
    file_type: str | None = None
    path_prefix: str | None = None

    def __bool__(self) -> bool:
        return bool(self.lang or self.file_type or self.path_prefix)


class Index:
    """A built index, opened for search. Cheap to open; the model and BM25 load on first use.

    >>> idx = Index.open(".e5search/sample")                      # doctest: +SKIP
    >>> idx.search("Wie funktioniert Photosynthese?", mode="dense").hits[0].doc_path  # doctest: +SKIP
    """

    def __init__(
        self,
        store: Store,
        manifest: dict,
        encoder: TextEncoder | None,
        reranker: Reranker | str | None,
        config: SearchConfig,
    ):
        self.store = store
        self.dir: Path | str = store.root if isinstance(store, FolderStore) else store.location
        self.config = config
        self.engine = store.engine(snapshot=True)
        self._encoder = encoder
        self._reranker = reranker
        self._switch = threading.Lock()
        self._gen = open_generation(store, manifest)

    # the current generation's parts (a query pins its own through :meth:`reading`)
    @property
    def manifest(self) -> dict:
        return self._gen.manifest

    @property
    def generation(self) -> int:
        return self._gen.number

    @property
    def dense(self) -> DenseIndex | PgDense:
        return self._gen.dense

    @property
    def bm25(self) -> BM25Index:
        with self.reading() as reading:
            return reading.bm25

    @contextmanager
    def reading(self) -> Iterator[Reading]:
        """One read transaction and the generation it saw, for one query: the chunks it ranks and the
        rows it hydrates belong to one commit, whatever an indexing run does meanwhile. A generation committed
        since the last query is loaded first (its files are there: a writer keeps the previous generation until
        its next run).
        """
        with Session(self.engine) as session:
            number = read_manifest(session).get("generation")  # the first read fixes the snapshot
            with self._switch:
                if number != self._gen.number:
                    logger.info("index %s: generation %s -> %s", self.dir, self._gen.number, number)
                    self._gen = open_generation(self.store, read_manifest(session))
                gen = self._gen
            yield Reading(session, gen)

    @classmethod
    def open(
        cls,
        index_dir: str | Path | Store,
        encoder: TextEncoder | None = None,
        reranker: Reranker | str | None = None,
        config: SearchConfig = SearchConfig(),
    ) -> Index:
        store = open_store(index_dir)  # a folder, or a PostgreSQL URL
        manifest = store.read_manifest()
        if encoder is not None:
            check_encoder(manifest, encoder)
        return cls(store, manifest, encoder, reranker, config)

    # ----------------------------------------------------------------- components, loaded on first use
    @property
    def index_config(self) -> IndexConfig:
        return IndexConfig.from_dict(self.manifest["config"])

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = encoder_for_index(self.manifest)
        return self._encoder

    @property
    def fusion(self) -> FusionConfig:
        """How hybrid fuses its lists: ``config.fusion`` with the shipped fitted weights."""
        return fusion_config(self.config.fusion, self.config.rrf_k)

    def use_encoder(self, encoder: TextEncoder) -> None:
        """Search with ``encoder`` (checked against the index's model and backend) instead of the index's own."""
        check_encoder(self.manifest, encoder)
        self._encoder = encoder

    @property
    def reranker(self) -> Reranker | None:
        if isinstance(self._reranker, str):
            self._reranker = Reranker(self._reranker)
        return self._reranker

    @property
    def has_reranker(self) -> bool:
        return self._reranker is not None

    def close(self) -> None:
        self.engine.dispose()

    # ----------------------------------------------------------------- retrieval primitives
    def _check_query(self, query: str, needs_model: bool) -> str:
        query = query.strip()
        if not query:
            raise QueryError("empty query: type a few words to search for")
        if len(query) > self.config.max_query_chars:
            raise QueryError(
                f"query is {len(query)} characters; the limit is {self.config.max_query_chars}. "
                "Shorten it to the words that matter"
            )
        if needs_model:
            enc = self.encoder
            n = count_tokens(enc.tokenizer, [enc.query_prompt + query])[0] + 2
            if n > enc.max_length:
                raise QueryError(f"query is {n} tokens; the model reads at most {enc.max_length}. Shorten it")
        return query

    def _allowed(self, filters: Filters | None, session: Session) -> np.ndarray | None:
        if not filters:
            return None
        from indexer.ingest.langdetect import KNOWN_LANGUAGES

        if filters.lang and filters.lang not in KNOWN_LANGUAGES:
            raise QueryError(f"unknown language {filters.lang!r}: use an ISO 639-1 code such as en, de, zh")
        ids = catalog.chunk_ids_where(session, filters.lang, filters.file_type, filters.path_prefix)
        return np.array(ids, dtype=np.int64)

    def _dense(
        self, dense: DenseIndex | PgDense, queries: Sequence[str], n: int, allowed: np.ndarray | None
    ) -> tuple[list[Ranked], float, float]:
        t0 = time.perf_counter()
        qv = self.encoder.encode_queries(list(queries))  # (n_queries, dim)
        t1 = time.perf_counter()
        if allowed is not None and len(allowed) == 0:
            return [[] for _ in queries], (t1 - t0) * 1e3, 0.0
        ids, scores = dense.search(qv, n, allowed)
        out = [
            [(int(i), float(s)) for i, s in zip(row_ids, row_s) if i >= 0]
            for row_ids, row_s in zip(ids, scores)
        ]
        return out, (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3

    @staticmethod
    def _bm25_search(
        bm25, queries: Sequence[str], n: int, lang: str | None, allowed: np.ndarray | None
    ) -> list[Ranked]:
        if allowed is not None:
            allowed_set = set(allowed.tolist())
            return [bm25.search(q, n, lang=lang, allowed_ids=allowed_set) for q in queries]
        if len(queries) == 1:
            return [bm25.search(queries[0], n, lang=lang)]
        return bm25.search_many(list(queries), n, langs=[lang] * len(queries) if lang else None)

    def rerank(self, query: str, ranked: Ranked, reading: Reading) -> Ranked:
        """The first ``config.rerank_top`` of ``ranked`` reordered by the cross-encoder; the rest as they were."""
        return rerank_rankings(self, query, [ranked], reading)[0]  # the one home of the rerank stage

    def rank(
        self,
        reading: Reading,
        queries: Sequence[str],
        mode: SearchMode,
        n: int,
        lang: str | None = None,
        allowed: np.ndarray | None = None,
        timings: dict[str, float] | None = None,
        weights: list[FusionWeights] | None = None,
    ) -> list[Ranked]:
        """Each query's top ``n`` chunks (at least ``config.candidates`` per retriever before fusion) as (chunk
        id, score), best first, in the generation ``reading`` pins. ``allowed`` restricts to those chunk ids;
        ``timings`` collects per-stage ms and, for hybrid, ``weights`` each query's fusion weights."""
        timings = {} if timings is None else timings
        dense_runs: list[Ranked] = []
        bm25_runs: list[Ranked] = []
        if mode in ("dense", "hybrid"):
            dense_runs, t_enc, t_search = self._dense(
                reading.dense, queries, max(n, self.config.candidates), allowed
            )
            timings["encode_query"] = t_enc
            timings["dense_search"] = t_search
        if mode in ("bm25", "hybrid"):
            t0 = time.perf_counter()
            bm25_runs = self._bm25_search(
                reading.bm25, queries, max(n, self.config.candidates), lang, allowed
            )
            timings["bm25_search"] = (time.perf_counter() - t0) * 1e3
        if mode == "dense":
            return dense_runs
        if mode == "bm25":
            return bm25_runs
        t0 = time.perf_counter()
        fused = fuse_runs(reading, queries, dense_runs, bm25_runs, self.fusion)
        timings["fuse"] = (time.perf_counter() - t0) * 1e3
        if weights is not None:
            weights.extend(w for _, w in fused)
        return [ranked for ranked, _ in fused]

    # ----------------------------------------------------------------- public search API
    def search(
        self,
        query: str,
        mode: SearchMode = "hybrid",
        k: int = 10,
        rerank: bool = False,
        lang: str | None = None,
        filters: Filters | None = None,
    ) -> SearchResult:
        """One query, with hits hydrated from SQLite and per-stage timings in milliseconds.

        ``lang`` restricts results to chunks in that language (and analyses the BM25 query in it).
        """
        if mode not in ("dense", "bm25", "hybrid"):
            raise QueryError(f"mode={mode!r}: use dense, bm25 or hybrid")
        if k < 1:
            raise QueryError(f"k={k}: must be at least 1")
        if rerank and not self.has_reranker:
            raise QueryError(NO_RERANKER)
        query = self._check_query(query, needs_model=mode != "bm25")
        filters = Filters(
            lang=lang or (filters.lang if filters else None),
            file_type=filters.file_type if filters else None,
            path_prefix=filters.path_prefix if filters else None,
        )
        timings: dict[str, float] = {}
        weights: list[FusionWeights] = []
        t_all = time.perf_counter()
        with self.reading() as reading:
            allowed = self._allowed(filters, reading.session)
            ranked = self.rank(reading, [query], mode, k, filters.lang, allowed, timings, weights)[0]
            before = {cid: r for r, (cid, _) in enumerate(ranked, start=1)}
            if rerank:
                t0 = time.perf_counter()
                ranked = self.rerank(query, ranked, reading)
                timings["rerank"] = (time.perf_counter() - t0) * 1e3
            t0 = time.perf_counter()
            hits = catalog.hits(reading.session, ranked[:k], before if rerank else None)
            timings["hydrate"] = (time.perf_counter() - t0) * 1e3
        timings["total"] = (time.perf_counter() - t_all) * 1e3
        fusion = weights[0] if weights else None
        return SearchResult(query, mode, rerank, hits, timings, fusion)

    def retriever(self, mode: SearchMode, rerank: bool = False) -> Retriever:
        if rerank and not self.has_reranker:
            raise QueryError(NO_RERANKER)
        return Retriever(self, mode, rerank)

    # ----------------------------------------------------------------- reading chunks and documents
    @staticmethod
    def doc_keys(reading: Reading) -> dict[int, str]:
        """chunk id → document key (external id, else path) in ``reading``'s generation, for document runs."""
        if reading.gen.doc_keys is None:
            reading.gen.doc_keys = catalog.doc_keys(reading.session)
        return reading.gen.doc_keys

    def chunk(self, chunk_id: int, neighbours: int = 0) -> dict:
        """A chunk with its document's metadata and up to ``neighbours`` chunks either side."""
        with self.reading() as reading:
            return catalog.chunk(reading.session, chunk_id, neighbours)

    def stats(self) -> dict:
        """Counts, languages, file types, sizes on disk and skipped files, for ``e5search info`` and the app."""
        with self.reading() as reading:
            counts = catalog.counts(reading.session)
            dense, sizes = reading.dense, self.store.size_on_disk(reading.session)
            n_vectors = len(dense)
        return {
            "index": str(self.dir),
            **{k: counts[k] for k in ("files", "documents", "chunks")},
            "vectors": n_vectors,
            "dense_kind": dense.kind,
            "faiss_device": dense.device,
            **{k: counts[k] for k in ("chunk_languages", "document_languages", "file_types", "skipped")},
            "model": self.manifest.get("model"),
            "source_root": self.manifest.get("source_root"),
            "config": self.manifest.get("config"),
            "versions": self.manifest.get("versions"),
            "generation": self.manifest.get("generation"),
            "updated_at": self.manifest.get("updated_at"),
            "sizes_on_disk": sizes,
        }
