"""Report rendering: table, chart, drill-down, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.report import default_pairs, drilldown, markdown, results_table, write_json, write_report

RESULT = {
    "dataset": "tiny",
    "split": "test",
    "n_queries": 3,
    "n_docs": 10,
    "results": {
        "bm25": {
            "ndcg@10": 0.5,
            "recall@100": 0.9,
            "mrr@10": 0.5,
            "map@100": 0.4,
            "ci95": {m: [0.1, 0.9] for m in ("ndcg@10", "recall@100", "mrr@10", "map@100")},
        },
        "dense": {
            "ndcg@10": 0.6,
            "recall@100": 1.0,
            "mrr@10": 0.7,
            "map@100": 0.5,
            "ci95": {m: [0.2, 1.0] for m in ("ndcg@10", "recall@100", "mrr@10", "map@100")},
        },
    },
    "significance": {
        "baseline": "bm25",
        "vs_baseline": {
            "dense": {"ndcg@10": {"delta": 0.1, "t": 1.0, "p_ttest": 0.3, "p_randomization": 0.0004}}
        },
    },
    "config": {"model": "m", "encoder": {"model": "m", "fingerprint": "abc"}, "k": 100, "chunk_size": 512},
    "per_query": {
        "bm25": {"a": {"ndcg@10": 1.0}, "b": {"ndcg@10": 0.5}, "c": {"ndcg@10": 0.0}},
        "dense": {"a": {"ndcg@10": 0.2}, "b": {"ndcg@10": 0.5}, "c": {"ndcg@10": 1.0}},
    },
    "queries": {"a": "alpha | pipe", "b": "beta", "c": "gamma"},
}


def test_table_has_scores_intervals_and_p_values():
    table = results_table(RESULT)
    assert "| bm25 | 50.0 [10.0, 90.0] | 90.0 [10.0, 90.0] |" in table
    assert table.splitlines()[-1].endswith("| <0.001 |")
    assert "| baseline |" in table


def test_drilldown_orders_by_gap():
    d = drilldown(RESULT, "dense", "bm25")
    assert (d["a_wins"], d["b_wins"], d["ties"]) == (1, 1, 1)
    assert d["a_better"][0] == {"qid": "c", "query": "gamma", "dense": 1.0, "bm25": 0.0, "delta": 1.0}
    assert d["b_better"][0]["qid"] == "a" and d["b_better"][0]["delta"] == pytest.approx(-0.8)
    assert default_pairs(["bm25", "dense", "hybrid"]) == [("dense", "bm25"), ("hybrid", "bm25")]


def test_markdown_escapes_pipes_in_queries():
    text = markdown(RESULT, chart="x.png", drill=[("dense", "bm25")])
    assert "alpha \\| pipe" in text and "![scores](x.png)" in text


def test_write_report_and_json(tmp_path: Path):
    md = write_report(RESULT, tmp_path / "out" / "report.md")
    png = md.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![scores](report.png)" in md.read_text(encoding="utf-8")
    path = write_json(RESULT, tmp_path / "r.json")
    assert json.loads(path.read_text(encoding="utf-8"))["results"]["dense"]["ndcg@10"] == 0.6
