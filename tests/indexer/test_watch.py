"""Watch mode on a real folder with a real watchdog observer and the fake encoder: edits, additions, renames and
deletions reach search within seconds; a burst of events costs a bounded number of runs; stop() and Ctrl-C end it.

Timing is never asserted as such: each check polls the index until the change shows (or a generous timeout says
it never did). The latencies seen are printed (``pytest -s``) for the README.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from indexer.build.watch import WatchConfig, Watcher, WatchRun
from indexer.config import IndexConfig
from indexer.errors import ConfigError
from indexer.search.index import Index
from tests.fakes import FakeEncoder
from tests.indexer.test_build import write_docs

TIMEOUT_S = 30  # "never showed up", on a loaded 2-core machine; a change normally shows in ~2 s

DOCS = {
    "glaciers.txt": "Glaciers carve deep valleys into the mountains.",
    "tea/green.md": "# Tea\n\nGreen tea from Hangzhou is famous.",
}


def wait_until(check: Callable[[], bool], what: str, timeout: float = TIMEOUT_S) -> float:
    """Seconds until ``check()`` held; fails naming ``what`` after ``timeout``."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - t0


def indexed_paths(location: str | Path, query: str) -> set[str]:
    """The files among BM25's top 5 for ``query`` in the index at ``location`` (a folder or a store URL), opened
    anew, so each call sees the latest generation."""
    index = Index.open(location, encoder=FakeEncoder())
    try:
        return {h.doc_path for h in index.search(query, mode="bm25", k=5).hits}
    finally:
        index.close()


def settle(watcher: Watcher, quiet_s: float = 2.0) -> int:
    """The number of runs once none has been added for ``quiet_s`` (a run in progress has time to finish)."""
    t0 = time.monotonic()
    count, since = len(watcher.runs), t0
    while time.monotonic() - since < quiet_s:
        if len(watcher.runs) != count:
            count, since = len(watcher.runs), time.monotonic()
        if time.monotonic() - t0 > TIMEOUT_S:
            pytest.fail(f"runs did not settle within {TIMEOUT_S} s")
        time.sleep(0.05)
    return count


@dataclass
class Watching:
    docs: Path
    watcher: Watcher
    index: Index
    thread: threading.Thread

    def paths(self, query: str) -> set[str]:
        return {h.doc_path for h in self.index.search(query, mode="bm25", k=10).hits}


def start(
    tmp_path: Path, watch: WatchConfig, docs: dict[str, str] = DOCS, index_dir: Path | None = None
) -> Watching:
    folder = write_docs(tmp_path / "docs", docs)
    index_dir = index_dir or tmp_path / "idx"
    encoder = FakeEncoder()
    watcher = Watcher(folder, index_dir, encoder=encoder, watch=watch)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    wait_until(lambda: len(watcher.runs) >= 1, "the first run")
    return Watching(folder, watcher, Index.open(index_dir, encoder=encoder), thread)


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[Watching]:
    w = start(tmp_path, WatchConfig())  # the defaults a user gets
    yield w
    w.watcher.stop()
    w.thread.join(timeout=10)
    assert not w.thread.is_alive(), "stop() did not end the watcher"


def test_edit_add_rename_delete_reach_search(watching: Watching):
    w, docs, seen = watching, watching.docs, {}
    assert w.paths("glaciers valleys") == {"glaciers.txt"}

    (docs / "walrus.txt").write_text("Walruses sleep on drifting ice floes.", encoding="utf-8")
    seen["add"] = wait_until(lambda: w.paths("walruses floes") == {"walrus.txt"}, "an added file")

    (docs / "glaciers.txt").write_text("Volcanoes erupt molten lava.", encoding="utf-8")
    seen["edit"] = wait_until(lambda: w.paths("volcanoes lava") == {"glaciers.txt"}, "an edited file")
    assert w.paths("valleys mountains") == set()  # the old text is gone (the name still matches "glaciers")

    (docs / "arctic").mkdir()
    os.rename(docs / "walrus.txt", docs / "arctic" / "walrus.txt")
    seen["rename"] = wait_until(lambda: w.paths("walruses floes") == {"arctic/walrus.txt"}, "a renamed file")

    (docs / "tea" / "green.md").unlink()
    seen["delete"] = wait_until(lambda: w.paths("hangzhou tea") == set(), "a deleted file")

    assert all(r.error is None for r in w.watcher.runs)
    print("\nwatch latency, change -> searchable (s):", {k: round(v, 2) for k, v in seen.items()})


