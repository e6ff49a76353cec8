"""The app's watchers (app.watching, app.indexing.watch): a real folder, a real watchdog observer, a real index,
the fake encoder. Started from the page's call, shared by the process, stopped by the toggle or by removing the
index; a first run that fails stops the watcher with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import indexing, service, watching
from indexer.config import IndexConfig
from indexer.errors import IndexStateError
from tests.fakes import FakeEncoder
from tests.indexer.test_watch import indexed_paths, wait_until


@pytest.fixture()
def fake_model():
    service.use_encoder(FakeEncoder())
    yield
    service.use_encoder(None)


def test_watch_follows_the_folder_until_the_index_is_removed(tmp_path: Path, fake_model):
    docs, index_dir = tmp_path / "docs", tmp_path / "idx"
    docs.mkdir()
    (docs / "a.txt").write_text("Glaciers carve valleys.\n", encoding="utf-8")
    w = indexing.watch(docs, index_dir)
    try:
        assert indexing.watch(docs, index_dir) is w  # one watcher per index, whoever asks
        assert watching.state(index_dir) is w and w.running
        wait_until(lambda: w.runs >= 1, "the catch-up run")
        assert "Watching" in w.line() and "1 run;" in w.line() and "added 1" in w.line()
        (docs / "b.txt").write_text("A terminal moraine marks the furthest advance.\n", encoding="utf-8")
        wait_until(lambda: "b.txt" in indexed_paths(index_dir, "terminal moraine"), "the new file in search")
        wait_until(lambda: w.runs >= 2, "the run reported")  # reported just after its commit
        assert w.failure is None
    finally:
        removed = indexing.remove_index(
            index_dir
        )  # stops the watcher first, or it would build the index again
    assert "index.sqlite" in removed and not w.running
    assert watching.state(index_dir) is None and not (index_dir / "index.sqlite").exists()


def test_stop_ends_the_thread_and_a_failed_first_run_says_why(tmp_path: Path, fake_model):
    docs, index_dir = tmp_path / "docs", tmp_path / "idx"
    docs.mkdir()
    (docs / "a.txt").write_text("Eskers are ridges of gravel.\n", encoding="utf-8")
    w = indexing.watch(docs, index_dir)
    wait_until(lambda: w.runs >= 1, "the catch-up run")
    watching.stop(index_dir)
    assert not w.running and watching.state(index_dir) is None
    watching.stop(index_dir)  # stopping twice is harmless
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "index.sqlite").write_bytes(b"not a database, someone else's file" * 100)
    with pytest.raises(IndexStateError, match="not a readable e5search index"):
        indexing.watch(docs, foreign)  # the page shows this line; no watcher is left behind
    assert watching.state(foreign) is None
    bad = watching.start(docs, foreign, IndexConfig(), FakeEncoder())  # a first run that fails in the thread
    wait_until(lambda: not bad.running, "the watcher stopping on a foreign index")
    assert bad.failure is not None and "not a readable e5search index" in bad.failure
    assert (foreign / "index.sqlite").read_bytes().startswith(b"not a database")  # nothing written over it
