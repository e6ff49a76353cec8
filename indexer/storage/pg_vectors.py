"""Chunk vectors in PostgreSQL: the ``embeddings`` table, its HNSW index, writing and dense search.

``embeddings(chunk_id, embedding vector(dim))``: one row per chunk, deleted with its chunk (``ON DELETE
CASCADE``), so removing a file removes its vectors in the same transaction. Vectors are stored in full precision;
the HNSW index is built over their half-precision cast (``halfvec``, inner product: the vectors are
L2-normalised, so inner product is cosine similarity). Half precision halves the graph's size and memory traffic;
bench/pgvector.py measures what it costs in recall. Scores are always computed on the full-precision vectors.

Exact search (``dense_kind`` flat) orders by the full-precision distance, which no index serves: a sequential scan,
exact like FAISS flat, ties broken by chunk id. HNSW search orders by the indexed expression, with pgvector 0.8's
iterative scan on, so a filter or rows invisible to the reader's snapshot do not starve the result. Both run in
the reader's transaction, so they see its snapshot's rows only (index scans respect MVCC).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from indexer.config import ef_search_of

MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
# "auto" searches exactly up to this many chunks, then the HNSW graph: a sequential scan costs ~0.7 us a vector
# (690 ms a query at 1M, bench/results/pgvector.md), twice FAISS flat, so the folder's 200,000 would be ~140 ms
EXACT_SCAN_LIMIT = 20_000
HNSW_EF_CONSTRUCTION = 64


def literal(vector: np.ndarray) -> str:
    """pgvector's text form of a vector, exact for float32 values (``repr`` of a float round-trips)."""
    return "[" + ",".join(map(repr, np.asarray(vector, dtype=np.float32).tolist())) + "]"


def ensure_table(session: Session, dim: int, m: int) -> None:
    """Create the vector table and its HNSW index if missing (in the caller's transaction: DDL is
    transactional in PostgreSQL, so a first run that dies leaves no table behind)."""
    session.execute(
        text(
            "CREATE TABLE IF NOT EXISTS embeddings (chunk_id integer PRIMARY KEY REFERENCES chunks (id) "
            f"ON DELETE CASCADE, embedding vector({int(dim)}) NOT NULL)"
        )
    )
    session.execute(
        text(
            "CREATE INDEX IF NOT EXISTS embeddings_hnsw ON embeddings USING hnsw "
            f"((embedding::halfvec({int(dim)})) halfvec_ip_ops) "
            f"WITH (m = {int(m)}, ef_construction = {HNSW_EF_CONSTRUCTION})"
        )
    )


def table_dim(session: Session) -> int | None:
    """The dimension of the stored vectors, None before the first run made the table."""
    return session.scalar(
        text(
            "SELECT a.atttypmod FROM pg_attribute a WHERE a.attrelid = to_regclass('embeddings') "
            "AND a.attname = 'embedding'"
        )
    )


def insert(session: Session, ids: Sequence[int], vectors: np.ndarray) -> None:
    """Rows for ``ids`` with ``vectors`` ((n, dim), float32), through COPY in the caller's transaction."""
    if len(ids) == 0:
        return
    assert vectors.shape[0] == len(ids), (vectors.shape, len(ids))
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy("COPY embeddings (chunk_id, embedding) FROM STDIN") as copy:
        for cid, vec in zip(ids, vectors):
            copy.write_row((int(cid), literal(vec)))


def delete_all(session: Session) -> None:
    session.execute(text("DELETE FROM embeddings"))


def count(session: Session) -> int:
    if table_dim(session) is None:
        return 0
    return int(session.scalar(text("SELECT count(*) FROM embeddings")) or 0)


def search(
    session: Session, query: np.ndarray, k: int, allowed: np.ndarray | None, exact: bool, ef_search: int
) -> list[tuple[int, float]]:
    """The ``k`` chunks nearest ``query`` ((dim,), normalised) as (chunk id, inner product), best first, in
    ``session``'s snapshot; ``allowed`` (chunk ids) restricts the search."""
    dim = int(query.shape[0])
    where = "WHERE chunk_id = ANY(:ids)" if allowed is not None else ""
    if exact:
        order = "embedding <#> CAST(:q AS vector), chunk_id"
    else:
        ef = min(max(ef_search, k), MAX_EF_SEARCH)
        session.execute(
            text(
                "SELECT set_config('hnsw.ef_search', :ef, true), "
                "set_config('hnsw.iterative_scan', 'strict_order', true)"
            ),
            {"ef": str(ef)},
        )
        order = f"(embedding::halfvec({dim})) <#> CAST(:q AS halfvec({dim}))"
    params: dict = {"q": literal(query), "k": int(k)}
    if allowed is not None:
        params["ids"] = [int(i) for i in allowed]
    rows = session.execute(
        text(
            f"SELECT chunk_id, -(embedding <#> CAST(:q AS vector)) FROM embeddings {where} "
            f"ORDER BY {order} LIMIT :k"
        ),
        params,
    )
    return [(int(cid), float(score)) for cid, score in rows]


class PgDense:
    """Dense search over the ``embeddings`` table in one reader's snapshot, with :class:`DenseIndex`'s call
    (``search(queries, k, allowed) -> (ids, scores)``, id -1 where fewer than k exist).

    Without a session it only answers ``len`` (the manifest's chunk count) and ``kind``.
    """

    device = "postgresql"

    def __init__(self, session: Session | None, manifest: dict):
        self.session = session
        self.kind = "hnsw" if manifest.get("dense_kind") == "hnsw" else "flat"
        self.ef_search = ef_search_of(manifest)
        self._n = int(manifest.get("n_chunks", 0))

    def __len__(self) -> int:
        return count(self.session) if self.session is not None else self._n

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        assert self.session is not None, "PgDense.search needs a reader's session"
        ids = np.full((len(queries), k), -1, dtype=np.int64)  # (n_queries, k)
        scores = np.zeros((len(queries), k), dtype=np.float32)
        for row, query in enumerate(queries):
            found = search(self.session, query, k, allowed, self.kind == "flat", self.ef_search)
            for col, (cid, score) in enumerate(found):
                ids[row, col], scores[row, col] = cid, score
        return ids, scores
