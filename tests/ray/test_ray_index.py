"""Indexing through Ray actors on a real local cluster (tests/ray/conftest.py): the same index as a local run,
a worker killed mid-run costs nothing but time, and the embedding cache is shared with local runs."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from indexer.build.job import build_index
from indexer.config import IndexConfig, ModelConfig
from indexer.encoding.ray_encode import EncoderSpec, RayEncoder, connect
from indexer.search.index import Index
from indexer.storage.layout import Layout
from tests.fakes import FakeEncoder

pytestmark = pytest.mark.ray

WORDS = {
    "en": "river water light plant sugar oxygen bread flour city night",
    "de": "Fluss Wasser Licht Pflanze Zucker Brot Mehl Stadt Nacht Wald",
    "ru": "река вода свет растение сахар хлеб мука город ночь лес",
    "ar": "نهر ماء ضوء نبات سكر خبز دقيق مدينة ليل غابة",
    "zh": "河 水 光 植物 糖 面包 面粉 城市 夜 森林",
}


def write_corpus(folder: Path, files: int = 20, paragraphs: int = 6) -> Path:
    """Seeded multilingual files, several chunks each (the fake encoder's chunks are 128 tokens at most)."""
    rng = np.random.default_rng(7)
    langs = sorted(WORDS)
    for i in range(files):
        lang = langs[i % len(langs)]
        words = WORDS[lang].split()
        body = "\n\n".join(
            " ".join(rng.choice(words, size=60)) + f" {lang}{i}p{p}." for p in range(paragraphs)
        )
        (folder / lang).mkdir(parents=True, exist_ok=True)
        (folder / lang / f"doc{i:02d}.txt").write_text(f"# {lang} {i}\n\n{body}\n", encoding="utf-8")
    return folder


def chunk_rows(index: Path) -> list[tuple]:
    with sqlite3.connect(index / "index.sqlite") as conn:
        return conn.execute(
            "SELECT c.id, d.path, c.ordinal, c.text_hash FROM chunks c JOIN documents d ON d.id = c.document_id "
            "ORDER BY c.id"
        ).fetchall()


def cached_vectors(index: Path) -> dict[str, np.ndarray]:
    with sqlite3.connect(Layout(index).cache_db) as conn:
        return {h: np.frombuffer(v, dtype=np.float32) for h, v in conn.execute("SELECT hash, vec FROM emb")}


def small_groups() -> IndexConfig:
    return IndexConfig(model=ModelConfig(batch_size=4))  # groups of 4, 8, ... 32 texts: many groups


def test_two_workers_build_the_index_a_local_run_builds(ray_address, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    local = build_index(corpus, tmp_path / "local", small_groups(), encoder=FakeEncoder())
    connect("auto")  # $RAY_ADDRESS: the test's head
    ray_encoder = RayEncoder(FakeEncoder(), EncoderSpec("tests.fakes:FakeEncoder"), workers=2, part_size=4)
    try:
        pids = {who["pid"] for who in ray_encoder.identities}
        remote = build_index(corpus, tmp_path / "ray", small_groups(), encoder=ray_encoder)
    finally:
        ray_encoder.close()
    assert len(pids) == 2 and os.getpid() not in pids
    assert remote.chunks == local.chunks == remote.chunks_encoded > 100
    assert chunk_rows(tmp_path / "ray") == chunk_rows(tmp_path / "local")
    here, there = cached_vectors(tmp_path / "local"), cached_vectors(tmp_path / "ray")
    assert here.keys() == there.keys()
    assert max(float(np.abs(here[h] - there[h]).max()) for h in here) == 0.0  # the same code on both sides
    hits = [
        [
            (h.chunk_id, round(h.score, 6))
            for h in Index.open(d, encoder=FakeEncoder()).search("Brot Mehl").hits
        ]
        for d in (tmp_path / "local", tmp_path / "ray")
    ]
    assert hits[0] == hits[1] and hits[0]


def _kill_when_cached(cache: Path, rows: int, pid: int, killed: threading.Event) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(cache, timeout=1) as conn:
                if conn.execute("SELECT count(*) FROM emb").fetchone()[0] >= rows:
                    os.kill(pid, signal.SIGKILL)
                    killed.set()
                    return
        except sqlite3.OperationalError:  # not created yet
            pass
        time.sleep(0.05)


def test_a_worker_killed_mid_run_costs_only_time(ray_address, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    expected = chunk_rows(_local_index(corpus, tmp_path / "local"))
    connect("auto")
    spec = EncoderSpec("tests.ray.slow:SlowFakeEncoder", {"delay": 0.03})
    ray_encoder = RayEncoder(FakeEncoder(), spec, workers=2, part_size=4)
    victim, killed = ray_encoder.identities[0]["pid"], threading.Event()
    killer = threading.Thread(
        target=_kill_when_cached, args=(Layout(tmp_path / "ray").cache_db, 12, victim, killed)
    )
    killer.start()
    try:
        summary = build_index(corpus, tmp_path / "ray", small_groups(), encoder=ray_encoder)
        killer.join()
        restarted = ray_encoder.worker_pids()[0]
    finally:
        ray_encoder.close()
    assert killed.is_set()
    assert ray_encoder.redone > 0  # a part was in flight on the dead worker and was sent again
    assert restarted != victim  # Ray restarted the actor (max_restarts)
    assert summary.chunks == summary.chunks_encoded == len(expected)
    assert chunk_rows(tmp_path / "ray") == expected  # exact counts, no chunk twice
    again = build_index(corpus, tmp_path / "ray", small_groups(), encoder=FakeEncoder(), repair=True)
    assert again.chunks_encoded == 0 and again.chunks == len(expected)  # a local rerun: all from the cache


def _local_index(corpus: Path, index: Path) -> Path:
    build_index(corpus, index, small_groups(), encoder=FakeEncoder())
    return index
