"""Open an index and search it: dense, BM25, hybrid (RRF) and cross-encoder reranked.

Every retriever has the same batch call, ``retriever(mode).search(queries, k) -> Run``, so the eval and the app
go through the very code the CLI uses. ``Index.search`` is the single-query path with hits, filters and timings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from indexer.config import IndexConfig, SearchConfig
from indexer.encoding.encoder import TextEncoder
from indexer.errors import IndexStateError, QueryError
from indexer.retrieval.dense import DenseIndex
from indexer.retrieval.fusion import rrf
from indexer.retrieval.rerank import NO_RERANKER, Reranker
from indexer.search.retriever import Retriever
from indexer.storage.layout import Layout
from indexer.storage.store import ChunkRow, DocumentRow, FileRow, open_engine, read_manifest
from indexer.tokens import count_tokens
from indexer.types import Hit, Ranked, SearchMode, SearchResult


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

    def __init__(self, index_dir: Path, manifest: dict, encoder: TextEncoder | None,
                 reranker: Reranker | str | None, config: SearchConfig):
        self.dir = index_dir
        self.layout = Layout(index_dir)
        self.manifest = manifest
        self.config = config
        self.engine = open_engine(index_dir)
        self._encoder = encoder
        self._reranker = reranker
        self._bm25 = None
        gen = manifest["generation"]
        self.dense = DenseIndex.load(self.layout.dense(gen), self.layout.hnsw(gen),
                                     ef_search=manifest["config"].get("hnsw_ef_search", 128))
        self.dense.to_gpu()
        self._doc_keys: dict[int, str] | None = None

    @classmethod
    def open(cls, index_dir: str | Path, encoder: TextEncoder | None = None, reranker: Reranker | str | None = None,
             config: SearchConfig = SearchConfig()) -> Index:
        index_dir = Path(index_dir).expanduser()
        layout = Layout(index_dir)
        if not layout.exists():
            raise IndexStateError(f"no index at {index_dir}: run `e5search index FOLDER --index {index_dir}` first")
        engine = open_engine(index_dir)
        try:
            if not inspect(engine).has_table("manifest"):
                raise IndexStateError(f"{layout.db} is not an e5search index (no manifest table)")
            with Session(engine) as session:
                manifest = read_manifest(session)
        finally:
            engine.dispose()
        if not manifest.get("generation"):
            raise IndexStateError(f"index at {index_dir} was never completed: run `e5search index` again")
        if encoder is not None:
            _check_encoder(manifest, encoder)
        return cls(index_dir, manifest, encoder, reranker, config)

    # ----------------------------------------------------------------- components, loaded on first use
    @property
    def index_config(self) -> IndexConfig:
        return IndexConfig.from_dict(self.manifest["config"])

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            from indexer.encoding.backends import backend_for_index
            from indexer.encoding.encoder import Encoder

            encoder = Encoder(backend_for_index(self.index_config.model, self.manifest.get("model")))
            _check_encoder(self.manifest, encoder)
            self._encoder = encoder
        return self._encoder

    def use_encoder(self, encoder: TextEncoder) -> None:
        """Search with ``encoder`` (checked against the index's model and backend) instead of the index's own."""
        _check_encoder(self.manifest, encoder)
        self._encoder = encoder

    @property
    def bm25(self):
        if self._bm25 is None:
            from indexer.retrieval.bm25 import BM25Index

            self._bm25 = BM25Index.load(self.layout.bm25(self.manifest["generation"]))
        return self._bm25

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
            raise QueryError(f"query is {len(query)} characters; the limit is {self.config.max_query_chars}. "
                             "Shorten it to the words that matter")
        if needs_model:
            enc = self.encoder
            n = count_tokens(enc.tokenizer, [enc.query_prompt + query])[0] + 2
            if n > enc.max_length:
                raise QueryError(f"query is {n} tokens; the model reads at most {enc.max_length}. Shorten it")
        return query

    def _allowed(self, filters: Filters | None) -> np.ndarray | None:
        if not filters:
            return None
        from indexer.ingest.langdetect import KNOWN_LANGUAGES

        if filters.lang and filters.lang not in KNOWN_LANGUAGES:
            raise QueryError(f"unknown language {filters.lang!r}: use an ISO 639-1 code such as en, de, zh")
        stmt = select(ChunkRow.id).join(DocumentRow)
        if filters.lang:
            stmt = stmt.where(ChunkRow.lang == filters.lang)
        if filters.file_type:
            stmt = stmt.where(DocumentRow.file_type == filters.file_type.lstrip(".").lower())
        if filters.path_prefix:
            stmt = stmt.where(DocumentRow.path.startswith(filters.path_prefix.lstrip("/"), autoescape=True))
        with Session(self.engine) as session:
            return np.array(sorted(session.scalars(stmt)), dtype=np.int64)

    def _dense(self, queries: Sequence[str], n: int, allowed: np.ndarray | None) -> tuple[list[Ranked], float, float]:
        t0 = time.perf_counter()
        qv = self.encoder.encode_queries(list(queries))  # (n_queries, dim)
        t1 = time.perf_counter()
        if allowed is not None and len(allowed) == 0:
            return [[] for _ in queries], (t1 - t0) * 1e3, 0.0
        ids, scores = self.dense.search(qv, n, allowed)
        out = [[(int(i), float(s)) for i, s in zip(row_ids, row_s) if i >= 0] for row_ids, row_s in zip(ids, scores)]
        return out, (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3

    def _bm25_search(self, queries: Sequence[str], n: int, lang: str | None, allowed: np.ndarray | None) -> list[Ranked]:
        if allowed is not None:
            allowed_set = set(allowed.tolist())
            return [self.bm25.search(q, n, lang=lang, allowed_ids=allowed_set) for q in queries]
        if len(queries) == 1:
            return [self.bm25.search(queries[0], n, lang=lang)]
        return self.bm25.search_many(list(queries), n, langs=[lang] * len(queries) if lang else None)

    def _rerank(self, query: str, ranked: Ranked) -> Ranked:
        reranker = self.reranker
        if reranker is None:
            raise QueryError(NO_RERANKER)
        head = ranked[: self.config.rerank_top]
        passages = self._passages([cid for cid, _ in head])
        scores = reranker.score(query, [passages[cid] for cid, _ in head])
        order = np.argsort(-scores, kind="stable")
        return [(head[i][0], float(scores[i])) for i in order] + ranked[self.config.rerank_top:]

    def _ranked(self, queries: Sequence[str], mode: SearchMode, n: int, lang: str | None,
                allowed: np.ndarray | None, timings: dict[str, float]) -> list[Ranked]:
        dense_runs: list[Ranked] = []
        bm25_runs: list[Ranked] = []
        if mode in ("dense", "hybrid"):
            dense_runs, t_enc, t_search = self._dense(queries, max(n, self.config.candidates), allowed)
            timings["encode_query"] = t_enc
            timings["dense_search"] = t_search
        if mode in ("bm25", "hybrid"):
            t0 = time.perf_counter()
            bm25_runs = self._bm25_search(queries, max(n, self.config.candidates), lang, allowed)
            timings["bm25_search"] = (time.perf_counter() - t0) * 1e3
        if mode == "dense":
            return dense_runs
        if mode == "bm25":
            return bm25_runs
        t0 = time.perf_counter()
        fused = [rrf([[c for c, _ in d], [c for c, _ in b]], k=self.config.rrf_k) for d, b in zip(dense_runs, bm25_runs)]
        timings["fuse"] = (time.perf_counter() - t0) * 1e3
        return fused

    # ----------------------------------------------------------------- public search API
    def search(self, query: str, mode: SearchMode = "hybrid", k: int = 10, rerank: bool = False,
               lang: str | None = None, filters: Filters | None = None) -> SearchResult:
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
        filters = Filters(lang=lang or (filters.lang if filters else None),
                          file_type=filters.file_type if filters else None,
                          path_prefix=filters.path_prefix if filters else None)
        timings: dict[str, float] = {}
        t_all = time.perf_counter()
        allowed = self._allowed(filters)
        ranked = self._ranked([query], mode, k, filters.lang, allowed, timings)[0]
        before = {cid: r for r, (cid, _) in enumerate(ranked, start=1)}
        if rerank:
            t0 = time.perf_counter()
            ranked = self._rerank(query, ranked)
            timings["rerank"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        hits = self._hits(ranked[:k], before if rerank else None)
        timings["hydrate"] = (time.perf_counter() - t0) * 1e3
        timings["total"] = (time.perf_counter() - t_all) * 1e3
        return SearchResult(query=query, mode=mode, reranked=rerank, hits=hits, timings_ms=timings)

    def retriever(self, mode: SearchMode, rerank: bool = False) -> Retriever:
        if rerank and not self.has_reranker:
            raise QueryError(NO_RERANKER)
        return Retriever(self, mode, rerank)

    # ----------------------------------------------------------------- reading chunks and documents
    def _passages(self, chunk_ids: Sequence[int]) -> dict[int, str]:
        from indexer.ingest.chunking import passage_text

        with Session(self.engine) as session:
            rows = session.execute(
                select(ChunkRow.id, ChunkRow.text, ChunkRow.heading_path, DocumentRow.title)
                .join(DocumentRow).where(ChunkRow.id.in_(list(chunk_ids)))
            ).all()
        return {r[0]: passage_text(r[3], tuple(json.loads(r[2])), r[1]) for r in rows}

    def _hits(self, ranked: Ranked, before: dict[int, int] | None) -> list[Hit]:
        with Session(self.engine) as session:
            rows = {c.id: c for c in session.scalars(
                select(ChunkRow).where(ChunkRow.id.in_([cid for cid, _ in ranked])))}
            hits = []
            for rank, (cid, score) in enumerate(ranked, start=1):
                c = rows.get(cid)
                if c is None:  # the index changed under us; skip rather than show a ghost
                    continue
                d = c.document
                hits.append(Hit(rank=rank, score=score, chunk_id=cid, doc_path=d.path, title=d.title, text=c.text,
                                lang=c.lang, heading_path=c.headings, doc_id=d.external_id,
                                prev_rank=before.get(cid) if before is not None else None))
        return hits

    def doc_keys(self) -> dict[int, str]:
        """chunk id → document key (external id, else path), for document-level runs."""
        if self._doc_keys is None:
            with Session(self.engine) as session:
                rows = session.execute(select(ChunkRow.id, DocumentRow.external_id, DocumentRow.path).join(DocumentRow))
                self._doc_keys = {cid: ext if ext is not None else path for cid, ext, path in rows}
        return self._doc_keys

    def chunk(self, chunk_id: int, neighbours: int = 0) -> dict:
        """A chunk with its document's metadata and up to ``neighbours`` chunks either side."""
        with Session(self.engine) as session:
            c = session.get(ChunkRow, chunk_id)
            if c is None:
                raise IndexStateError(f"chunk {chunk_id} is not in this index")
            d = c.document
            near = session.scalars(select(ChunkRow).where(
                ChunkRow.document_id == d.id,
                ChunkRow.ordinal.between(c.ordinal - neighbours, c.ordinal + neighbours)).order_by(ChunkRow.ordinal))
            return {
                "chunk_id": c.id, "text": c.text, "heading_path": list(c.headings), "lang": c.lang,
                "start": c.start, "end": c.end, "ordinal": c.ordinal,
                "neighbours": [{"chunk_id": n.id, "ordinal": n.ordinal, "text": n.text} for n in near if n.id != c.id],
                "document": {"path": d.path, "title": d.title, "lang": d.lang, "file_type": d.file_type,
                             "external_id": d.external_id, "n_chars": d.n_chars, "n_chunks": len(d.chunks),
                             "size": d.file.size, "mtime": d.file.mtime, "content_hash": d.file.content_hash},
            }

    def stats(self) -> dict:
        """Counts, languages, file types, sizes on disk and skipped files, for ``e5search info`` and the app."""
        from sqlalchemy import func

        with Session(self.engine) as session:
            langs = dict(session.execute(select(ChunkRow.lang, func.count()).group_by(ChunkRow.lang)).all())
            doc_langs = dict(session.execute(select(DocumentRow.lang, func.count()).group_by(DocumentRow.lang)).all())
            types = dict(session.execute(select(DocumentRow.file_type, func.count()).group_by(DocumentRow.file_type)).all())
            skipped = [{"path": f.path, "reason": f.reason} for f in
                       session.scalars(select(FileRow).where(FileRow.status == "skipped").order_by(FileRow.path))]
            n_files = session.scalar(select(func.count()).select_from(FileRow).where(FileRow.status == "indexed"))
            n_docs = session.scalar(select(func.count()).select_from(DocumentRow))
            n_chunks = session.scalar(select(func.count()).select_from(ChunkRow))
        return {
            "index": str(self.dir), "files": n_files, "documents": n_docs, "chunks": n_chunks,
            "vectors": len(self.dense), "dense_kind": self.dense.kind, "faiss_device": self.dense.device, "chunk_languages": langs,
            "document_languages": doc_langs, "file_types": types, "skipped": skipped,
            "model": self.manifest.get("model"), "source_root": self.manifest.get("source_root"),
            "config": self.manifest.get("config"), "versions": self.manifest.get("versions"),
            "generation": self.manifest.get("generation"), "updated_at": self.manifest.get("updated_at"),
            "sizes_on_disk": self.layout.size_on_disk(),
        }


def _check_encoder(manifest: dict, encoder: TextEncoder) -> None:
    from indexer.encoding.backends import mismatch_hint

    model = manifest.get("model", {})
    if model.get("fingerprint") != encoder.fingerprint or model.get("dim") != encoder.dim:
        hint = mismatch_hint(model, getattr(encoder, "model_fingerprint", None))
        raise IndexStateError(
            f"this index was built with model {model.get('model')!r} (fingerprint {model.get('fingerprint')}, "
            f"dim {model.get('dim')}); refusing to search it with {encoder.name!r} ({encoder.fingerprint}, "
            f"dim {encoder.dim})."
            + (hint or " Use the index's own model (omit --model) or re-index with the new one")
        )
