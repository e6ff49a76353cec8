"""Where an index keeps its files, and the generation scheme that makes updates atomic.

``index.sqlite`` holds the metadata and, in its manifest, the current *generation* number. Vector and BM25 files
carry the generation in their names (``dense-000007.faiss``, ``bm25-000007/``). An indexing run writes the next
generation's files beside the current ones and then commits the SQLite transaction that both changes the chunks
and bumps the generation: that commit is the atomic switch. A crash before it leaves the old generation in force;
files of other generations are leftovers, removed by the next run. The new files and their folder are fsync'ed
before the commit, and SQLite commits with ``synchronous=FULL``, so a power cut cannot leave a manifest naming a
file that never reached the disk. The previous generation's files stay until the next run, for readers that
took their snapshot just before the commit.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from indexer.errors import IndexDamagedError, IndexStateError
from indexer.storage.lock import LOCK_NAME, writer_lock
from indexer.storage.store import DB_NAME, read_index_manifest

CACHE_NAME = "embcache.sqlite"
_GEN_FILE = re.compile(r"^(dense|hnsw|bm25)-(\d{6})(\.faiss)?$")
_DB_FILE = re.compile(
    rf"^(?:{re.escape(DB_NAME)}|{re.escape(CACHE_NAME)})(?:-wal|-shm|-journal)?$|^{LOCK_NAME}$"
)


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

    def damaged(self, path: Path, why: str) -> IndexDamagedError:
        """The error for a current-generation file that is missing or unreadable, naming the fix."""
        return IndexDamagedError(
            f"{path.name} in {self.root} is {why}: rebuild it with `e5search index FOLDER --index {self.root} "
            "--repair` (from SQLite and the embedding cache; nothing is re-read from the folder)"
        )

    def index_files(self) -> list[Path]:
        """Every file and folder in ``root`` that belongs to the index (databases, their journals, generations)."""
        return sorted(p for p in self.root.iterdir() if _GEN_FILE.match(p.name) or _DB_FILE.match(p.name))

    def generation_files(self, gen: int) -> list[Path]:
        """The files of generation ``gen`` that exist (the HNSW file only exists for HNSW indexes)."""
        return [p for p in (self.dense(gen), self.hnsw(gen), self.bm25(gen)) if p.exists()]

    def generations(self) -> set[int]:
        """The generation numbers that have files in ``root``."""
        return {int(m.group(2)) for p in self.root.iterdir() if (m := _GEN_FILE.match(p.name))}

    def remove_generations(self, keep: set[int]) -> list[Path]:
        """Delete the files of every generation not in ``keep``; returns what was removed.

        Callers keep the current generation and the one before it: a reader that took its snapshot just before
        the last commit may still be loading the previous generation's files.
        """
        removed = []
        for path in self.root.iterdir():
            m = _GEN_FILE.match(path.name)
            if m and int(m.group(2)) not in keep:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                removed.append(path)
        return removed

    def sync(self, gen: int) -> None:
        """fsync generation ``gen``'s files and the folders that name them, before the commit that points at
        them: after a power cut the manifest then never names a file that did not reach the disk."""
        for path in self.generation_files(gen):
            for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
                _fsync(file)
            if path.is_dir():
                _fsync(path)
        _fsync(self.root)

    def size_on_disk(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for path in self.root.iterdir():
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            sizes[path.name] = sum(p.stat().st_size for p in files)
        return sizes


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_index(index_dir: Path) -> list[str]:
    """Delete the e5search index in ``index_dir`` (and the folder, if that leaves it empty); returns the names.

    Only an index this program made (an ``index.sqlite`` with its manifest) is removed, only its own files, and
    never while an indexing run holds the writer lock. Anything else in the folder stays.
    """
    layout = Layout(Path(index_dir))
    if not layout.exists():
        raise IndexStateError(f"no index at {index_dir}: nothing to remove")
    read_index_manifest(layout.root, complete=False)  # refuses another program's index.sqlite
    with writer_lock(layout.root):
        removed = [p for p in layout.index_files() if p.name != LOCK_NAME]
        for path in removed:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    (layout.root / LOCK_NAME).unlink(missing_ok=True)
    if not any(layout.root.iterdir()):
        layout.root.rmdir()
    return [p.name for p in removed]
