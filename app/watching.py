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
    """A watcher on its own daemon thread, and what it has done so far (read by the page; its runs are the
    watcher's own record)."""

    folder: Path
    index_dir: Path
    watcher: Watcher
    started: float = field(default_factory=time.time)
    failure: str | None = None  # why the watcher stopped on its own (its first run failed)
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, name=f"watch {self.folder}", daemon=True)

    def _run(self) -> None:
        try:
            self.watcher.run()
        except Exception as exc:  # the first run's errors; later runs report theirs in watcher.runs
            self.failure = f"{type(exc).__name__}: {exc}"

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    @property
    def runs(self) -> int:
        return len(self.watcher.runs)

    @property
    def last(self) -> WatchRun | None:
        return self.watcher.runs[-1] if self.watcher.runs else None

    def line(self) -> str:
        """``Watching FOLDER since 14:02:11: 3 runs; the last added 1, updated 0, removed 0 (84 chunks in the
        index, 2.1 s)``."""
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
        if current is None or not current.running:
            current = Watching(folder, index_dir, Watcher(folder, index_dir, config, encoder=encoder))
            _WATCHING[index_dir] = current
            current.thread.start()
        return current


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
