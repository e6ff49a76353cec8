"""Watch mode: keep an index in step with its folder (``e5search index PATH --index DIR --watch``).

Flow: a first run catches up with whatever changed while nobody watched; from then on a watchdog observer thread
only notes that something changed, and the watching thread waits for the folder to go quiet (``quiet_s`` without
a new event, but never more than ``max_delay_s`` after the first one, so a folder that never rests is still
indexed) before one ordinary run of :func:`~indexer.build.job.build_index`: incremental (size, mtime, then
content hash decide what is read again) and crash-safe, holding the writer lock (queued behind another writer,
never beside it). Events that arrive during a run cause one more run after it, so a burst of any size costs a
few runs, not one per event. The encoder is loaded once, for every run.

What counts as a change: files and folders created, written, moved or deleted under the folder, and the kernel
saying it dropped events (then a run rescans everything, as always). Not counted: hidden paths (the walker skips
them), the index folder itself when it lies inside the watched one, opening, reading and closing without a write
(the runs' own reads would wake the watcher forever), and attribute-only changes (a run reading a file updates
its access time; a ``touch`` changes no content).

:class:`Watcher` runs in the calling thread until :meth:`Watcher.stop` (from another thread, e.g. an app) or
Ctrl-C; a run in progress is finished first (Ctrl-C during a run raises
:class:`~indexer.errors.IndexingInterrupted` as a plain run does). If the OS refuses more inotify watches
(a huge tree), it falls back to polling with a warning.

Non-goals: watching several folders at once, reacting to single files without a rescan, network file systems'
remote changes (``WatchConfig(poll=True)`` polls instead).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from indexer.build.job import IndexSummary, build_index
from indexer.config import IndexConfig
from indexer.encoding.encoder import TextEncoder, encoder_for_index
from indexer.errors import ConfigError
from indexer.storage.pg import is_database_url
from indexer.storage.stores import FolderStore, open_store

logger = logging.getLogger(__name__)


_CHANGES = frozenset(
    {"created", "modified", "moved", "deleted", "closed", "events_lost"}
)  # watchdog event types


_TICK_S = 0.5  # waits are cut into ticks, so Ctrl-C and stop() are noticed promptly


@dataclass(frozen=True)
class WatchConfig:
    """How watching waits: a quiet period after the last event, and a cap on how long a busy folder waits."""

    quiet_s: float = 1.5  # editors write a file in several steps; a save settles within a second
    max_delay_s: float = 30.0  # a folder that never goes quiet is indexed at least this often
    poll: bool = (
        False  # poll instead of inotify (network shares); also the fallback when inotify is exhausted
    )
    poll_interval_s: float = 2.0

    def __post_init__(self) -> None:
        if not self.quiet_s > 0:
            raise ConfigError(f"quiet_s={self.quiet_s}: must be a positive number of seconds")
        if not self.max_delay_s >= self.quiet_s:
            raise ConfigError(f"max_delay_s={self.max_delay_s}: must be at least quiet_s={self.quiet_s}")
        if not self.poll_interval_s > 0:
            raise ConfigError(f"poll_interval_s={self.poll_interval_s}: must be positive")


@dataclass(frozen=True)
class WatchRun:
    """One run of the watcher: what it did (``summary``) or why it failed (``error``)."""

    number: int  # 1 is the catch-up run at the start
    events: int  # change events it answers (0 for the first run)
    summary: IndexSummary | None
    error: str | None = None


class Watcher:
    """Keeps ``index_dir`` in step with ``source`` until :meth:`stop`.

    >>> w = Watcher("notes", ".e5search/notes", on_run=print)   # doctest: +SKIP
    >>> threading.Thread(target=w.run).start(); ...; w.stop()   # doctest: +SKIP
    """

    def __init__(
        self,
        source: str | Path,
        index_dir: str | Path,
        config: IndexConfig = IndexConfig(),
        encoder: TextEncoder | None = None,
        watch: WatchConfig = WatchConfig(),
        on_run: Callable[[WatchRun], None] | None = None,
        wait: bool = True,
    ) -> None:
        self.source = Path(source).expanduser().resolve()
        # A folder (resolved, so that events inside it can be told apart) or a PostgreSQL store, opened once.
        self.store = open_store(
            index_dir if is_database_url(index_dir) else Path(index_dir).expanduser().resolve()
        )
        self.index_dir = (
            self.store.root if isinstance(self.store, FolderStore) else None
        )  # None: nothing to ignore
        if not self.source.exists():
            raise ConfigError(f"{source} does not exist: give a folder or a file to watch")
        self.config, self.encoder, self.watch, self.on_run, self.wait = config, encoder, watch, on_run, wait
        self.runs: list[WatchRun] = []
        self._single_file = self.source.is_file()
        self._cond = threading.Condition()
        self._stopped = False
        self._pending = 0  # change events since the last run started
        self._first = self._last = 0.0  # monotonic times of the first and the last of them

    # ------------------------------------------------------------------ the loop

    def run(self, repair: bool = False) -> None:
        """Index once, then after every quiet period following changes, until :meth:`stop` (or Ctrl-C).

        Errors of the first run (a foreign index, another model) are raised; later runs report theirs through
        ``on_run`` and the watcher goes on (a folder briefly gone, a locked file).
        """
        observer = self._start_observer()
        try:
            self._index(events=0, repair=repair, raise_errors=True)
            while True:
                events = self._wait_for_quiet()
                if events is None:
                    return
                self._index(events)
        finally:
            observer.stop()
            observer.join(timeout=10)

    def stop(self) -> None:
        """Ask :meth:`run` to return: at once when idle, after the current run otherwise. Thread-safe."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _wait_for_quiet(self) -> int | None:
        """Block until changes have settled; the number of events, or None once stopped."""
        with self._cond:
            while not self._stopped and self._pending == 0:
                self._cond.wait(_TICK_S)
            while not self._stopped:
                due = min(self._last + self.watch.quiet_s, self._first + self.watch.max_delay_s)
                left = due - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, _TICK_S))
            if self._stopped:
                return None
            events, self._pending = self._pending, 0
            return events

    def _index(self, events: int, repair: bool = False, raise_errors: bool = False) -> None:
        if self.encoder is None:  # loaded once: a model load per run would cost more than most runs
            self.encoder = encoder_for_index(self.store.read_manifest(complete=False), self.config.model)
        number = len(self.runs) + 1
        try:
            summary = build_index(
                self.source, self.store, self.config, encoder=self.encoder, wait=self.wait, repair=repair
            )
            report = WatchRun(number, events, summary)
        except Exception as exc:
            if raise_errors:
                raise
            logger.warning("watch run %d failed", number, exc_info=True)
            report = WatchRun(number, events, None, f"{type(exc).__name__}: {exc}")
        self.runs.append(report)
        logger.info("watch run %d (%d events): %s", number, events, report.error or report.summary)
        if self.on_run is not None:
            self.on_run(report)

    # ------------------------------------------------------------------ events

    def note(self, event: FileSystemEvent) -> None:
        """Called by the observer thread for every file-system event."""
        if event.event_type not in _CHANGES:
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if event.event_type != "events_lost" and not any(p and self._counts(os.fsdecode(p)) for p in paths):
            return
        with self._cond:
            now = time.monotonic()
            if self._pending == 0:
                self._first = now
            self._pending += 1
            self._last = now
            self._cond.notify_all()

    def _counts(self, path: str) -> bool:
        """Whether an event on ``path`` can change what the index holds."""
        p = Path(path)
        if self.index_dir is not None and (p == self.index_dir or self.index_dir in p.parents):
            return False
        if self._single_file:
            return p == self.source
        try:
            rel = p.relative_to(self.source)
        except ValueError:
            return False
        return not any(part.startswith(".") for part in rel.parts)

    def _start_observer(self):
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        folder = self.source.parent if self._single_file else self.source
        recursive, handler = not self._single_file, _Events(self)
        if not self.watch.poll:
            observer = Observer()
            try:
                observer.schedule(handler, str(folder), recursive=recursive)
                observer.start()
                return observer
            except OSError as exc:  # e.g. "inotify watch limit reached" on a huge tree
                logger.warning(
                    "cannot watch %s with OS events (%s); polling every %gs",
                    folder,
                    exc,
                    self.watch.poll_interval_s,
                )
                observer.stop()
        observer = PollingObserver(timeout=self.watch.poll_interval_s)
        observer.schedule(handler, str(folder), recursive=recursive)
        observer.start()
        return observer


class _Events(FileSystemEventHandler):
    """Hands the observer thread's events to the watcher."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.watcher.note(event)
