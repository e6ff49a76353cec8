"""Retrieval metrics with trec_eval semantics, computed by pytrec_eval (Van Gysel & de Rijke 2018).

nDCG@10 and Recall@100 are BEIR's headline metrics; MRR@10 is MS MARCO's; MAP@100 is kept for comparison with
older tables. Two details matter for matching published numbers:

- trec_eval ranks by score, breaking ties by document id in *descending* string order; :func:`ranked` does the
  same, so truncating a run never changes which documents trec_eval sees in the top k.
- Runs from our retrievers are best-first dicts; :func:`by_rank` turns their order into scores, so trec_eval's
  tie-breaking cannot reorder what the retriever returned (ties are common in RRF scores).
- ``recip_rank`` has no cutoff in trec_eval, so MRR@10 is ``recip_rank`` on the run truncated to 10.

Every query in the qrels counts: a query the run has no results for scores 0 (trec_eval's ``-c``), instead of
being silently left out of the mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from indexer.errors import MissingExtra
from indexer.types import Qrels, Run

# our name -> (pytrec_eval measure to request, key in its output, run cutoff applied before evaluating)
_MEASURES: dict[str, tuple[str, str, int | None]] = {
    "ndcg@10": ("ndcg_cut.10", "ndcg_cut_10", None),
    "recall@100": ("recall.100", "recall_100", None),
    "mrr@10": ("recip_rank", "recip_rank", 10),
    "map@100": ("map_cut.100", "map_cut_100", None),
}
DEFAULT_METRICS: tuple[str, ...] = tuple(_MEASURES)

PerQuery = dict[str, dict[str, float]]  # per_query[qid][metric] = value


def ranked(scores: Mapping[str, float], k: int | None = None) -> list[tuple[str, float]]:
    """``(doc_id, score)`` best first, ties broken as trec_eval does (doc id descending)."""
    items = sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    return items if k is None else items[:k]


def truncate(run: Run, k: int) -> Run:
    return {qid: dict(ranked(docs, k)) for qid, docs in run.items()}


def by_rank(run: Run) -> Run:
    """Replace each query's scores by ``n - rank`` so trec_eval sees the retriever's own order.

    Fused (RRF) scores tie often, and trec_eval would reorder tied documents by id; the product shows them in
    its own order, so that is the order to score. ``run[qid]`` must be best first (as ``Retriever.search`` returns).
    """
    return {qid: {d: float(len(docs) - i) for i, d in enumerate(docs)} for qid, docs in run.items()}


def evaluate_run(qrels: Qrels, run: Run, metrics: Sequence[str] = DEFAULT_METRICS) -> PerQuery:
    """Per-query metric values for every query in ``qrels``.

    >>> evaluate_run({"q": {"d1": 1}}, {"q": {"d2": 2.0, "d1": 1.0}}, ["mrr@10"])
    {'q': {'mrr@10': 0.5}}
    """
    try:
        import pytrec_eval
    except ImportError as exc:
        raise MissingExtra("pytrec-eval-terrier", "eval") from exc
    unknown = [m for m in metrics if m not in _MEASURES]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {list(_MEASURES)}")
    qrels = {q: {d: int(r) for d, r in rels.items()} for q, rels in qrels.items()}
    full = {q: {d: float(s) for d, s in run.get(q, {}).items()} for q in qrels}
    out: PerQuery = {q: {} for q in qrels}
    by_cutoff: dict[int | None, list[str]] = {}
    for m in metrics:
        by_cutoff.setdefault(_MEASURES[m][2], []).append(m)
    for cutoff, names in by_cutoff.items():
        evaluator = pytrec_eval.RelevanceEvaluator(qrels, {_MEASURES[m][0] for m in names})
        scores = evaluator.evaluate(full if cutoff is None else truncate(full, cutoff))
        for q in qrels:
            for m in names:
                out[q][m] = float(scores.get(q, {}).get(_MEASURES[m][1], 0.0))
    return out


def mean(per_query: PerQuery, metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, float]:
    """The mean of each metric over all queries (0.0 for an empty set)."""
    return {m: float(np.mean([v[m] for v in per_query.values()])) if per_query else 0.0 for m in metrics}


def column(per_query: PerQuery, metric: str, qids: Sequence[str]) -> np.ndarray:
    """One metric as an array in ``qids`` order, for paired tests."""
    return np.array([per_query[q][metric] for q in qids], dtype=np.float64)  # (n_queries,)
