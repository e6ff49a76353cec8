"""The app picks an index's encoder the way the CLI does, and indexes with the same embedding-cache key.

Both were bugs: the app loaded ``Encoder(model)`` with backend ``auto`` (int8 where onnxruntime is installed) and
refused an index built with torch; and its query memo hid the encoder's ``cache_key``, so app and CLI runs on one
index keyed the embedding cache differently and pruned each other's vectors.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from app import indexing, service
from indexer.build.job import build_index
from indexer.config import IndexConfig, ModelConfig
from indexer.storage.layout import Layout
from tests.app.conftest import CORPUS
from tests.fakes import FakeEncoder

MULTILINGUAL = [
    "The glacier retreated two kilometres in forty years.",
    "Der Gletscher ist in vierzig Jahren zwei Kilometer zurückgegangen.",
    "Ледник отступил на два километра за сорок лет.",
    "氷河は四十年で二キロ後退した。",
]


@pytest.fixture()
def clean_app_caches():
    service.use_encoder(None)
    yield
    service.use_encoder(None)


def test_an_index_built_with_torch_opens_in_the_app_with_onnxruntime_installed(
    tmp_path: Path, monkeypatch, clean_app_caches
):
    pytest.importorskip("onnxruntime")
    from tests.trainer.tiny import make_tiny_model

    monkeypatch.setenv(
        "E5SEARCH_HOME", str(tmp_path / "home")
    )  # the int8 artefact of the tiny model goes here
    model = make_tiny_model(tmp_path / "model", MULTILINGUAL, dropout=0.0)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(MULTILINGUAL):
        (docs / f"d{i}.txt").write_text(text, encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:  # built where onnxruntime is missing: auto means torch there
        for name in [m for m in sys.modules if m == "onnxruntime" or m.startswith("onnxruntime.")]:
            mp.delitem(sys.modules, name)
        mp.setitem(sys.modules, "onnxruntime", None)
        build_index(docs, tmp_path / "idx", IndexConfig(model=ModelConfig(model=str(model), device="cpu")))

    idx = service.open_index(tmp_path / "idx")  # refused before: auto meant onnx-int8 here
    assert idx.encoder.describe()["backend"] == "torch"
    assert idx.search("glacier kilometres", mode="dense", k=1).hits


def test_indexing_from_the_app_keys_the_cache_like_the_cli(
    tmp_path: Path, corpus_copy: Path, clean_app_caches
):
    fake = FakeEncoder()
    fake.cache_key = f"{fake.fingerprint}@format2"  # like an int8 artefact's revision
    service.use_encoder(fake)
    index_dir = tmp_path / "idx"
    indexing.index_folder(corpus_copy, index_dir)
    with sqlite3.connect(Layout(index_dir).cache_db) as conn:
        keys = {k for (k,) in conn.execute("SELECT DISTINCT model FROM emb")}
    assert keys == {fake.cache_key}

    # a CLI run on the same index afterwards finds every vector the app encoded
    (corpus_copy / "new.txt").write_text("A new file about lighthouses and tides.", encoding="utf-8")
    fake.calls.clear()
    summary = build_index(corpus_copy, index_dir, encoder=fake)
    assert summary.added == 1 and sum(fake.calls) == summary.chunks_encoded
    assert summary.chunks_encoded <= 2  # only the new file's chunks


def test_removing_an_index_leaves_other_files(tmp_path: Path, clean_app_caches):
    index_dir = tmp_path / "idx"
    build_index(CORPUS, index_dir, encoder=FakeEncoder())
    (index_dir / "notes.txt").write_text("mine", encoding="utf-8")
    removed = indexing.remove_index(index_dir)
    assert "index.sqlite" in removed and any(name.startswith("dense-") for name in removed)
    assert [p.name for p in index_dir.iterdir()] == ["notes.txt"]
