"""The Evaluation page's calls: run :func:`eval.run.evaluate` on a BEIR folder and shape its result for display.

The numbers are the eval package's own (the same code as ``e5search eval``); this module only picks columns and
compares retrievers query by query. Non-goal: any metric computed here.
"""

from __future__ import annotations

from pathlib import Path

from app import service
from indexer.config import ModelConfig

HEADLINE = ("ndcg@10", "recall@100", "mrr@10")
TIE = "tie"


def unavailable() -> str | None:
    """Why the evaluation cannot run here (a missing package), or None."""
    try:
        import eval.run  # noqa: F401
    except ImportError as exc:
        return f"the evaluation needs the eval extra ({exc.name} is missing): pip install 'e5search[eval]'"
    return None


def splits(folder: Path) -> list[str]:
    from indexer.ingest.beir import list_splits

    return list_splits(folder)


def retriever_choices(has_reranker: bool) -> list[str]:
    from eval.run import RETRIEVERS

    return [r for r in RETRIEVERS if has_reranker or not r.endswith("+rerank")]


def run(folder: Path, split: str, retrievers: list[str], max_queries: int | None) -> dict:
    """The eval package's result dict (see :mod:`eval.run`), with the app's cached model and reranker."""
    from eval.run import evaluate

    reranker, _ = service.reranker()
    return evaluate(
        folder,
        split=split,
        retrievers=retrievers,
        encoder=service.load_encoder(ModelConfig()),
        reranker=reranker,
        max_queries=max_queries,
    )


def summary_rows(result: dict) -> list[dict]:
    """One row per retriever: the headline metrics (with 95% CIs) and speed."""
    rows = []
    for name, r in result["results"].items():
        row: dict = {"retriever": name}
        for m in HEADLINE:
            lo, hi = r.get("ci95", {}).get(m, (None, None))
            row[m] = r[m]
            row[f"{m} 95% CI"] = f"{lo:.3f}–{hi:.3f}" if lo is not None else ""
        row["queries/s"] = r.get("queries_per_second")
        rows.append(row)
    return rows


def per_query_rows(result: dict, metric: str, left: str, right: str) -> list[dict]:
    """Each query's ``metric`` under two retrievers, the difference, and which one wins."""
    per_query = result["per_query"]
    queries = result.get("queries", {})
    rows = []
    for qid in sorted(per_query[left]):
        a = per_query[left][qid].get(metric, 0.0)
        b = per_query[right].get(qid, {}).get(metric, 0.0)
        winner = left if a > b else right if b > a else TIE
        rows.append(
            {
                "query id": qid,
                "query": queries.get(qid, ""),
                left: a,
                right: b,
                "difference": a - b,
                "wins": winner,
            }
        )
    rows.sort(key=lambda r: -abs(r["difference"]))
    return rows


def win_counts(rows: list[dict], left: str, right: str) -> dict[str, int]:
    counts = {left: 0, right: 0, TIE: 0}
    for r in rows:
        counts[r["wins"]] += 1
    return counts
