"""The BEIR loader on the tiny fixture: the good split, and each broken one with its error message."""

from __future__ import annotations

import gzip
import logging
import shutil
from pathlib import Path

import pytest

from eval.datasets import (
    DatasetError,
    corpus_hash,
    load_beir,
    subset,
    write_beir,
)
from indexer.ingest.beir import list_splits, load_corpus

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "beir_tiny"


def test_loads_the_good_split_and_drops_queries_without_qrels():
    corpus, queries, qrels = load_beir(TINY, "test")
    assert len(corpus) == 14
    assert corpus["d09"] == {"title": "Домашние животные", "text": "Наша кошка спит на диване весь день."}
    assert sorted(queries) == ["q1", "q2", "q3", "q4", "q5", "q6"]  # q7 has no judgements
    assert qrels["q1"] == {"d01": 2, "d02": 1}
    assert qrels["q4"] == {"d09": 1, "d10": 0}


def test_gzipped_corpus_reads_the_same(tmp_path: Path):
    copy = Path(shutil.copytree(TINY, tmp_path / "tiny"))
    raw = (copy / "corpus.jsonl").read_bytes()
    (copy / "corpus.jsonl").unlink()
    (copy / "corpus.jsonl.gz").write_bytes(gzip.compress(raw))
    assert load_beir(copy, "test") == load_beir(TINY, "test")


def test_missing_split_lists_the_splits_there_are():
    assert list_splits(TINY) == ["dev", "malformed", "test", "unknown"]
    with pytest.raises(
        DatasetError, match=r"no qrels for split 'train'; splits present: dev, malformed, test, unknown"
    ):
        load_beir(TINY, "train")


def test_malformed_qrels_line_names_file_line_and_format():
    with pytest.raises(DatasetError) as err:
        load_beir(TINY, "malformed")
    message = str(err.value)
    assert "qrels/malformed.tsv:3:" in message
    assert "query-id<TAB>corpus-id<TAB>score" in message
    assert "'q2 d04 1'" in message


def test_unknown_ids_in_qrels_are_an_error_by_default():
    with pytest.raises(
        DatasetError, match=r"1 unknown query id\(s\) \['q8'\] and 1 unknown document id\(s\) \['d99'\]"
    ):
        load_beir(TINY, "unknown")


def test_unknown_ids_can_be_downgraded_to_a_warning(caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING, logger="eval.datasets"):
        _, queries, qrels = load_beir(TINY, "unknown", on_unknown="warn")
    assert "unknown queries dropped" in caplog.text
    assert list(queries) == ["q1"]  # q8 does not exist: nothing to run
    assert qrels == {"q1": {"d01": 2, "d99": 1}}  # d99 stays: a relevant document no retriever can return


def test_missing_folder_and_files_say_what_is_missing(tmp_path: Path):
    with pytest.raises(DatasetError, match="no such dataset folder"):
        load_beir(tmp_path / "nope")
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n")
    with pytest.raises(DatasetError, match="no corpus.jsonl or corpus.jsonl.gz"):
        load_beir(tmp_path)


def test_bad_corpus_line_names_file_and_line(tmp_path: Path):
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "a", "text": "ok"}\n{"_id": "b", "text": \n', encoding="utf-8"
    )
    with pytest.raises(DatasetError, match=r"corpus.jsonl:2: not valid JSON"):
        load_corpus(tmp_path)
    (tmp_path / "corpus.jsonl").write_text('{"_id": "a"}\n{"_id": "a"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"corpus.jsonl:2: duplicate _id 'a'"):
        load_corpus(tmp_path)


def test_subset_keeps_judged_documents_and_is_seeded():
    corpus, queries, qrels = load_beir(TINY, "test")
    c1, q1, r1 = subset(corpus, queries, qrels, max_queries=2, max_docs=5, seed=1)
    assert len(q1) == 2 and set(r1) == set(q1)
    judged = {d for rels in r1.values() for d in rels}
    assert judged <= set(c1)
    assert len(c1) == max(5, len(judged))
    assert (c1, q1, r1) == subset(corpus, queries, qrels, max_queries=2, max_docs=5, seed=1)
    # judged documents are never dropped, even past max_docs
    c2, _, r2 = subset(corpus, queries, qrels, max_docs=1)
    assert {d for rels in r2.values() for d in rels} <= set(c2)
    assert subset(corpus, queries, qrels) == (corpus, queries, qrels)


def test_corpus_hash_ignores_order_and_write_beir_round_trips(tmp_path: Path):
    corpus, queries, qrels = load_beir(TINY, "test")
    assert corpus_hash(dict(reversed(list(corpus.items())))) == corpus_hash(corpus)
    assert corpus_hash({**corpus, "d01": {"title": "x", "text": "y"}}) != corpus_hash(corpus)
    write_beir(tmp_path / "copy", corpus, queries, {"test": qrels})
    assert load_beir(tmp_path / "copy", "test") == (corpus, queries, qrels)
