"""One writer per index: an exclusive lock held for an indexing job's whole life.

Two indexing runs on one index (two terminals, the app's Index page and the CLI, two tabs of the app) used to
interleave and leave SQLite, FAISS and BM25 disagreeing. Every job now takes ``index.lock`` first: an advisory
``flock`` through the filelock library, so a crashed holder releases it with its process and no stale lock is
ever left to clean up. A second writer fails at once naming the holder, or queues behind it (``wait``). Readers
take no lock: they are pinned to a generation instead (:mod:`indexer.search.index`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

from indexer.errors import IndexBusyError

LOCK_NAME = "index.lock"


def _write_holder(fd: int) -> None:
    """Who holds the lock, for the message a second writer gets (written once the lock is ours)."""
    since = datetime.now(timezone.utc).isoformat(timespec="seconds")
    os.ftruncate(fd, 0)
    os.write(fd, f"PID {os.getpid()} on {socket.gethostname()} since {since}\n".encode())


def _holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "another process"
    except OSError:
        return "another process"


@contextmanager
def writer_lock(index_dir: Path, wait: bool = False) -> Iterator[None]:
    """Hold the index's writer lock for the ``with`` block.

    >>> with writer_lock(Path(".e5search/index")):  # doctest: +SKIP
    ...     ...  # the only writer of this index until the block ends
    """
    path = Path(index_dir) / LOCK_NAME
    lock = FileLock(path, thread_local=False, on_acquired=_write_holder)
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        raise IndexBusyError(
            f"the index at {index_dir} is being updated by {_holder(path)}: wait for that run to finish, "
            "or pass --wait to queue behind it"
        ) from None
    try:
        yield
    finally:
        lock.release()
