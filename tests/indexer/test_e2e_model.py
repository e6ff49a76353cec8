"""End to end with the real default model, through the ``e5search`` CLI: index, search in every mode,
cross-lingual hits, JSON output, batch queries, bad files, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from e5search.cli import main

pytestmark = pytest.mark.model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def indexed(default_model_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """The multilingual fixtures plus the bad files, indexed once with the real model."""
    home = default_model_path.parents[1]
    mp = pytest.MonkeyPatch()
    mp.setenv("E5SEARCH_HOME", str(home))
    root = tmp_path_factory.mktemp("e2e")
    shutil.copytree(FIXTURES / "docs", root / "docs")
    for name in ("corrupt.pdf", "image.txt"):
        shutil.copy(FIXTURES / "bad" / name, root / "docs" / name)
    yield root / "docs", root / "idx"
    mp.undo()


def run_json(capsys, *argv: str):
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.strip()]


def search(capsys, index: Path, query: str, mode: str, *extra: str) -> dict:
    code, (obj,) = run_json(
        capsys, "search", query, "--index", str(index), "--mode", mode, "-k", "3", "--json", *extra
    )
    assert code == 0
    return obj


def test_index_reports_summary_and_skips(indexed, capsys):
    docs, idx = indexed
    code, (summary,) = run_json(capsys, "index", str(docs), "--index", str(idx), "--json")
    assert code == 0
    assert set(summary) >= {"added", "updated", "removed", "unchanged", "skipped", "chunks", "seconds"}
    assert summary["added"] == 10 and summary["chunks"] >= 12
    reasons = {s["path"]: s["reason"] for s in summary["skipped"]}
    assert reasons["corrupt.pdf"].startswith("corrupt PDF")
    assert reasons["image.txt"].startswith("binary content")


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
@pytest.mark.parametrize(
    "query, expected",
    [
        ("camembert de Normandie", "fr_fromage.html"),
        ("Волга Каспийское море", "ru_volga.rst"),
        ("龙井茶 绿茶", "zh_tea.docx"),
        ("glacier ice age", "en_glaciers.pdf"),
    ],
)
def test_every_mode_finds_the_document(indexed, capsys, mode, query, expected):
    obj = search(capsys, indexed[1], query, mode)
    assert obj["mode"] == mode and obj["hits"][0]["doc_path"] == expected
    assert {"rank", "score", "doc_path", "chunk_id", "title", "text", "lang"} <= set(obj["hits"][0])
    assert obj["timings_ms"]["total"] > 0


@pytest.mark.parametrize(
    "query, expected",
    [
        ("Wie entsteht Sauerstoff in Pflanzen?", "en_photosynthesis.md"),  # German query, English document
        ("how is bread baked in Germany", "de_rhein_brot.txt"),  # English query, German document
        ("富士山の高さ", "ja_fuji_shiftjis.txt"),
        ("rice dish from Valencia", "es_paella_latin1.txt"),
        ("date palms in the desert", "ar_dates_utf16.txt"),
    ],
)
def test_cross_lingual_dense(indexed, capsys, query, expected):
    assert search(capsys, indexed[1], query, "dense")["hits"][0]["doc_path"] == expected


def test_language_filter_and_beir_records(indexed, capsys):
    obj = search(capsys, indexed[1], "insects that make honey", "dense", "--lang", "de")
    assert obj["hits"][0]["doc_path"] == "beir_corpus.jsonl#b2" and {h["lang"] for h in obj["hits"]} == {"de"}


def test_batch_queries_keep_ids(indexed, capsys, tmp_path):
    qfile = tmp_path / "q.jsonl"
    qfile.write_text('{"_id": "q1", "text": "volcano ash"}\n{"_id": "q2", "text": "chess king"}\n')
    code, objs = run_json(
        capsys, "search", "--queries", str(qfile), "--index", str(indexed[1]), "--mode", "dense"
    )
    assert code == 0 and [o["_id"] for o in objs] == ["q1", "q2"]
    assert [o["hits"][0]["doc_path"] for o in objs] == ["beir_corpus.jsonl#v1", "beir_corpus.jsonl#c3"]


def test_reindex_is_incremental(indexed, capsys):
    docs, idx = indexed
    (docs / "en_photosynthesis.md").unlink()
    code, (summary,) = run_json(capsys, "index", str(docs), "--index", str(idx), "--json")
    assert code == 0 and summary["removed"] == 1 and summary["added"] == 0 and summary["chunks_encoded"] == 0
    hits = search(capsys, idx, "photosynthesis chlorophyll", "hybrid")["hits"]
    assert all(h["doc_path"] != "en_photosynthesis.md" for h in hits)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["search", "   ", "--mode", "dense"], "empty query"),
        (["search", "x", "--lang", "qq"], "unknown language"),
        (["search", "x", "--rerank"], "no reranker"),
        (["search", "a1 " * 600, "--mode", "dense"], "tokens"),
    ],
)
def test_bad_searches_exit_2_with_a_message(indexed, capsys, argv, message):
    code = main([*argv, "--index", str(indexed[1])])
    captured = capsys.readouterr()
    assert code == 2 and message in captured.err and captured.out == ""


def test_missing_index_and_wrong_model(indexed, capsys, tmp_path):
    assert main(["search", "x", "--index", str(tmp_path / "none")]) == 2
    assert "no index" in capsys.readouterr().err
    assert (
        main(["index", str(indexed[0]), "--index", str(indexed[1]), "--model", str(tmp_path / "nope")]) == 2
    )
    assert "nope" in capsys.readouterr().err


def test_info(indexed, capsys):
    assert main(["info", "--index", str(indexed[1]), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["model"]["dim"] == 384 and stats["model"]["query_prompt"] == "query: "
    assert {"en", "de", "fr", "zh", "ja", "ar", "ru"} <= set(stats["document_languages"])


def test_backend_flag_is_checked_against_the_index(indexed, capsys):
    """The index was built with the default backend (int8 on CPU: CTranslate2, else ONNX Runtime, when installed):
    the same backend searches it, an fp32 one is refused with the fix named."""
    from indexer.encoding.backends import choose_backend

    default = choose_backend("auto", "cpu")
    if default == "torch":
        pytest.skip("no int8 backend installed")
    assert main(["info", "--index", str(indexed[1]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["backend"] == default
    hits = search(capsys, indexed[1], "how is bread baked in Germany", "dense", "--backend", default)
    assert hits["hits"][0]["doc_path"] == "de_rhein_brot.txt"
    assert main(["search", "x", "--index", str(indexed[1]), "--mode", "dense", "--backend", "torch"]) == 2
    assert f"pass --backend {default}" in capsys.readouterr().err
