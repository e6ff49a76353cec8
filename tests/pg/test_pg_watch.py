"""``index --watch --store URL``: the watcher keeps a PostgreSQL store in step with a folder (real server, real
watchdog observer, fake encoder), and nothing is written to a local folder named after the URL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from indexer.build.watch import Watcher
from tests.fakes import FakeEncoder
from tests.indexer.test_watch import indexed_paths, wait_until

pytestmark = pytest.mark.pg


def test_watch_keeps_a_postgresql_store_in_step(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # a URL taken for a path would become a folder here
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Glaciers carve valleys.\n", encoding="utf-8")
    watcher = Watcher(docs, pg_url, encoder=FakeEncoder())
    assert watcher.index_dir is None  # no folder of the index to tell apart from the watched one
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        wait_until(lambda: len(watcher.runs) >= 1, "the catch-up run")
        assert watcher.runs[0].summary is not None and watcher.runs[0].summary.added == 1
        (docs / "b.txt").write_text("A terminal moraine marks the furthest advance.\n", encoding="utf-8")
        wait_until(lambda: "b.txt" in indexed_paths(pg_url, "terminal moraine"), "the new file in the store")
        (docs / "a.txt").unlink()
        wait_until(lambda: "a.txt" not in indexed_paths(pg_url, "glaciers valleys"), "the deleted file gone")
    finally:
        watcher.stop()
        thread.join(60)
    assert not thread.is_alive()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs"]  # nothing named postgresql: was made
