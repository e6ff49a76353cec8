"""End to end on the tiny BEIR fixture with the fake encoder: every metric value is known in advance.

Why each query lands where it does (FakeEncoder: cosine of hashed bags of words; BM25: Lucene-style analysis):

- q1 "solar panel efficiency": d01 has all three words, d03 two, d02 one; equal lengths → d01, d03, d02 in both.
  Graded qrels d01=2, d02=1 → nDCG@10 = (2 + 1/log2 4) / (2 + 1/log2 3) = 0.950234, MAP = (1 + 2/3) / 2.
- q2 "to be or not to be": only stopwords, so BM25 returns nothing (all metrics 0); the fake encoder keeps the
  words and finds Hamlet (d04), the only document that has them, at rank 1.
- q3 "zebras grazing": BM25 stems both words and only d05 has both (zebra, graze) → rank 1. The fake encoder
  matches words exactly: d05 shares only "zebras" and is long (16 words, cosine 1/sqrt(32)), while d07 (7 words,
  "grazing") and d06 (10 words, "grazing", "the" twice) are shorter → dense order d07, d06, d05: rank 3.
  Hybrid (RRF, k=60): BM25 order d05, d07, d06 and dense d07, d06, d05 give d07 1/62+1/61 > d05 1/61+1/63 >
  d06 1/63+1/62 → rank 2.
- q4 (Russian), q5 (Chinese), q6 (Arabic): one document shares the query's words/stems/bigrams → rank 1 in all.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from eval.datasets import load_beir
from eval.run import EvalConfig, evaluate, parse_retrievers, split_name
from indexer.errors import ConfigError, DatasetError
from indexer.ingest.langdetect import detect_language
from tests.fakes import FakeEncoder

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "beir_tiny"
DIM = 8192  # the smallest power of two without collisions between the fixture's words
NDCG_Q1 = (2 + 1 / 2) / (2 + 1 / np.log2(3))
MAP_Q1 = (1 + 2 / 3) / 2
# per query (q1..q6): (nDCG@10, Recall@100, MRR@10, MAP@100)
EXPECTED_PER_QUERY = {
    "bm25": [(NDCG_Q1, 1, 1, MAP_Q1), (0, 0, 0, 0), (1, 1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1)],
    "dense": [
        (NDCG_Q1, 1, 1, MAP_Q1),
        (1, 1, 1, 1),
        (0.5, 1, 1 / 3, 1 / 3),
        (1, 1, 1, 1),
        (1, 1, 1, 1),
        (1, 1, 1, 1),
    ],
    "hybrid": [
        (NDCG_Q1, 1, 1, MAP_Q1),
        (1, 1, 1, 1),
        (1 / np.log2(3), 1, 0.5, 0.5),
        (1, 1, 1, 1),
        (1, 1, 1, 1),
        (1, 1, 1, 1),
    ],
}
EXPECTED_MEANS = {  # the means of the rows above, written out
    "bm25": {"ndcg@10": 0.825039, "recall@100": 0.833333, "mrr@10": 0.833333, "map@100": 0.805556},
    "dense": {"ndcg@10": 0.908372, "recall@100": 1.0, "mrr@10": 0.888889, "map@100": 0.861111},
    "hybrid": {"ndcg@10": 0.930194, "recall@100": 1.0, "mrr@10": 0.916667, "map@100": 0.888889},
}
METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100")


class FakeReranker:
    """Scores a passage by the fake encoder's cosine, so reranking reproduces the dense order."""

    name = "fake-reranker"
    interpolation = 1.0  # the cross-encoder's order, as any reranker without a shipped weight

    def __init__(self):
        self.encoder = FakeEncoder(dim=DIM)

    def score(self, query, passages):
        q = self.encoder.encode_queries([query])[0]
        return self.encoder.encode_passages(list(passages)) @ q  # (n_passages,)


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> dict:
    cache = tmp_path_factory.mktemp("eval-cache")
    return evaluate(
        TINY,
        retrievers=["bm25", "dense", "hybrid"],
        index_cache_dir=cache,
        encoder=FakeEncoder(dim=DIM),
        n_resamples=2000,
        fusion="rrf",  # the hand-computed hybrid values above are plain RRF's
    )


def test_fixture_preconditions_hold():
    """The reasoning above assumes these: no hash collisions between fixture words, and the intended languages."""
    corpus, queries, _ = load_beir(TINY, "test")
    enc = FakeEncoder(dim=DIM)
    texts = [d["title"] + " " + d["text"] for d in corpus.values()] + list(queries.values())
    words = {w for t in texts for w in enc._words(t)}
    buckets = {
        int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little") % DIM for w in words
    }
    assert len(buckets) == len(words)
    langs = {doc_id: detect_language(d["text"]) for doc_id, d in corpus.items()}
    assert langs == {
        **{f"d{i:02d}": "en" for i in range(1, 9)},
        "d09": "ru",
        "d10": "ru",
        "d11": "zh",
        "d12": "zh",
        "d13": "ar",
        "d14": "ar",
    }


def test_exact_per_query_values(result: dict):
    for name, rows in EXPECTED_PER_QUERY.items():
        for qid, expected in zip(["q1", "q2", "q3", "q4", "q5", "q6"], rows, strict=True):
            got = [result["per_query"][name][qid][m] for m in METRICS]
            assert got == pytest.approx(expected, abs=1e-9), (name, qid)


def test_exact_means_and_result_shape(result: dict):
    assert (result["dataset"], result["split"], result["n_queries"], result["n_docs"]) == (
        "beir_tiny",
        "test",
        6,
        14,
    )
    for name, expected in EXPECTED_MEANS.items():
        row = result["results"][name]
        assert {m: row[m] for m in METRICS} == pytest.approx(expected, abs=1e-6)
        for m in METRICS:
            lo, hi = row["ci95"][m]
            assert lo <= row[m] <= hi
    assert result["queries"]["q2"] == "to be or not to be"
    json.dumps(result)  # everything is JSON-serialisable


