"""Pair builders (index, BEIR, DDTP, NTREX, JSONL) and cleaning counts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from indexer.errors import ConfigError
from tests.fakes import FakeEncoder
from trainer import pairs as P
from trainer.config import CleanConfig
from trainer.data import Pair, read_pairs
from trainer.stages import run_pairs


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    return path


@pytest.fixture()
def beir(tmp_path: Path) -> Path:
    root = tmp_path / "tinybeir"
    _jsonl(
        root / "corpus.jsonl",
        [
            {"_id": "d1", "title": "Honey", "text": "Bees make honey from nectar."},
            {"_id": "d2", "title": "", "text": "Untitled text."},
            {"_id": "d3", "title": "Чай", "text": "Чай выращивают в Китае."},
        ],
    )
    _jsonl(
        root / "queries.jsonl", [{"_id": "q1", "text": "who makes honey"}, {"_id": "q2", "text": "где чай"}]
    )
    (root / "qrels").mkdir()
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\nq2\td2\t0\n")
    return root


def test_beir_qrels_and_corpus(beir):
    pairs = list(P.from_beir_qrels(beir, "train"))
    assert [(p.query, p.passage) for p in pairs] == [
        ("who makes honey", "Honey Bees make honey from nectar."),
        ("где чай", "Чай Чай выращивают в Китае."),
    ]
    corpus_pairs = list(P.from_beir_corpus(beir))  # title -> text; untitled documents give no pair
    assert [(p.query, p.passage) for p in corpus_pairs] == [
        ("Honey", "Bees make honey from nectar."),
        ("Чай", "Чай выращивают в Китае."),
    ]


def test_ddtp_and_ntrex(tmp_path):
    ddtp = tmp_path / "ddtp"
    _jsonl(
        ddtp / "descriptions.ja.jsonl.gz",
        [
            {
                "md5": "x",
                "package": "vim",
                "short": "テキストエディタ",
                "long": "高機能なテキストエディタです。",
            }
        ],
    )
    _jsonl(
        ddtp / "descriptions.de.jsonl.gz",
        [{"md5": "y", "package": "vim", "short": "Texteditor", "long": "Ein mächtiger Texteditor."}],
    )
    assert [(p.query, p.lang) for p in P.from_ddtp(ddtp)] == [
        ("Texteditor", "de"),
        ("テキストエディタ", "ja"),
    ]
    assert [p.lang for p in P.from_ddtp(ddtp, ["ja"])] == ["ja"]
    ntrex = tmp_path / "ntrex" / "NTREX-128"
    ntrex.mkdir(parents=True)
    for name, lines in (("src.eng", ["Hello.", "Bye."]), ("ref.arb", ["مرحبا.", "وداعا."])):
        with gzip.open(ntrex / f"newstest2019-{name}.txt.gz", "wt", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    assert [(p.query, p.passage) for p in P.from_ntrex(tmp_path / "ntrex", "eng", ["arb"])] == [
        ("Hello.", "مرحبا."),
        ("Bye.", "وداعا."),
    ]
    with pytest.raises(ConfigError, match="LANGUAGES.tsv"):
        list(P.from_ntrex(tmp_path / "ntrex", "eng", ["xxx"]))


def test_from_index_title_and_headings_to_chunk(tmp_path):
    from indexer.build.job import build_index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tea.md").write_text(
        "# Tea\n\n## Growing\n\nTea grows on hills in warm rain.\n\n"
        "## Brewing\n\nSteep the leaves for three minutes.\n",
        encoding="utf-8",
    )
    (docs / "kaffee.txt").write_text("Kaffee wird aus gerösteten Bohnen gemacht.\n", encoding="utf-8")
    build_index(docs, tmp_path / "index", encoder=FakeEncoder())
    pairs = list(P.from_index(tmp_path / "index"))
    by_query = {p.query: p.passage for p in pairs}
    assert any(q.endswith("Growing") and "hills" in by_query[q] for q in by_query), by_query
    assert any("Bohnen" in p for p in by_query.values())
    with pytest.raises(ConfigError, match="no index at"):
        list(P.from_index(tmp_path / "missing"))


def test_cleaning_counts_every_reason():
    pairs = [
        Pair("ok query", "a long enough passage here"),
        Pair("ok query", "a  long enough passage here"),
        Pair("q", "a long enough passage here"),
        Pair("ok query", "short"),
        Pair("same text here!", "same  TEXT here!"),
        Pair("hallo welt", "Das ist ein deutscher Satz hier."),
    ]
    kept, counts = P.clean_pairs(
        pairs, CleanConfig(min_query_chars=3, min_passage_chars=10, languages=("en",))
    )
    assert [p.query for p in kept] == ["ok query"]
    assert counts == {
        "read": 6,
        "kept": 1,
        "dropped_duplicate": 1,
        "dropped_query_length": 1,
        "dropped_passage_length": 1,
        "dropped_identical": 1,
        "dropped_language": 1,
    }


def test_run_pairs_writes_a_report_and_skips_when_done(beir, tmp_path, caplog):
    out = tmp_path / "pairs.jsonl"
    report = run_pairs({"beir": str(beir), "beir_corpus": [str(beir)]}, out, CleanConfig(min_passage_chars=5))
    assert report["counts"]["kept"] == 4 and report["kept_by_source"] == {"beir": 2, "beir-corpus": 2}
    assert len(read_pairs(out)) == 4
    mtime = out.stat().st_mtime_ns
    run_pairs({"beir": str(beir), "beir_corpus": [str(beir)]}, out, CleanConfig(min_passage_chars=5))
    assert out.stat().st_mtime_ns == mtime  # up to date: not rewritten
    with pytest.raises(ConfigError, match="no source given"):
        run_pairs({}, tmp_path / "x.jsonl")
