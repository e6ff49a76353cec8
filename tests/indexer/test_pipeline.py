"""Reading overlaps encoding: the read-ahead thread and the streaming, cached encoding stage."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

import indexer.build.scan as scan
from indexer.build.job import build_index
from indexer.build.pipeline import CachedEncoding, read_ahead
from indexer.config import IndexConfig, ModelConfig
from indexer.search.index import Index
from indexer.storage.embcache import EmbeddingCache
from tests.fakes import FakeEncoder


def wait_for(condition, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_read_ahead_runs_ahead_and_keeps_order():
    made: list[int] = []

    def items():
        for i in range(20):
            made.append(i)
            yield i

    stream = read_ahead(items(), depth=3)
    first = next(stream)
    # the consumer holds one item; the thread goes on until the hand-over is full (3 waiting + 1 being put)
    assert wait_for(lambda: len(made) >= 4)
    time.sleep(0.1)
    assert len(made) <= 5, "read-ahead is bounded by its depth"
    assert [first, *stream] == list(range(20))


def test_read_ahead_raises_where_the_error_happened():
    def items():
        yield 1
        yield 2
        raise ValueError("corrupt thing")

    got = []
    with pytest.raises(ValueError, match="corrupt thing"):
        for item in read_ahead(items(), depth=8):
            got.append(item)
    assert got == [1, 2]


def test_read_ahead_stops_its_thread_when_the_consumer_stops():
    def endless():
        i = 0
        while True:
            i += 1
            yield i

    stream = read_ahead(endless(), depth=2)
    assert [next(stream), next(stream)] == [1, 2]
    stream.close()  # what a break or an exception in the consumer does
    assert not any(t.name == "e5search-read-ahead" and t.is_alive() for t in threading.enumerate())


def test_cached_encoding_groups_dedupes_and_reuses_the_cache(tmp_path: Path):
    enc = FakeEncoder()
    texts = [f"passage number {i} about topic {i % 3}" for i in range(7)]
    cache = EmbeddingCache(tmp_path / "c.sqlite", enc.fingerprint, enc.dim)
    stage = CachedEncoding(enc, cache, group=3)
    stage.add(texts[:2])
    assert enc.calls == []  # fewer than a group waiting: nothing encoded yet
    stage.add(texts[2:5] + texts[:2])  # duplicates of waiting texts are not queued twice
    assert enc.calls == [3]  # a full group went through as soon as it was there
    stage.add(texts[5:])
    vectors = stage.finish()
    assert sum(enc.calls) == 7 and stage.encoded == 7
    from indexer.storage.embcache import text_hash

    want = enc.encode_passages(texts)
    np.testing.assert_allclose(np.stack([vectors[text_hash(t)] for t in texts]), want)

    again = FakeEncoder()
    stage = CachedEncoding(again, cache, group=3)
    stage.add(texts)
    assert stage.finish().keys() == vectors.keys() and again.calls == [] and stage.encoded == 0
    cache.close()


def test_a_pool_encodes_the_longest_group_of_it_first(tmp_path: Path):
    """With a pool (on CPU), texts wait until the pool is full and then its longest ``group`` go first, so batches are
    length-sorted over the pool rather than over each group in reading order."""
    enc = FakeEncoder()
    cache = EmbeddingCache(tmp_path / "c.sqlite", enc.fingerprint, enc.dim)
    stage = CachedEncoding(enc, cache, group=2, first_group=2, pool=4)
    texts = [
        "short one",
        "a much longer passage about rivers and lakes",
        "mid length text",
        "Волга — длинная река",
    ]
    stage.add(texts[:3])
    assert enc.calls == []  # a group is waiting, but the pool is not full
    seen: list[list[str]] = []
    real = enc.encode_passages
    enc.encode_passages = lambda batch, show_progress=False: seen.append(list(batch)) or real(batch)  # type: ignore[method-assign]
    stage.add(texts[3:])
    assert seen == [sorted(texts, key=len, reverse=True)[:2]]  # the pool's two longest
    assert len(stage.finish()) == 4 and [len(b) for b in seen] == [2, 2]
    cache.close()


def test_build_reads_further_files_while_the_encoder_works(tmp_path: Path, monkeypatch):
    """The first encoder call waits for the reader to get past the files of the first group: it does only if
    reading runs beside encoding (read one by one before encoding, it would time out)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(30):
        (docs / f"doc{i:02d}.txt").write_text(f"Document {i} talks about river {i} and mountain {i}.\n")
    prepared = []
    real_prepare = scan._prepare
    monkeypatch.setattr(scan, "_prepare", lambda *a, **kw: prepared.append(a[1]) or real_prepare(*a, **kw))

    class WaitingEncoder(FakeEncoder):  # like a GPU: the CPU is free while it computes
        on_gpu = True
        seen_while_encoding: int | None = None

        def encode_passages(self, texts, show_progress=False):
            if self.seen_while_encoding is None:
                wait_for(lambda: len(prepared) >= 20, timeout=10.0)
                self.seen_while_encoding = len(prepared)
            return super().encode_passages(texts, show_progress)

    enc = WaitingEncoder()
    config = IndexConfig(model=ModelConfig(batch_size=1))  # groups of 1, 2, 4, then 8 chunks
    summary = build_index(docs, tmp_path / "idx", config, encoder=enc)
    assert enc.calls[:4] == [1, 2, 4, 8]  # groups double from one batch to 8; the first went early
    assert enc.seen_while_encoding is not None and enc.seen_while_encoding >= 20  # the reader went on
    assert summary.added == 30 and summary.chunks == 30 and summary.chunks_encoded == 30
    hits = Index.open(tmp_path / "idx", encoder=enc).search("river 17 mountain 17", mode="dense", k=1).hits
    assert hits[0].doc_path == "doc17.txt"


def test_build_on_cpu_reads_everything_before_encoding(tmp_path: Path):
    """An encoder that computes on the CPU gets no reader thread beside it (it would only compete for cores)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(12):
        (docs / f"doc{i:02d}.txt").write_text(f"Document {i} talks about lake {i}.\n")
    threads: set[str] = set()

    class RecordingEncoder(FakeEncoder):
        def encode_passages(self, texts, show_progress=False):
            threads.update(t.name for t in threading.enumerate())
            return super().encode_passages(texts, show_progress)

    enc = RecordingEncoder()
    summary = build_index(docs, tmp_path / "idx", IndexConfig(model=ModelConfig(batch_size=1)), encoder=enc)
    assert summary.chunks == 12 and enc.calls == [12]  # pooled, then the longest group first: one call here
    assert "e5search-read-ahead" not in threads
