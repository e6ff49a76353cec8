"""e5search's library layer: read a folder, chunk it, index it (FAISS + SQLite + BM25) and search it.

The only package that knows E5's ``query: `` / ``passage: `` prompts (see :mod:`indexer.encoder`).
"""

from __future__ import annotations

__version__ = "0.1.0"