def test_a_burst_of_500_events_costs_few_runs(tmp_path: Path):
    w = start(tmp_path, WatchConfig(quiet_s=1.0))
    try:
        before = len(w.watcher.runs)
        t0 = time.monotonic()
        for i in range(100):  # each write is several events (created, modified, closed), 5 writes per file
            for version in range(5):
                (w.docs / f"burst{i:03}.txt").write_text(f"Burst file {i} version {version} lemmings.")
        burst_s = time.monotonic() - t0
        added = lambda: sum(r.summary.added for r in w.watcher.runs[before:] if r.summary)  # noqa: E731
        wait_until(lambda: added() == 100, "the burst's 100 files")
        time.sleep(2.5)  # a quiet period and a run more: any run still owed would have been counted
        runs = w.watcher.runs[before:]
        events = sum(r.events for r in runs)
        print(f"\nburst: {events} events in {burst_s:.2f} s -> {len(runs)} run(s)")
        assert events >= 500
        assert 1 <= len(runs) <= 3
        assert sum(r.summary.added for r in runs if r.summary) == 100
    finally:
        w.watcher.stop()
        w.thread.join(timeout=10)


def test_index_inside_the_watched_folder_does_not_wake_it(tmp_path: Path):
    w = start(tmp_path, WatchConfig(quiet_s=0.3), index_dir=tmp_path / "docs" / "idx")
    try:
        settled = settle(w.watcher)  # the first run's own writes (and reads) have had time to echo
        assert settled <= 2  # at most one more: the folder saw idx/ appear
        time.sleep(2)
        assert len(w.watcher.runs) == settled
    finally:
        w.watcher.stop()
        w.thread.join(timeout=10)


def test_polling_and_a_single_file(tmp_path: Path):
    w = start(tmp_path, WatchConfig(quiet_s=0.3, poll=True, poll_interval_s=0.2))
    try:
        (w.docs / "new.txt").write_text("Penguins huddle in winter storms.", encoding="utf-8")
        wait_until(lambda: w.paths("penguins huddle") == {"new.txt"}, "a file added under polling")
    finally:
        w.watcher.stop()
        w.thread.join(timeout=10)
    one = tmp_path / "one" / "note.txt"
    write_docs(one.parent, {"note.txt": "Otters hold hands.", "other.txt": "Beavers build dams."})
    encoder, runs = FakeEncoder(), []
    watcher = Watcher(
        one, tmp_path / "idx1", encoder=encoder, watch=WatchConfig(quiet_s=0.3), on_run=runs.append
    )
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(runs) == 1, "the first run")
        (one.parent / "other.txt").write_text("Beavers fell trees.")  # not the watched file: no run
        one.write_text("Otters float while sleeping.")
        wait_until(lambda: len(runs) == 2, "a run after the file changed")
        assert runs[1].summary is not None and runs[1].summary.updated == 1
        time.sleep(1)
        assert len(runs) == 2
    finally:
        watcher.stop()
        thread.join(timeout=10)


def test_first_run_errors_are_raised_later_ones_reported(tmp_path: Path):
    docs = write_docs(tmp_path / "docs", DOCS)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigError, match="is a file"):
        Watcher(docs, tmp_path / "file", encoder=FakeEncoder()).run()
    with pytest.raises(ConfigError, match="does not exist"):
        Watcher(tmp_path / "nowhere", tmp_path / "idx")
    with pytest.raises(ConfigError, match="max_delay_s=0.5: must be at least quiet_s=1"):
        WatchConfig(quiet_s=1, max_delay_s=0.5)
    runs: list[WatchRun] = []
    watcher = Watcher(
        docs, tmp_path / "idx", IndexConfig(), FakeEncoder(), WatchConfig(quiet_s=0.3), runs.append
    )
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(runs) == 1, "the first run")
        (tmp_path / "idx" / "index.sqlite").rename(tmp_path / "idx.sqlite")  # the index goes missing
        (docs / "x.txt").write_text("A change to index.")
        wait_until(lambda: len(runs) == 2, "the second run")
        assert runs[1].summary is None and runs[1].error
    finally:
        watcher.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_cli_watch_prints_a_status_line_per_run_and_stops_on_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    import indexer.build.watch as watch
    from e5search.cli import main

    docs = write_docs(tmp_path / "docs", DOCS)
    real_index = watch.Watcher._index

    def index_then_interrupt(
        self: Watcher, events: int, repair: bool = False, raise_errors: bool = False
    ) -> None:
        self.encoder = self.encoder or FakeEncoder()
        real_index(self, events, repair, raise_errors)
        if len(self.runs) == 2:
            raise KeyboardInterrupt  # Ctrl-C while idle, after two runs
        (docs / "added.txt").write_text("Another file.")

    monkeypatch.setattr(watch.Watcher, "_index", index_then_interrupt)
    assert main(["index", str(docs), "--index", str(tmp_path / "idx"), "--watch"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == f"watching {docs} (Ctrl-C stops)"
    assert " run 1 (0 changes): 2 added, 0 updated, 0 removed, 0 skipped;" in lines[1]
    assert " run 2 (" in lines[2] and "1 added" in lines[2]
    assert err.strip() == f"stopped watching {docs} after 2 run(s)"
