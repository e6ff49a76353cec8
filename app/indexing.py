"""The Index page's calls: check a folder, index it with progress, remove an index.

Indexing runs ``indexer.build.job.build_index`` in the page's own script run, with the model cached by
:mod:`app.service`; it is incremental, so re-indexing a folder reads only what changed. Removing an index deletes
only the files an index consists of (never anything else that happens to be in its folder).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app import access, service, watching
from indexer.build.job import IndexSummary, build_index
from indexer.config import IndexConfig
from indexer.encoding.encoder import TextEncoder, model_for_index
from indexer.errors import ConfigError, E5SearchError
from indexer.storage import layout as storage_layout
from indexer.storage.store import read_index_manifest
from indexer.types import Progress

STAGES = ("reading", "encoding", "writing")
_STAGE_TEXT = {"reading": "files read", "encoding": "chunks encoded", "writing": "writing the index"}
MAX_SUBFOLDERS = 300


def resolve_folder(text: str, roots: Sequence[Path]) -> Path:
    """The folder a user typed, resolved; ConfigError with the fix if it is outside ``roots``, missing or
    unreadable (see :mod:`app.access`: nothing outside the allowed roots is looked at, not even whether it
    exists)."""
    text = text.strip()
    if not text:
        raise ConfigError("no folder given: type the path of a folder on this server")
    path = access.check_inside(Path(text), roots)
    if not path.exists():
        raise ConfigError(
            f"{path} does not exist: check the path (it is a path on the server running the app)"
        )
    if not path.is_dir():
        raise ConfigError(f"{path} is a file: give the folder that contains it")
    try:
        with os.scandir(path) as entries:
            next(entries, None)
    except OSError as exc:
        raise ConfigError(
            f"{path} cannot be read ({exc.strerror or exc}): fix its permissions for the user running the app"
        ) from exc
    return path


def subfolders(path: Path) -> list[str]:
    """Names of the visible folders inside ``path`` (for browsing), sorted; [] if it cannot be listed."""
    try:
        with os.scandir(path) as entries:
            names = sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())
    except OSError:
        return []
    return names[:MAX_SUBFOLDERS]


@dataclass
class ProgressClock:
    """Turns ``(stage, done, total)`` callbacks into an overall fraction and a line with an ETA.

    The ETA extrapolates the rate since the stage's first callback (work done before it is not timed).
    """

    stage: str | None = None
    started: float = 0.0
    done_at_start: int = 0

    def update(self, stage: str, done: int, total: int, now: float | None = None) -> tuple[float, str]:
        now = time.monotonic() if now is None else now
        if stage != self.stage:
            self.stage, self.started, self.done_at_start = stage, now, done
        frac = done / total if total else 1.0
        position = STAGES.index(stage) if stage in STAGES else 0
        overall = min(1.0, (position + frac) / len(STAGES))
        text = f"{position + 1}/{len(STAGES)} {_STAGE_TEXT.get(stage, stage)}"
        if stage != "writing":
            text += f": {done} / {total}"
        if self.done_at_start < done < total:
            rate = (done - self.done_at_start) / max(now - self.started, 1e-9)  # items per second
            text += f", about {(total - done) / rate:.0f} s left"
        return overall, text


def _setup(index_dir: Path) -> tuple[IndexConfig, TextEncoder]:
    """The index's recorded settings (or the defaults) and the app's encoder for them: the model the index records,
    the backend following the index like the CLI's (:func:`~indexer.encoding.encoder.model_for_index`)."""
    manifest = read_index_manifest(index_dir, complete=False)
    config = IndexConfig.from_dict(manifest["config"]) if manifest.get("config") else IndexConfig()
    return config, service.load_encoder(model_for_index(manifest, config.model))


def index_folder(folder: Path, index_dir: Path, progress: Progress | None = None) -> IndexSummary:
    """Index ``folder`` into ``index_dir`` (incrementally) with the model the index records, or the default."""
    config, encoder = _setup(index_dir)
    summary = build_index(folder, index_dir, config, encoder=encoder, progress=progress)
    service.forget_indexes()  # the previous generation's files are gone: free what was loaded from them
    return summary


def watch(folder: Path, index_dir: Path) -> watching.Watching:
    """Keep ``index_dir`` in step with ``folder`` from now on (:mod:`app.watching`), with the app's encoder."""
    config, encoder = _setup(index_dir)
    return watching.start(folder, index_dir, config, encoder)


def source_of(index_dir: Path) -> Path | None:
    """The folder an index was built from, or None if there is no complete index."""
    try:
        root = read_index_manifest(index_dir).get("source_root")
    except E5SearchError:
        return None
    return Path(root) if root else None


def remove_index(index_dir: Path) -> list[str]:
    """Delete the index files in ``index_dir`` (and the folder, if that leaves it empty); returns the names.
    Another program's ``index.sqlite`` is refused, and so is an index an indexing run is writing."""
    watching.stop(index_dir)  # a watcher would build it again
    service.forget_indexes()
    return storage_layout.remove_index(index_dir)
