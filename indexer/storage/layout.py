"""Where an index keeps its files, and the generation scheme that makes updates atomic.

``index.sqlite`` holds the metadata and, in its manifest, the current *generation* number. Vector and BM25 files
carry the generation in their names (``dense-000007.faiss``, ``bm25-000007/``). An indexing run writes the next
generation's files beside the current ones and then commits the SQLite transaction that both changes the chunks
and bumps the generation: that commit is the atomic switch. A crash before it leaves the old generation in force;
files of other generations are leftovers, removed by the next run.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from indexer.storage.store import DB_NAME

CACHE_NAME = "embcache.sqlite"
_GEN_FILE = re.compile(r"^(dense|hnsw|bm25)-(\d{6})(\.faiss)?$")
_DB_FILE = re.compile(rf"^(?:{re.escape(DB_NAME)}|{re.escape(CACHE_NAME)})(?:-wal|-shm|-journal)?$")


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def db(self) -> Path:
        return self.root / DB_NAME

    @property
    def cache_db(self) -> Path:
        return self.root / CACHE_NAME

    def dense(self, gen: int) -> Path:
        return self.root / f"dense-{gen:06d}.faiss"

    def hnsw(self, gen: int) -> Path:
        return self.root / f"hnsw-{gen:06d}.faiss"

    def bm25(self, gen: int) -> Path:
        return self.root / f"bm25-{gen:06d}"

    def exists(self) -> bool:
        return self.db.exists()

    def index_files(self) -> list[Path]:
        """Every file and folder in ``root`` that belongs to the index (databases, their journals, generations)."""
        return sorted(p for p in self.root.iterdir() if _GEN_FILE.match(p.name) or _DB_FILE.match(p.name))

    def remove_other_generations(self, keep: int) -> list[Path]:
        """Delete files of every generation except ``keep``; returns what was removed."""
        removed = []
        for path in self.root.iterdir():
            m = _GEN_FILE.match(path.name)
            if m and int(m.group(2)) != keep:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                removed.append(path)
        return removed

    def size_on_disk(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for path in self.root.iterdir():
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            sizes[path.name] = sum(p.stat().st_size for p in files)
        return sizes
