"""e5search's library layer: read a folder, chunk it, index it (FAISS + SQLite + BM25) and search it.

The rooms follow the data, bottom up: ``types``, ``errors``, ``cache``, ``tokens`` (shared vocabulary), then
``config``, ``storage/`` (SQLite, files on disk, the embedding cache), ``ingest/`` (files -> documents -> chunks)
and ``models/`` (model folders, offline rebuilds), ``encoding/`` (the one place that knows E5's ``query: `` /
``passage: `` prompts) and ``retrieval/`` (BM25, dense, fusion, reranking), and on top ``build/`` (the indexing
job) and ``search/`` (the search facade). Imports point down only (``tests/indexer/test_layout_rules.py``).

The names below load on first use (PEP 562), so ``import indexer`` costs nothing and ``e5search --help`` imports
neither faiss nor torch::

    from indexer import Index, build_index
    build_index("data/sample", ".e5search/sample")
    Index.open(".e5search/sample").search("Wie funktioniert Photosynthese?").hits[0].doc_path
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "build_index": "indexer.build.job",
    "IndexSummary": "indexer.build.job",
    "Index": "indexer.search.index",
    "Filters": "indexer.search.index",
    "Retriever": "indexer.search.retriever",
    "Encoder": "indexer.encoding.encoder",
    "TextEncoder": "indexer.encoding.encoder",
    "encoder_for_index": "indexer.encoding.encoder",
    "ModelConfig": "indexer.config",
    "ChunkConfig": "indexer.config",
    "IndexConfig": "indexer.config",
    "SearchConfig": "indexer.config",
    "Hit": "indexer.types",
    "SearchResult": "indexer.types",
    "E5SearchError": "indexer.errors",
    "ConfigError": "indexer.errors",
    "IndexStateError": "indexer.errors",
    "QueryError": "indexer.errors",
    "DatasetError": "indexer.errors",
    "MissingExtra": "indexer.errors",
}
__all__ = [
    "__version__",
    "build_index",
    "IndexSummary",
    "Index",
    "Filters",
    "Retriever",
    "Encoder",
    "TextEncoder",
    "encoder_for_index",
    "ModelConfig",
    "ChunkConfig",
    "IndexConfig",
    "SearchConfig",
    "Hit",
    "SearchResult",
    "E5SearchError",
    "ConfigError",
    "IndexStateError",
    "QueryError",
    "DatasetError",
    "MissingExtra",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'indexer' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from indexer.build.job import IndexSummary, build_index
    from indexer.config import ChunkConfig, IndexConfig, ModelConfig, SearchConfig
    from indexer.encoding.encoder import Encoder, TextEncoder, encoder_for_index
    from indexer.errors import (
        ConfigError,
        DatasetError,
        E5SearchError,
        IndexStateError,
        MissingExtra,
        QueryError,
    )
    from indexer.search.index import Filters, Index
    from indexer.search.retriever import Retriever
    from indexer.types import Hit, SearchResult
