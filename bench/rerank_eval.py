"""A reranker's effect on dense and hybrid top-100, on BEIR test splits (``e5search eval``'s code and statistics).

Runs dense, hybrid, dense+rerank and hybrid+rerank over the cached full-corpus eval index of each dataset, the
cross-encoder rescoring each retriever's top ``--rerank-top`` (default 100). A (query, passage) pair is scored
once even when both retrievers return it, so the hybrid+rerank row costs only the passages dense did not
already bring. On a slow CPU ``--max-queries`` evaluates a seeded sample (the same queries for every row).

    python bench/rerank_eval.py --reranker artifacts/rerank/model --dataset ../shared/data/scifact-beir \
        --max-queries 100 --out bench/results/rerank
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eval.report import results_table, write_json, write_report
from eval.run import EvalConfig, evaluate_config
from indexer.retrieval.rerank import Reranker


class CachingReranker:
    """Scores each distinct (query, passage) once; counts what it scored."""

    def __init__(self, reranker: Reranker):
        self.inner = reranker
        self.name = reranker.name
        self.interpolation = reranker.interpolation
        self.cache: dict[tuple[str, str], float] = {}
        self.scored = 0
        self.seconds = 0.0

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        todo = sorted({p for p in passages if (query, p) not in self.cache})
        if todo:
            t0 = time.perf_counter()
            for p, s in zip(todo, self.inner.score(query, todo), strict=True):
                self.cache[(query, p)] = float(s)
            self.seconds += time.perf_counter() - t0
            self.scored += len(todo)
        return np.array([self.cache[(query, p)] for p in passages], dtype=np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reranker", required=True, help="CrossEncoder folder")
    ap.add_argument("--dataset", required=True, type=Path, help="BEIR folder")
    ap.add_argument("--split", default="test")
    ap.add_argument("--max-queries", type=int, help="seeded sample of test queries (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rerank-top", type=int, default=100)
    ap.add_argument("--max-length", type=int, help="cross-encoder input tokens (default: the model's own)")
    ap.add_argument("--out", type=Path, required=True, help="folder for NAME.json and NAME.md")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    reranker = CachingReranker(Reranker(args.reranker, max_length=args.max_length))
    config = EvalConfig(
        split=args.split,
        retrievers=("dense", "hybrid", "dense+rerank", "hybrid+rerank"),
        reranker=args.reranker,
        rerank_top=args.rerank_top,
        max_queries=args.max_queries,
        seed=args.seed,
        backend="torch",
    )  # fp32: the cached indexes these numbers came from
    t0 = time.time()
    result = evaluate_config(args.dataset, config, reranker=reranker)
    result["rerank_bench"] = {
        "pairs_scored": reranker.scored,
        "scoring_seconds": round(reranker.seconds, 1),
        "max_length": reranker.inner.model.max_seq_length,
        "wall_seconds": round(time.time() - t0),
        "load_average_end": os.getloadavg(),
    }
    name = f"{args.dataset.name}-{args.split}" + (f"-q{args.max_queries}" if args.max_queries else "")
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(result, args.out / f"{name}.json")
    write_report(result, args.out / f"{name}.md")
    print(results_table(result))
    print(json.dumps(result["rerank_bench"]))


if __name__ == "__main__":
    main()
