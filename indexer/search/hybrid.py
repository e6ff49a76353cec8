"""Hybrid search's fusion stage: each query's detected language, its candidates' languages, and the fused list
with the weights used (:func:`indexer.retrieval.fusion.fuse`).

The candidates' languages are read from SQLite in the query's own snapshot, for the top ``config.depth`` of each
list only, all queries of a batch in one go (:func:`indexer.storage.catalog.chunk_langs`). Measured against a
per-generation map of every chunk's language (like ``Generation.doc_keys``) on the eval indexes, 2026-12-05:
the lookup costs 0.18–0.38 ms a query; the map 0.002 ms a query, but 9–13 µs and ~150 bytes per chunk to build
at each new generation (23–83 ms here, some 2.6 s and 30 MB at 200k chunks), so it pays off only after ~200
queries per generation and costs memory for the index's whole life. Per-query lookups it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from indexer.ingest.langdetect import UNDETERMINED, detect_language
from indexer.retrieval.fusion import fuse
from indexer.retrieval.fusion_model import FusionConfig
from indexer.search.reading import Reading
from indexer.storage import catalog
from indexer.types import FusionWeights, Ranked


def fuse_runs(
    reading: Reading,
    queries: Sequence[str],
    dense_runs: Sequence[Ranked],
    bm25_runs: Sequence[Ranked],
    config: FusionConfig,
) -> list[tuple[Ranked, FusionWeights]]:
    """Each query's fused list and the weights it used, in ``reading``'s snapshot."""
    if config.mode == "rrf":  # plain RRF reads no languages
        return [fuse(d, b, UNDETERMINED, {}, config) for d, b in zip(dense_runs, bm25_runs, strict=True)]
    depth = config.depth
    wanted = {cid for run in (*dense_runs, *bm25_runs) for cid, _ in run[:depth]}
    langs = catalog.chunk_langs(reading.session, wanted)
    return [
        fuse(d, b, detect_language(q), langs, config)
        for q, d, b in zip(queries, dense_runs, bm25_runs, strict=True)
    ]
