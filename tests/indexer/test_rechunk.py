"""`index --rechunk`: an index keeps the chunking it records; other chunk settings are refused (one line naming
--rechunk, exit 2, nothing lost) unless --rechunk asks to re-chunk every file, after which it is searchable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e5search.cli import main
from indexer.storage.store import read_index_manifest
from tests.fakes import FakeEncoder

WORDS = {
    "notes_en.txt": ["coffee", "roasting", "beans", "brown", "aroma", "heat", "drum", "cooling", "crack"],
    "notes_ru.txt": ["вакцина", "иммунитет", "антитела", "клетки", "защита", "прививка", "вирус"],
    "notes_zh.md": ["光合作用", "植物", "叶绿素", "阳光", "葡萄糖", "氧气", "二氧化碳"],
}


def _text(words: list[str], sentences: int = 30) -> str:
    """Sentences of 8 words from ``words``, four paragraphs: long enough for several chunks at 32 or 64 tokens."""
    lines = [
        " ".join(words[(i + j) % len(words)] for j in range(8)).capitalize() + "." for i in range(sentences)
    ]
    return "\n\n".join(" ".join(lines[i : i + sentences // 4]) for i in range(0, sentences, sentences // 4))


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    for name, words in WORDS.items():
        (folder / ("sub" if name.endswith(".md") else "") / name).write_text(_text(words), encoding="utf-8")
    return folder


@pytest.fixture(autouse=True)
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = FakeEncoder()
    monkeypatch.setattr("indexer.build.job.encoder_for_index", lambda manifest, model=None: encoder)
    monkeypatch.setattr("indexer.search.index.encoder_for_index", lambda manifest, model=None: encoder)


def _index(capsys, *args: str) -> tuple[int, dict, str]:
    code = main(["index", *args, "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else {}), err


def _hits(capsys, idx: Path, query: str) -> list[dict]:
    assert main(["search", query, "--index", str(idx), "--mode", "dense", "-k", "3", "--json"]) == 0
    out = capsys.readouterr().out
    return json.loads(out)["hits"]


def test_other_chunking_is_refused_without_rechunk_and_applied_with_it(docs: Path, tmp_path: Path, capsys):
    idx = tmp_path / "idx"
    code, first, _ = _index(
        capsys, str(docs), "--index", str(idx), "--chunk-size", "64", "--chunk-overlap", "0"
    )
    assert code == 0 and first["added"] == 3
    manifest = read_index_manifest(idx)
    assert manifest["config"]["chunking"]["chunk_size"] == 64

    # no chunk flags: the index keeps its recorded chunking, nothing is re-read
    code, again, _ = _index(capsys, str(docs), "--index", str(idx))
    assert code == 0 and again["unchanged"] == 3 and again["chunks"] == first["chunks"]
    assert read_index_manifest(idx)["config"]["chunking"]["chunk_size"] == 64

    # other chunking without --rechunk: one line naming --rechunk, exit 2, the index as it was
    code, _, err = _index(capsys, str(docs), "--index", str(idx), "--chunk-size", "32")
    assert code == 2 and "--rechunk" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    kept = read_index_manifest(idx)
    assert kept["generation"] == manifest["generation"] and kept["n_chunks"] == first["chunks"]
    assert kept["config"]["chunking"] == manifest["config"]["chunking"]
    assert _hits(capsys, idx, "вакцина иммунитет")[0]["doc_path"] == "notes_ru.txt"

    # with --rechunk: every file re-chunked at the new size, recorded, and searchable
    code, rebuilt, _ = _index(capsys, str(docs), "--index", str(idx), "--chunk-size", "32", "--rechunk")
    assert code == 0 and rebuilt["updated"] == 3 and rebuilt["added"] == 0 and rebuilt["removed"] == 0
    assert rebuilt["chunks"] > first["chunks"]
    after = read_index_manifest(idx)
    assert after["config"]["chunking"]["chunk_size"] == 32 and after["n_chunks"] == rebuilt["chunks"]
    assert after["generation"] == manifest["generation"] + 1
    hits = _hits(capsys, idx, "光合作用 叶绿素")
    assert hits[0]["doc_path"] == "sub/notes_zh.md"

    # and the index keeps its new chunking on the next plain run
    code, plain, _ = _index(capsys, str(docs), "--index", str(idx))
    assert code == 0 and plain["unchanged"] == 3 and plain["chunks"] == rebuilt["chunks"]


def test_rechunk_needs_the_whole_indexed_folder(docs: Path, tmp_path: Path, capsys):
    idx = tmp_path / "idx"
    assert (
        _index(capsys, str(docs), "--index", str(idx), "--chunk-size", "64", "--chunk-overlap", "0")[0] == 0
    )
    code, _, err = _index(capsys, str(docs / "sub"), "--index", str(idx), "--chunk-size", "32", "--rechunk")
    assert code == 2 and "--rechunk" in err and str(docs) in err and "Traceback" not in err
    assert read_index_manifest(idx)["config"]["chunking"]["chunk_size"] == 64


def test_rechunk_with_watch_is_refused(docs: Path, tmp_path: Path, capsys):
    code, _, err = _index(capsys, str(docs), "--index", str(tmp_path / "idx"), "--rechunk", "--watch")
    assert code == 2 and "--rechunk with --watch" in err and not (tmp_path / "idx" / "index.sqlite").exists()