def test_significance_against_bm25(result: dict):
    sig = result["significance"]
    assert sig["baseline"] == "bm25" and set(sig["vs_baseline"]) == {"dense", "hybrid"}
    dense = sig["vs_baseline"]["dense"]["ndcg@10"]
    assert dense["delta"] == pytest.approx((1 - 0.5) / 6)  # q2 +1, q3 -0.5
    # only q2 and q3 differ; every sign flip of (+1, -0.5) is at least as extreme → p = 1
    assert dense["p_randomization"] == pytest.approx(1.0)


def test_config_records_model_and_cache_key(result: dict):
    cfg = result["config"]
    assert cfg["encoder"]["fingerprint"] == f"fake-{DIM}-128"
    assert cfg["retrievers"] == ("bm25", "dense", "hybrid")
    assert cfg["chunk_size"] == 512
    assert f"fake-{DIM}-128" in cfg["index_dir"] and cfg["corpus_hash"] in cfg["index_dir"]


def test_second_run_reuses_the_index_without_encoding(tmp_path: Path):
    first, second = FakeEncoder(dim=DIM), FakeEncoder(dim=DIM)
    evaluate(TINY, retrievers=["dense"], index_cache_dir=tmp_path, encoder=first, n_resamples=100)
    again = evaluate(TINY, retrievers=["dense"], index_cache_dir=tmp_path, encoder=second, n_resamples=100)
    assert sum(first.calls) > 0 and second.calls == []
    assert again["results"]["dense"]["ndcg@10"] == pytest.approx(EXPECTED_MEANS["dense"]["ndcg@10"], abs=1e-6)


def test_reranked_retrievers(tmp_path: Path):
    got = evaluate(
        TINY,
        retrievers=["bm25+rerank", "dense+rerank"],
        reranker=FakeReranker(),
        index_cache_dir=tmp_path,
        encoder=FakeEncoder(dim=DIM),
        n_resamples=100,
    )
    # reranking by the dense cosine: dense+rerank is dense; bm25+rerank reorders BM25's hits (q3: d05 last of 3)
    # and still has nothing for q2
    assert got["results"]["dense+rerank"]["ndcg@10"] == pytest.approx(
        EXPECTED_MEANS["dense"]["ndcg@10"], abs=1e-6
    )
    assert got["results"]["bm25+rerank"]["ndcg@10"] == pytest.approx((NDCG_Q1 + 0 + 0.5 + 3) / 6, abs=1e-9)
    assert got["results"]["bm25+rerank"]["mrr@10"] == pytest.approx((1 + 0 + 1 / 3 + 3) / 6, abs=1e-9)
    assert got["config"]["reranker"] == "fake-reranker"
    assert (
        got["significance"]["baseline"] == "bm25+rerank"
    )  # no plain bm25: the first retriever is the baseline


def test_bm25_alone_encodes_nothing_and_scores_the_same(tmp_path: Path, result: dict):
    enc = FakeEncoder(dim=DIM)
    got = evaluate(TINY, retrievers=["bm25"], index_cache_dir=tmp_path, encoder=enc, n_resamples=2000)
    assert enc.calls == []
    for key in (*METRICS, "ci95"):
        assert got["results"]["bm25"][key] == result["results"]["bm25"][key]
    assert got["config"]["encoder"]["fingerprint"] == f"fake-{DIM}-128-lexical"


def test_subset_run(tmp_path: Path):
    got = evaluate(
        TINY,
        retrievers=["bm25"],
        index_cache_dir=tmp_path,
        encoder=FakeEncoder(dim=DIM),
        max_queries=3,
        max_docs=6,
        n_resamples=100,
    )
    assert got["n_queries"] == 3 and got["n_docs"] == 6


def test_bad_configs_are_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match="choose from"):
        EvalConfig(retrievers=("bm25", "splade"))
    with pytest.raises(ConfigError, match="max_queries=0"):
        EvalConfig(max_queries=0)
    with pytest.raises(ConfigError, match="rerank_top=0"):
        EvalConfig(rerank_top=0)
    with pytest.raises(ConfigError, match="no reranker configured"):
        evaluate(TINY, retrievers=["dense+rerank"], index_cache_dir=tmp_path, encoder=FakeEncoder(dim=DIM))


def test_retriever_names():
    assert parse_retrievers(" bm25, dense+rerank ,") == ("bm25", "dense+rerank")
    assert split_name("hybrid+rerank") == ("hybrid", True)
    assert split_name("dense") == ("dense", False)


def test_a_skipped_corpus_is_an_error_not_zero_scores(tmp_path, monkeypatch):
    """A BEIR corpus is one file: if indexing skips it (here: over a tiny time budget), every retriever would
    score 0. The eval says so instead (SciFact's corpus.jsonl took over the default 60 s on 2 shared cores)."""
    import eval.run

    monkeypatch.setattr(eval.run, "EVAL_FILE_TIMEOUT_S", 1e-9)
    with pytest.raises(DatasetError, match="skipped its corpus.*file_timeout_s"):
        evaluate(TINY, retrievers=["bm25"], index_cache_dir=tmp_path, encoder=FakeEncoder(dim=DIM))
    monkeypatch.undo()  # the cached index still holds the corpus as skipped: the next run rebuilds it
    result = evaluate(TINY, retrievers=["bm25"], index_cache_dir=tmp_path, encoder=FakeEncoder(dim=DIM))
    assert result["results"]["bm25"]["ndcg@10"] == pytest.approx(EXPECTED_MEANS["bm25"]["ndcg@10"], abs=1e-6)
