"""Metrics against hand-computed values (trec_eval semantics through pytrec_eval)."""

from __future__ import annotations

import math

import pytest

from eval.metrics import by_rank, evaluate_run, mean, ranked, truncate

LOG2_3 = math.log2(3)


def test_graded_ndcg_recall_map_mrr_by_hand():
    # ranking: d1 (rel 2), x (0), d2 (rel 1); gains are the relevance levels (trec_eval), discount log2(rank + 1)
    qrels = {"q": {"d1": 2, "d2": 1}}
    run = {"q": {"d1": 3.0, "x": 2.0, "d2": 1.0}}
    got = evaluate_run(qrels, run)["q"]
    dcg = 2 / 1 + 0 + 1 / 2  # 2/log2(2) + 0/log2(3) + 1/log2(4)
    idcg = 2 / 1 + 1 / LOG2_3
    assert got["ndcg@10"] == pytest.approx(dcg / idcg, abs=1e-12)  # 0.950234...
    assert got["recall@100"] == 1.0
    assert got["mrr@10"] == 1.0
    assert got["map@100"] == pytest.approx((1 / 1 + 2 / 3) / 2, abs=1e-12)  # precision at ranks 1 and 3


def test_cutoffs_count_only_the_top_k():
    # a at rank 1, b at rank 101: outside Recall@100 and MAP@100, whose denominator is still 2 relevant docs
    docs = {"a": 1000.0, **{f"f{i:03d}": 500.0 - i for i in range(100)}, "b": 1.0}
    got = evaluate_run({"q": {"a": 1, "b": 1}}, {"q": docs})["q"]
    assert got["recall@100"] == 0.5
    assert got["map@100"] == 0.5
    assert got["ndcg@10"] == pytest.approx(1 / (1 + 1 / LOG2_3), abs=1e-12)


def test_mrr_is_cut_at_10():
    fillers = {f"f{i:02d}": 100.0 - i for i in range(10)}
    late = {"q": {**fillers, "rel": 1.0}}  # first relevant at rank 11: plain recip_rank would give 1/11
    assert evaluate_run({"q": {"rel": 1}}, late, ["mrr@10"])["q"]["mrr@10"] == 0.0
    third = {"q": {"f1": 3.0, "f2": 2.0, "rel": 1.0}}
    assert evaluate_run({"q": {"rel": 1}}, third, ["mrr@10"])["q"]["mrr@10"] == pytest.approx(1 / 3)


def test_ties_break_like_trec_eval_and_truncation_agrees():
    # trec_eval orders equal scores by document id descending: "b" before "a"
    assert [d for d, _ in ranked({"a": 1.0, "b": 1.0, "c": 0.5})] == ["b", "a", "c"]
    assert evaluate_run({"q": {"a": 1}}, {"q": {"a": 1.0, "b": 1.0}}, ["mrr@10"])["q"]["mrr@10"] == 0.5
    run = {"q": {f"d{i:02d}": 1.0 for i in range(12)}}
    assert list(truncate(run, 10)["q"]) == [f"d{i:02d}" for i in range(11, 1, -1)]


def test_by_rank_keeps_the_retrievers_order_through_trec_eval():
    run = {"q": {"a": 0.5, "b": 0.5, "c": 0.1}}  # best first as returned; a tie that trec_eval would flip
    assert by_rank(run) == {"q": {"a": 3.0, "b": 2.0, "c": 1.0}}
    assert evaluate_run({"q": {"a": 1}}, by_rank(run), ["mrr@10"])["q"]["mrr@10"] == 1.0


def test_unanswered_queries_score_zero_and_count_in_the_mean():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    per_query = evaluate_run(qrels, {"q1": {"a": 1.0}})
    assert per_query["q2"] == {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0, "map@100": 0.0}
    assert mean(per_query)["ndcg@10"] == 0.5


def test_zero_grades_are_judged_non_relevant():
    got = evaluate_run({"q": {"a": 0, "b": 1}}, {"q": {"a": 2.0, "b": 1.0}})["q"]
    assert got["mrr@10"] == 0.5
    assert got["recall@100"] == 1.0


def test_unknown_metric_is_rejected():
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate_run({"q": {"a": 1}}, {}, ["p@5"])
