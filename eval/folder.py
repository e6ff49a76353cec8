"""The multilingual suite's cross-lingual folder part: build the set (:mod:`eval.crosslingual`), run BM25, dense
and hybrid over one index through ``e5search eval``'s code, and score them per language pair against the gate of
issue 14 (hybrid >= max(BM25, dense) - 0.5 nDCG@10 points on every pair, >= dense on the mean).

Only the ``test`` split is scored (``dev`` fitted the fusion weights, ``bench/fit_fusion.py``), plus the
``exact`` split: one-word name queries a lexical retriever must keep winning inside hybrid search.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eval import crosslingual
from eval.run import EvalConfig, evaluate_config
from eval.significance import paired_test
from indexer.encoding.encoder import TextEncoder

logger = logging.getLogger(__name__)

RETRIEVERS = ("bm25", "dense", "hybrid")
GATE_MARGIN = 0.005  # hybrid may trail the better of BM25 and dense by 0.5 nDCG@10 points on a pair
N_RESAMPLES = 1000


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else 0.0


def run_folder(
    encoder: TextEncoder,
    ddtp_root: Path,
    work_dir: Path,
    build: crosslingual.CrossLingualConfig,
    eval_config: EvalConfig,
    show_progress: bool = False,
) -> dict:
    """Per language pair and retriever nDCG@10 and Recall@100 (``test`` split), the gate per pair, the means
    over pairs, and the share of name queries (``exact`` split) each retriever answers in its top 10.

    ``eval_config`` sets the model, backend, fusion and seed; its split and retrievers are this part's.
    """
    name = f"ddtp-folder-q{build.queries_per_pair}-d{build.distractors_per_lang}-s{build.seed}"
    dataset = crosslingual.build(ddtp_root, work_dir / name, build)
    results = {
        split: evaluate_config(
            dataset,
            dataclasses.replace(eval_config, split=split, retrievers=RETRIEVERS, n_resamples=N_RESAMPLES),
            index_cache_dir=work_dir / "indexes",
            encoder=encoder,
            show_progress=show_progress,
        )
        for split in ("test", crosslingual.EXACT_SPLIT)
    }
    per_query = results["test"]["per_query"]
    by_pair: dict[str, list[str]] = {}
    for qid in sorted(per_query["hybrid"]):
        by_pair.setdefault(crosslingual.pair_of(qid), []).append(qid)
    pairs = {pair: _pair_row(per_query, qids) for pair, qids in by_pair.items()}
    exact = results[crosslingual.EXACT_SPLIT]["per_query"]
    out = {
        "fusion": eval_config.fusion,
        "n_docs": results["test"]["n_docs"],
        "pairs": pairs,
        "mean": {r: _mean([row[r]["ndcg@10"] for row in pairs.values()]) for r in RETRIEVERS},
        "exact_in_top10": {r: _mean([float(v["mrr@10"] > 0) for v in exact[r].values()]) for r in RETRIEVERS},
        "n_exact": len(exact["hybrid"]),
    }
    logger.info("folder: mean nDCG@10 %s", {r: round(v, 3) for r, v in out["mean"].items()})
    return out


def _pair_row(per_query: dict, qids: list[str]) -> dict:
    """One pair's means per retriever and its gate: with a paired test against the better one where it fails."""
    row: dict = {"n_queries": len(qids)}
    for r in RETRIEVERS:
        row[r] = {m: _mean([per_query[r][q][m] for q in qids]) for m in ("ndcg@10", "recall@100")}
    best = max(("bm25", "dense"), key=lambda r: row[r]["ndcg@10"])
    passed = row["hybrid"]["ndcg@10"] >= row[best]["ndcg@10"] - GATE_MARGIN
    row["gate"] = {"passed": passed, "best": best}
    if not passed:
        test = paired_test(
            np.array([per_query["hybrid"][q]["ndcg@10"] for q in qids]),
            np.array([per_query[best][q]["ndcg@10"] for q in qids]),
            n_resamples=N_RESAMPLES,
        )
        row["gate"]["p_randomization"] = test["p_randomization"]
    return row


def folder_markdown(folder: dict) -> list[str]:
    """The part's section of ``multilingual.md``."""
    head = ["pair", "queries"] + [f"{r} nDCG@10" for r in RETRIEVERS] + ["gate"]
    lines = [
        f"## Cross-lingual folder (DDTP: one index, 7 languages; hybrid fusion `{folder['fusion']}`)",
        "",
        f"{folder['n_docs']} long descriptions, each package in one language; a query is a short description in "
        "the pair's first language, its one answer in the second. Scores ×100. Gate: hybrid >= max(BM25, "
        "dense) - 0.5; ✗ names the better one and the paired randomisation test's p against it.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for pair, row in folder["pairs"].items():
        gate = row["gate"]
        mark = "✓" if gate["passed"] else f"✗ {gate['best']} (p {gate['p_randomization']:.3f})"
        cells = [pair, str(row["n_queries"])] + [f"{100 * row[r]['ndcg@10']:.1f}" for r in RETRIEVERS]
        lines.append("| " + " | ".join([*cells, mark]) + " |")
    means = [f"**{100 * folder['mean'][r]:.1f}**" for r in RETRIEVERS]
    failed = sum(not row["gate"]["passed"] for row in folder["pairs"].values())
    exact = ", ".join(f"{r} {100 * v:.1f} %" for r, v in folder["exact_in_top10"].items())
    return [
        *lines,
        "| **mean over pairs** | | " + " | ".join(means) + f" | {failed} pair(s) fail |",
        "",
        f"One-word name queries ({folder['n_exact']}; a token only their answer contains) answered in the top "
        f"10: {exact}.",
        "",
    ]
