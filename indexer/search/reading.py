"""What one query reads: a generation's dense and BM25 indexes, and a snapshot of the same commit.

An indexing run commits generation N+1 while readers are open. A :class:`Reading` pairs one read transaction
(SQLite in WAL mode, or PostgreSQL at REPEATABLE READ: a consistent snapshot however long the query takes) with
the generation whose number that snapshot's manifest names, so a query never ranks with one generation's vectors
and hydrates another's rows.

- A folder index's :class:`Generation` loads that generation's FAISS and BM25 files together.
- A PostgreSQL index's :class:`PgGeneration` searches vectors in the snapshot itself, and derives BM25 from the
  snapshot's chunks once per generation, cached on this machine's disk keyed by (store identity, generation),
  so every replica ranks BM25 over exactly the chunks its dense search sees (see the README for why).
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from indexer.build.write import all_passages
from indexer.cache import staged_folder
from indexer.config import IndexConfig, ef_search_of
from indexer.retrieval.bm25 import SIDECAR, BM25Index
from indexer.retrieval.dense import DenseIndex
from indexer.storage.layout import Layout
from indexer.storage.pg import PgStore
from indexer.storage.pg_vectors import PgDense
from indexer.storage.stores import FolderStore, Store

logger = logging.getLogger(__name__)
_LOCAL_BM25 = re.compile(r"^bm25-(\d{6})$")


class _Generation:
    """What both kinds of generation hold: the manifest, the doc-key memo and a BM25 index loaded once."""

    def __init__(self, manifest: dict):
        self.manifest = manifest
        self._bm25: BM25Index | None = None
        self._lock = threading.Lock()
        self.doc_keys: dict[int, str] | None = None

    @property
    def number(self) -> int:
        return int(self.manifest["generation"])

    def _bm25_once(self, load: Callable[[], BM25Index]) -> BM25Index:
        with self._lock:
            if self._bm25 is None:
                self._bm25 = load()
            return self._bm25


class Generation(_Generation):
    """The files of one generation, loaded together: what a query ranks with while its snapshot lasts."""

    def __init__(self, layout: Layout, manifest: dict):
        super().__init__(manifest)
        gen = manifest["generation"]
        self.layout = layout
        self.dense = DenseIndex.load(layout.dense(gen), layout.hnsw(gen), ef_search=ef_search_of(manifest))
        self.dense.to_gpu()

    @property
    def bm25(self) -> BM25Index:
        return self._bm25_once(self._load_bm25)

    def _load_bm25(self) -> BM25Index:
        folder = self.layout.bm25(self.number)
        if not folder.is_dir():
            raise self.layout.damaged(folder, "missing")
        return BM25Index.load(folder)

    def dense_in(self, session: Session) -> DenseIndex:
        return self.dense

    def bm25_in(self, session: Session) -> BM25Index:
        return self.bm25


class PgGeneration(_Generation):
    """One generation of a PostgreSQL index: vectors searched in each query's snapshot, BM25 derived locally."""

    def __init__(self, store: PgStore, manifest: dict):
        super().__init__(manifest)
        self.store = store
        self.dense = PgDense(None, manifest)  # len and kind; searches go through dense_in

    def dense_in(self, session: Session) -> PgDense:
        return PgDense(session, self.manifest)

    def bm25_in(self, session: Session) -> BM25Index:
        """This generation's BM25, from the local cache, else built from the chunks ``session`` sees (a
        snapshot whose manifest names this generation, so the chunks are exactly this generation's)."""
        return self._bm25_once(lambda: self._local_bm25(session))

    def _local_bm25(self, session: Session) -> BM25Index:
        folder = self.store.local_dir(self.manifest) / f"bm25-{self.number:06d}"

        def finished() -> bool:
            return (folder / SIDECAR).is_file()

        if not finished():
            config = IndexConfig.from_dict(self.manifest["config"])
            ids, texts, langs, _ = all_passages(session)
            with staged_folder(folder, finished) as staging:
                BM25Index.build(ids, texts, langs, k1=config.bm25_k1, b=config.bm25_b).save(staging)
            logger.info("%s: BM25 of generation %d derived (%d chunks)", self.store, self.number, len(ids))
            _remove_local(folder.parent, keep={self.number - 1, self.number})
        return BM25Index.load(folder)


def _remove_local(parent: Path, keep: set[int]) -> None:
    """Older generations' local BM25 folders (the one before stays for readers still on it)."""
    for path in parent.iterdir():
        m = _LOCAL_BM25.match(path.name)
        if m and int(m.group(1)) < min(keep):
            shutil.rmtree(path, ignore_errors=True)


def open_generation(store: Store, manifest: dict) -> Generation | PgGeneration:
    if isinstance(store, FolderStore):
        return Generation(store.layout, manifest)
    return PgGeneration(store, manifest)


@dataclass
class Reading:
    """One query's view of the index: a session (one snapshot) and the generation it pins."""

    session: Session
    gen: Generation | PgGeneration

    @property
    def dense(self) -> DenseIndex | PgDense:
        return self.gen.dense_in(self.session)

    @property
    def bm25(self) -> BM25Index:
        return self.gen.bm25_in(self.session)
