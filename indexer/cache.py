"""e5search's cache folder and crash-safe builds into it, plus the hashes and version records builds keep.

``cache_home()`` is ``$E5SEARCH_HOME``, else ``$XDG_CACHE_HOME/e5search``, else ``~/.cache/e5search``: the default
model, the int8 artefacts, the default reranker and eval indexes live under it. :func:`staged_folder` builds a
folder beside its target and renames it into place, so an interrupted build never leaves a folder that looks
valid; every offline rebuild (default model, ONNX and CTranslate2 artefacts, reranker) goes through it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path


# ----------------------------------------------------------------------------------------- cache locations
def cache_home() -> Path:
    """``$E5SEARCH_HOME``, else ``$XDG_CACHE_HOME/e5search``, else ``~/.cache/e5search``."""
    home = os.environ.get("E5SEARCH_HOME", "").strip()
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "e5search"


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), read 1 MiB at a time: indexed files, model blobs, training data."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha256(path: Path) -> str:
    """:func:`file_sha256`, remembered per (path, size, mtime) for files asked about on every start-up."""
    stat = path.stat()
    return _sha256_cached(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:  # size/mtime: a changed file is hashed anew
    return file_sha256(path)


def _clean_stale(parent: Path, name: str, max_age_s: float = 3600.0) -> None:
    """Remove leftovers of builds killed midway (~0.5 GB each); recent ones may belong to a live build."""
    now = datetime.now(timezone.utc).timestamp()
    for leftover in parent.glob(f".{name}.*"):
        try:
            if leftover.is_dir() and now - leftover.stat().st_mtime > max_age_s:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue


def _move_into_place(staging: Path, target: Path, finished: Callable[[], bool]) -> None:
    """Swap ``staging`` in for ``target`` with renames only, so readers see the old folder or the new one."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / target.name)
    try:
        os.replace(staging, target)
    except OSError:
        if not finished():  # not a concurrent build that finished first
            raise
        shutil.rmtree(staging, ignore_errors=True)
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(target: Path, finished: Callable[[], bool], force: bool = False) -> Iterator[Path]:
    """Build a cache folder crash-safely: yields an empty staging folder beside ``target``; when the block
    ends normally it replaces ``target`` by renames (kept as is if ``finished()`` says a concurrent build got
    there first, unless ``force``); on any error, KeyboardInterrupt too, it is removed, never left half-built."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        yield staging
        if not force and finished():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            _move_into_place(staging, target, finished)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def package_versions(*packages: str) -> dict[str, str]:
    """Installed versions of ``packages`` (missing ones left out), for a build record."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out
