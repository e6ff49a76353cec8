"""FAISS vector index keyed by chunk id.

The exact index (``IndexIDMap2`` over ``IndexFlatIP``) is the source of truth for vectors and supports removal.
Above ``ann_threshold`` chunks (or when asked) an HNSW graph is built from it for search; HNSW cannot remove
vectors, so it is rebuilt from the exact index on each indexing run that changes it. Vectors are L2-normalised,
so inner product is cosine similarity.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

import faiss as _faiss
import numpy as np

from indexer.storage.layout import Layout

# faiss's generated stubs do not describe its Python API (array overloads, SearchParameters(sel=...))
faiss: Any = _faiss


Kind = Literal["flat", "hnsw"]


def gpu_available() -> bool:
    """True when the installed faiss build has GPU support and sees a GPU."""
    get_num_gpus = getattr(faiss, "get_num_gpus", None)
    return bool(get_num_gpus and get_num_gpus() > 0)


class DenseIndex:
    def __init__(self, flat: Any, ann: Any | None = None, ef_search: int = 128):
        self.flat = flat
        self.ann = ann
        self.ef_search = ef_search
        self._gpu: Any | None = None  # a GPU copy of the exact index, for unfiltered search

    @property
    def device(self) -> str:
        return "gpu" if self._gpu is not None else "cpu"

    def to_gpu(self) -> bool:
        """Search the exact index on all GPUs when the faiss GPU build sees one; returns whether it moved."""
        if self.ann is None and gpu_available() and len(self):
            self._gpu = faiss.index_cpu_to_all_gpus(self.flat)
        return self._gpu is not None

    @classmethod
    def empty(cls, dim: int) -> DenseIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @property
    def dim(self) -> int:
        return int(self.flat.d)

    @property
    def kind(self) -> Kind:
        return "hnsw" if self.ann is not None else "flat"

    def __len__(self) -> int:
        return int(self.flat.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        assert vectors.shape == (len(ids), self.dim), (vectors.shape, len(ids), self.dim)
        self.flat.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
        )
        self.ann = self._gpu = None  # stale: rebuilt by build_ann()

    def remove(self, ids: Collection[int]) -> int:
        if not ids:
            return 0
        removed = int(self.flat.remove_ids(np.fromiter(ids, dtype=np.int64)))
        self.ann = self._gpu = None
        return removed

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.flat.id_map).astype(np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        return np.stack([self.flat.reconstruct(int(i)) for i in ids]) if len(ids) else np.zeros((0, self.dim))

    def build_ann(self, m: int = 32, ef_construction: int = 80) -> None:
        """Build an HNSW graph over all vectors (ids kept through an IDMap)."""
        ids = self.ids()
        base = faiss.IndexHNSWFlat(self.dim, m, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efConstruction = ef_construction
        ann = faiss.IndexIDMap2(base)
        codes = faiss.vector_to_array(faiss.downcast_index(self.flat.index).codes)
        vecs = codes.view(np.float32).reshape(-1, self.dim)  # (n, dim), same order as ids
        ann.add_with_ids(vecs, ids)
        self.ann = ann

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k ids and scores per query: ``(n_queries, k)`` arrays, id -1 where fewer than k exist.

        ``allowed`` (sorted int64 chunk ids) restricts the search, e.g. to one language.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)  # (n_queries, dim)
        k = max(1, min(k, len(self))) if len(self) else 1
        if len(self) == 0:
            return np.full((len(queries), k), -1, np.int64), np.zeros((len(queries), k), np.float32)
        if allowed is None and self._gpu is not None:
            scores, ids = self._gpu.search(queries, k)
            return ids, scores
        index = self.ann if self.ann is not None else self.flat
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            if self.ann is not None:
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.ef_search, k))
            else:
                params = faiss.SearchParameters(sel=selector)
        elif self.ann is not None:
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
        scores, ids = index.search(queries, k, params=params)
        return ids, scores

    def save(self, flat_path: Path, ann_path: Path | None) -> None:
        faiss.write_index(self.flat, str(flat_path))
        if self.ann is not None and ann_path is not None:
            faiss.write_index(self.ann, str(ann_path))

    @classmethod
    def load(cls, flat_path: Path, ann_path: Path | None = None, ef_search: int = 128) -> DenseIndex:
        """Read a saved index; :class:`IndexDamagedError` (naming ``--repair``) when a file is missing or
        unreadable, never an empty index in its place."""
        layout = Layout(flat_path.parent)
        if not flat_path.is_file():
            raise layout.damaged(flat_path, "missing")
        try:
            flat = faiss.read_index(str(flat_path))
            ann = faiss.read_index(str(ann_path)) if ann_path is not None and ann_path.exists() else None
        except RuntimeError as exc:  # faiss reports a truncated or foreign file this way
            raise layout.damaged(flat_path, f"unreadable ({str(exc).strip().splitlines()[0][:120]})") from exc
        return cls(flat, ann, ef_search)
