"""``e5search search --queries Q.jsonl --run FILE.trec``: a TREC run that trec_eval (pytrec_eval) reads and scores
exactly as ``e5search eval`` scores the same retriever."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from e5search.cli import main, trec_lines
from eval.metrics import by_rank, evaluate_run
from indexer.build.job import build_index
from indexer.errors import ConfigError
from indexer.ingest.beir import load_qrels, load_queries
from indexer.search.index import Index
from tests.fakes import FakeEncoder

BEIR = Path(__file__).resolve().parents[1] / "fixtures" / "beir_tiny"


def read_run(path: Path) -> dict[str, dict[str, float]]:
    """The file as trec_eval reads it: whitespace-split columns, six of them."""
    run: dict[str, dict[str, float]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        qid, q0, doc, rank, score, tag = line.split()
        assert (q0, tag) == ("Q0", "e5search-bm25")
        run.setdefault(qid, {})[doc] = float(score)
    return run


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(BEIR / "corpus.jsonl", docs / "corpus.jsonl")
    build_index(docs, tmp_path / "idx", encoder=FakeEncoder())
    return tmp_path / "idx"


def test_run_file_scores_like_the_eval(index_dir: Path, tmp_path: Path):
    out = tmp_path / "bm25.trec"
    argv = ["search", "--queries", str(BEIR / "queries.jsonl"), "--index", str(index_dir), "--mode", "bm25"]
    assert main([*argv, "-k", "5", "--run", str(out)]) == 0
    written = read_run(out)
    for docs in written.values():  # strictly falling scores: trec_eval's tie-break by docid never applies
        scores = list(docs.values())
        assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)
    run = Index.open(index_dir, encoder=FakeEncoder()).retriever("bm25").search(load_queries(BEIR), k=5)
    assert {q: list(d) for q, d in written.items()} == {q: list(d) for q, d in run.items() if d}
    qrels = load_qrels(BEIR, "test")
    assert evaluate_run(qrels, written) == evaluate_run(qrels, by_rank(run))


def test_run_needs_queries_and_no_filters(index_dir: Path, tmp_path: Path):
    base = ["search", "--index", str(index_dir), "--mode", "bm25", "--run", str(tmp_path / "r.trec")]
    with pytest.raises(ConfigError, match="give --queries"):
        _raise([*base, "solar"])
    with pytest.raises(ConfigError, match="drop --lang"):
        _raise([*base, "--queries", str(BEIR / "queries.jsonl"), "--lang", "en"])
    assert not (tmp_path / "r.trec").exists()


def _raise(argv: list[str]) -> None:
    """Run the command without main()'s error printing, so the ConfigError itself can be checked."""
    from e5search.cli import build_parser

    args = build_parser().parse_args(argv)
    args.func(args)


def test_ids_with_whitespace_and_ties():
    lines = trec_lines({"q 1": {"my notes/a b.txt": 0.0327868, "c.txt": 0.03278679, "d%.txt": 0.1}}, "t")
    assert lines == [
        "q%201 Q0 my%20notes/a%20b.txt 1 0.032787 t\n",
        "q%201 Q0 c.txt 2 0.032786 t\n",  # equal at 6 decimals: written just below
        "q%201 Q0 d%25.txt 3 0.032785 t\n",  # above the previous (not best-first input): kept in order
    ]
