"""``e5search eval --run-dir DIR``: one TREC run per retriever, written by the writer ``search --run`` uses, holding
exactly the rankings the eval scored."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from eval import cli
from eval.metrics import by_rank, evaluate_run
from indexer.ingest.beir import load_qrels, load_queries
from indexer.search.index import Index
from tests.fakes import FakeEncoder

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "beir_tiny"
RETRIEVERS = ("bm25", "dense", "hybrid")


def read_trec(path: Path, tag: str) -> dict[str, list[tuple[str, int, float]]]:
    """qid -> [(docid, rank, score)] in file order, parsed as trec_eval splits a line."""
    run: dict[str, list[tuple[str, int, float]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        qid, q0, doc, rank, score, run_tag = line.split()
        assert (q0, run_tag) == ("Q0", tag)
        run.setdefault(qid, []).append((doc, int(rank), float(score)))
    return run


def test_run_dir_holds_the_scored_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setattr(cli, "_encoder", lambda args: FakeEncoder(dim=8192))  # as tests/eval/test_cli.py
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    argv = ["--dataset", str(TINY), "--retrievers", ",".join(RETRIEVERS), "--k", "5"]
    argv += ["--run-dir", str(tmp_path / "runs"), "--json", str(tmp_path / "r.json")]
    assert cli.run(parser.parse_args([*argv, "--cache-dir", str(tmp_path / "cache")])) == 0
    assert "wrote 3 TREC runs" in capsys.readouterr().out
    result = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [f"{r}.trec" for r in RETRIEVERS]

    queries, qrels = load_queries(TINY), load_qrels(TINY, "test")
    index = Index.open(result["config"]["index_dir"], encoder=FakeEncoder(dim=8192))
    for name in RETRIEVERS:
        written = read_trec(tmp_path / "runs" / f"{name}.trec", f"e5search-{name}")
        for lines in written.values():
            ranks, scores = [r for _, r, _ in lines], [s for _, _, s in lines]
            assert ranks == list(range(1, len(lines) + 1)) and len(lines) <= 5
            assert all(a > b for a, b in zip(scores, scores[1:]))  # strictly falling: no tie reordering
        expected = index.retriever(name).search({q: queries[q] for q in sorted(qrels)}, 5)
        assert {q: [d for d, _, _ in lines] for q, lines in written.items()} == {
            q: list(docs) for q, docs in expected.items() if docs
        }
        file_run = {q: {d: s for d, _, s in lines} for q, lines in written.items()}
        assert evaluate_run(qrels, file_run) == evaluate_run(qrels, by_rank(expected))
        assert evaluate_run(qrels, file_run) == result["per_query"][name]  # what the eval reported
    index.close()
