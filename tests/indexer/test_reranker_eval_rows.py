"""``e5search eval``'s rerank rows: each ``+rerank`` row comes with its input row and a paired test against it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from eval.cli import add_arguments
from eval.run import evaluate, input_of, rerank_table, with_inputs
from indexer.retrieval.rerank import RERANK_K
from tests.eval.test_run import DIM, TINY, FakeReranker
from tests.fakes import FakeEncoder


def test_inputs_are_added_before_their_reranked_rows():
    assert with_inputs(("bm25+rerank", "hybrid", "hybrid+rerank")) == (
        "bm25",
        "bm25+rerank",
        "hybrid",
        "hybrid+rerank",
    )
    assert input_of("dense+rerank") == "dense" and input_of("dense") is None


def test_rerank_k_flag_and_default():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).rerank_top == RERANK_K == 20
    assert parser.parse_args(["--rerank-k", "5"]).rerank_top == 5
    assert parser.parse_args(["--rerank-top", "7"]).rerank_top == 7  # the older spelling still works


def test_each_reranked_row_is_tested_against_its_input(tmp_path: Path):
    got = evaluate(
        TINY,
        retrievers=with_inputs(["bm25+rerank", "dense+rerank"]),
        reranker=FakeReranker(),  # scores by the dense cosine: dense+rerank reproduces dense
        index_cache_dir=tmp_path,
        encoder=FakeEncoder(dim=DIM),
        n_resamples=200,
    )
    vs = got["significance"]["vs_input"]
    assert set(vs) == {"bm25+rerank", "dense+rerank"}
    same = vs["dense+rerank"]["ndcg@10"]
    assert same["delta"] == 0 and same["p_randomization"] == 1.0
    res = got["results"]
    moved = vs["bm25+rerank"]["ndcg@10"]
    assert moved["delta"] == pytest.approx(res["bm25+rerank"]["ndcg@10"] - res["bm25"]["ndcg@10"], abs=1e-9)
    assert moved["delta"] != 0
    table = rerank_table(got)
    assert "| bm25+rerank | bm25 |" in table and "| dense+rerank | dense |" in table
    assert rerank_table({"results": res, "significance": {}}) == ""
