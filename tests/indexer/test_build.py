"""The indexing job and search API on a real SQLite file, a real FAISS index and real BM25, with the fake encoder."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from indexer.build.job import build_index
from indexer.search.index import Index
from tests.fakes import FakeEncoder

DOCS = {
    "plants.md": "# Photosynthesis\n\nPlants turn sunlight into sugar. Chlorophyll absorbs light.\n\n"
    "## Light reactions\n\nWater is split and oxygen is released.\n",
    "rhein.txt": "Der Rhein fließt durch Deutschland. Brot wird aus Mehl und Wasser gebacken.\n",
    "fromage.html": "<html><head><title>Fromage</title><script>alert(1)</script></head>"
    "<body><h1>Fromage</h1><p>Le camembert est un fromage de Normandie.</p></body></html>",
    "tea/cha.txt": "中国茶文化历史悠久。绿茶和乌龙茶很有名。\n",
}


def write_docs(folder: Path, docs: dict[str, str] = DOCS) -> Path:
    for rel, text in docs.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_docs(tmp_path / "docs")


@pytest.fixture
def encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def built(corpus: Path, tmp_path: Path, encoder: FakeEncoder) -> Path:
    build_index(corpus, tmp_path / "idx", encoder=encoder)
    return tmp_path / "idx"


def db_chunk_ids(index_dir: Path) -> set[int]:
    with sqlite3.connect(index_dir / "index.sqlite") as conn:
        return {row[0] for row in conn.execute("SELECT id FROM chunks")}


def top_doc(index: Index, query: str, mode: str, **kw) -> str:
    hits = index.search(query, mode=mode, k=3, **kw).hits
    return hits[0].doc_path if hits else ""


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_every_mode_finds_the_document(built: Path, encoder: FakeEncoder, mode: str):
    index = Index.open(built, encoder=encoder)
    assert top_doc(index, "oxygen water split", mode) == "plants.md"
    assert top_doc(index, "camembert Normandie", mode) == "fromage.html"
    assert top_doc(index, "乌龙茶", mode) == "tea/cha.txt"


def test_summary_store_and_vectors_agree(built: Path, encoder: FakeEncoder, corpus: Path):
    index = Index.open(built, encoder=encoder)
    stats = index.stats()
    assert stats["files"] == 4 and stats["documents"] == 4
    assert set(index.dense.ids().tolist()) == db_chunk_ids(built)  # a chunk's primary key is its FAISS id
    assert stats["document_languages"] == {"en": 1, "de": 1, "fr": 1, "zh": 1}
    hit = index.search("Light reactions oxygen", mode="bm25", k=1).hits[0]
    assert hit.heading_path == ("Photosynthesis", "Light reactions")
    # the script element is not indexed text
    assert not index.search("alert", mode="bm25", k=3).hits


def test_incremental_add_change_delete(built: Path, encoder: FakeEncoder, corpus: Path):
    (corpus / "new.txt").write_text("Volcanoes erupt lava and ash.", encoding="utf-8")
    (corpus / "rhein.txt").write_text("Die Elbe fließt nach Hamburg.", encoding="utf-8")
    (corpus / "fromage.html").unlink()
    encoder.calls.clear()
    s = build_index(corpus, built, encoder=encoder)
    assert (s.added, s.updated, s.removed, s.unchanged, s.skipped) == (1, 1, 1, 2, [])
    assert sum(encoder.calls) == s.chunks_encoded == 2  # only the new and the changed file were encoded
    index = Index.open(built, encoder=encoder)
    assert set(index.dense.ids().tolist()) == db_chunk_ids(built)
    for mode in ("dense", "bm25", "hybrid"):
        paths = [h.doc_path for h in index.search("camembert Normandie", mode=mode, k=10).hits]
        assert "fromage.html" not in paths
    assert top_doc(index, "Elbe Hamburg", "bm25") == "rhein.txt"
    assert not index.search("Brot Mehl", mode="bm25", k=5).hits
    assert top_doc(index, "volcanoes lava", "hybrid") == "new.txt"
    # a second run with nothing changed rewrites nothing
    gen = index.manifest["generation"]
    s2 = build_index(corpus, built, encoder=encoder)
    assert (s2.added, s2.updated, s2.removed, s2.unchanged) == (0, 0, 0, 4)
    assert Index.open(built, encoder=encoder).manifest["generation"] == gen


def test_touched_file_with_same_content_is_unchanged(built: Path, encoder: FakeEncoder, corpus: Path):
    import os

    os.utime(corpus / "rhein.txt", (1, 1))
    s = build_index(corpus, built, encoder=encoder)
    assert (s.updated, s.unchanged, s.chunks_encoded) == (0, 4, 0)


def test_bad_files_are_skipped_with_reasons(corpus: Path, tmp_path: Path, encoder: FakeEncoder):
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog")
    (corpus / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    (corpus / "empty.md").write_text("")
    (corpus / "notes.xyz").write_text("unsupported")
    s = build_index(corpus, tmp_path / "idx", encoder=encoder)
    reasons = {item["path"]: item["reason"] for item in s.skipped}
    assert set(reasons) == {"broken.pdf", "photo.txt", "empty.md", "notes.xyz"}
    assert "pdf" in reasons["broken.pdf"].lower()
    assert "binary" in reasons["photo.txt"]
    assert "empty" in reasons["empty.md"]
    assert "unsupported" in reasons["notes.xyz"]
    assert s.added == 4  # the good files went in regardless
    stats = Index.open(tmp_path / "idx", encoder=encoder).stats()
    assert {item["path"] for item in stats["skipped"]} == set(reasons)


def test_oversized_file_is_skipped(corpus: Path, tmp_path: Path, encoder: FakeEncoder):
    from indexer.config import IndexConfig

    (corpus / "huge.txt").write_text("word " * 300_000)
    s = build_index(corpus, tmp_path / "idx", IndexConfig(max_file_mb=1.0), encoder=encoder)
    (reason,) = [i["reason"] for i in s.skipped if i["path"] == "huge.txt"]
    assert "MB" in reason
