"""Batch retrieval over documents: ``Retriever.search(queries, k) -> Run``, the call the eval and CI share.

A document's score is its best chunk's; the chunk ranking is :meth:`indexer.search.index.Index.rank` (and
``rerank`` for ``+rerank`` retrievers), the very code single searches use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from indexer.types import Queries, Run, SearchMode

if TYPE_CHECKING:  # the Index makes Retrievers; a Retriever only holds one
    from indexer.search.index import Index


class Retriever:
    """Batch retrieval over documents: ``search(queries, k) -> Run`` keyed by document key."""

    def __init__(self, index: Index, mode: SearchMode, rerank: bool):
        self.index = index
        self.mode = mode
        self.rerank = rerank
        self.name = f"{mode}+rerank" if rerank else mode

    def search(self, queries: Queries, k: int = 100) -> Run:
        qids = list(queries)
        texts = [queries[q] for q in qids]
        n_chunks = min(max(2 * k, self.index.config.candidates), max(1, len(self.index.dense)))
        with self.index.reading() as reading:
            ranked = self.index.rank(reading, texts, self.mode, n_chunks) if qids else []
            if self.rerank:
                ranked = [self.index.rerank(t, r, reading) for t, r in zip(texts, ranked)]
            keys = self.index.doc_keys(reading)
        run: Run = {}
        for qid, chunks in zip(qids, ranked):
            docs: dict[str, float] = {}
            for cid, score in chunks:  # best first: a document's score is its best chunk's
                key = keys.get(cid)
                if key is not None and key not in docs:
                    docs[key] = score
                if len(docs) >= k:
                    break
            run[qid] = docs
        return run
