"""Watching a folder from the app: one :class:`~indexer.build.watch.Watcher` thread per index, for the process.

The Index page starts and stops it; every browser session sees the same watchers (they live in this module, not
in a session), and one keeps running when the page that started it is closed, until it is stopped or the app
exits. Runs are the watcher's own (debounced, incremental, crash-safe, behind the writer lock), with the model
the app loaded for the index; a new generation is picked up by the Search page on its next run, as after any
re-index. Non-goal: watching a folder into an index the app does not show (the page offers the current one).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from indexer.build.watch import Watcher, WatchRun
from indexer.config import IndexConfig
from indexer.encoding.encoder import TextEncoder


@dataclass
class Watching:
    """A running watcher and what it has done so far (read by the page; written by the watcher's thread)."""

    folder: Path
    index_dir: Path
    watcher: Watcher
    thread: threading.Thread
    started: float = field(default_factory=time.time)
    last: WatchRun | None = None
    runs: int = 0
    failure: str | None = None  # why the watcher stopped on its own (its first run failed)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def line(self) -> str:
        """``Watching FOLDER since 14:02: 3 runs, the last at 14:10 added 1, updated 0, removed 0 (2.1 s)``."""
        since = time.strftime("%H:%M:%S", time.localtime(self.started))
        text = f"Watching {self.folder} since {since}: {self.runs} run{'s' * (self.runs != 1)}"
        last = self.last
        if last is None:
            return text + ", the first one under way"
        if last.error is not None:
            return text + f"; the last failed: {last.error}"
        s = last.summary
        assert s is not None
        return text + (
            f"; the last added {s.added}, updated {s.updated}, removed {s.removed} "
            f"({s.chunks} chunks in the index, {s.seconds:.1f} s)"
        )


_WATCHING: dict[Path, Watching] = {}  # index folder -> its watcher
_LOCK = threading.Lock()


def start(folder: Path, index_dir: Path, config: IndexConfig, encoder: TextEncoder) -> Watching:
    """Watch ``folder`` into ``index_dir`` on a daemon thread (the running one, if there is one already)."""
    with _LOCK:
        current = _WATCHING.get(index_dir)
        if current is not None and current.running:
            return current
        box: list[Watching] = []

        def on_run(run: WatchRun) -> None:
            box[0].last, box[0].runs = run, box[0].runs + 1

        watcher = Watcher(folder, index_dir, config, encoder=encoder, on_run=on_run)
        thread = threading.Thread(target=_run, args=(box,), name=f"watch {folder}", daemon=True)
        box.append(Watching(folder, index_dir, watcher, thread))
        _WATCHING[index_dir] = box[0]
        thread.start()
        return box[0]


def _run(box: list[Watching]) -> None:
    try:
        box[0].watcher.run()
    except (
        Exception
    ) as exc:  # the first run's errors (a foreign index, another model); later ones are reported
        box[0].failure = f"{type(exc).__name__}: {exc}"


def stop(index_dir: Path, timeout_s: float = 60.0) -> None:
    """Stop watching into ``index_dir`` (after a run in progress) and wait for the thread; no-op if none."""
    with _LOCK:
        current = _WATCHING.pop(index_dir, None)
    if current is not None:
        current.watcher.stop()
        current.thread.join(timeout_s)


def state(index_dir: Path) -> Watching | None:
    """The watcher for ``index_dir``: running, or stopped on its own with :attr:`Watching.failure`; else None."""
    with _LOCK:
        return _WATCHING.get(index_dir)
