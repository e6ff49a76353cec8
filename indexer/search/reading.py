"""What one query reads: a generation's files, loaded together, and a SQLite snapshot of the same commit.

An indexing run commits generation N+1 while readers are open. A :class:`Reading` pairs one SQLite read
transaction (WAL: a consistent snapshot however long the query takes) with the :class:`Generation` whose number
that snapshot's manifest names, so a query never ranks with one generation's vectors and hydrates another's rows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy.orm import Session

from indexer.retrieval.dense import DenseIndex
from indexer.storage.layout import Layout


class Generation:
    """The files of one generation, loaded together: what a query ranks with while its snapshot lasts."""

    def __init__(self, layout: Layout, manifest: dict):
        gen = manifest["generation"]
        ef = manifest["config"].get("hnsw_ef_search", 128)
        self.layout, self.manifest = layout, manifest
        self.dense = DenseIndex.load(layout.dense(gen), layout.hnsw(gen), ef_search=ef)
        self.dense.to_gpu()
        self._bm25 = None
        self._lock = threading.Lock()
        self.doc_keys: dict[int, str] | None = None

    @property
    def number(self) -> int:
        return int(self.manifest["generation"])

    @property
    def bm25(self):
        with self._lock:
            if self._bm25 is None:
                from indexer.retrieval.bm25 import BM25Index

                folder = self.layout.bm25(self.number)
                if not folder.is_dir():
                    raise self.layout.damaged(folder, "missing")
                self._bm25 = BM25Index.load(folder)
            return self._bm25


@dataclass
class Reading:
    """One query's view of the index: a SQLite session (one snapshot) and the generation it pins."""

    session: Session
    gen: Generation
