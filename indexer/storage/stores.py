"""Where an index lives: a folder (SQLite + FAISS + BM25 files) or a PostgreSQL database (pgvector).

One interface for both, which the indexing job and :class:`~indexer.search.index.Index` use: the manifest, an
engine on the metadata tables (the same SQLAlchemy models), the writer lock, the embedding cache's place and the
sizes ``e5search info`` shows. What differs stays with each store: a folder's generation files and their
FAISS/BM25 contents (:mod:`indexer.storage.layout`, written by :mod:`indexer.build.write`, loaded by
:mod:`indexer.search.reading`); a database's ``embeddings`` table (:mod:`indexer.storage.pg_vectors`).

>>> open_store(".e5search/index").kind, open_store("postgresql://e5@127.0.0.1/search").kind  # doctest: +SKIP
('folder', 'postgresql')
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from indexer.errors import ConfigError
from indexer.storage.layout import Layout, remove_index
from indexer.storage.lock import writer_lock
from indexer.storage.pg import PgStore, is_database_url
from indexer.storage.store import open_engine, read_index_manifest


class FolderStore:
    """The embedded default: an index folder, exactly as before (this class only names its parts)."""

    kind = "folder"

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        self.layout = Layout(self.root)
        self.location = str(self.root)

    def __repr__(self) -> str:
        return f"FolderStore({self.location})"

    def engine(self, create: bool = False, snapshot: bool = False) -> Engine:
        """SQLite in WAL mode: every Session is one snapshot already, for readers and the writer alike."""
        return open_engine(self.root, create=create)

    def read_manifest(self, complete: bool = True) -> dict[str, Any]:
        return read_index_manifest(self.root, complete=complete)

    def writer_lock(self, wait: bool = False) -> AbstractContextManager[None]:
        """The folder's ``index.lock`` (made with the folder if need be)."""
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"--index {self.root} is a file; give a folder for the index")
        self.root.mkdir(parents=True, exist_ok=True)
        return writer_lock(self.root, wait=wait)

    def embedding_cache(self, manifest: dict) -> Path:
        return self.layout.cache_db

    def size_on_disk(self, session: Session) -> dict[str, int]:
        return self.layout.size_on_disk()

    def remove(self) -> list[str]:
        return remove_index(self.root)


Store = FolderStore | PgStore


def open_store(location: str | Path | Store) -> Store:
    """The store at ``location``: a PostgreSQL URL (``postgresql://user@host:port/db``) or an index folder."""
    if isinstance(location, (FolderStore, PgStore)):
        return location
    return PgStore(str(location)) if is_database_url(location) else FolderStore(location)
