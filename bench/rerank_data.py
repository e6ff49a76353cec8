"""Reranker training data from BEIR *train* splits only, with BM25 hard negatives.

For each dataset: every (query, relevant document) pair of the train qrels is mined against the whole corpus with
the trainer's BM25 miner (so *all* of a query's judged positives are excluded from its negatives, and the first
``--range-min`` non-positive ranks are skipped as likely unjudged positives); then a seeded sample of queries is
kept, one positive pair per query. Test and dev qrels are never read.

    python bench/rerank_data.py --beir ../shared/data/scifact-beir --beir ../shared/data/nfcorpus-beir \
        --max-queries 0 --max-queries 600 --output artifacts/rerank/train.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from collections import defaultdict
from pathlib import Path

from trainer.config import MineConfig
from trainer.data import Pair, write_pairs
from trainer.mining import mine_hard_negatives
from trainer.pairs import doc_text, from_beir_qrels, read_beir


def mined_sample(
    folder: str | Path, config: MineConfig, max_queries: int, seed: int, shuffle: bool = False
) -> tuple[list[Pair], dict]:
    """Every train-qrels pair mined against the whole corpus (so no positive of a query becomes its negative),
    then one positive per query for a seeded sample of ``max_queries`` queries (0: all), optionally shuffled."""
    pairs = list(from_beir_qrels(folder, "train"))
    corpus = [doc_text(d) for d in read_beir(folder, None)[0].values()]
    mined, counts = mine_hard_negatives(pairs, config, extra_corpus=corpus)
    by_query: dict[str, list[Pair]] = defaultdict(list)
    for p in mined:
        by_query[p.query].append(p)
    rng = random.Random(seed)
    queries = sorted(by_query)
    if max_queries and len(queries) > max_queries:
        queries = sorted(rng.sample(queries, max_queries))
    out = [
        rng.choice(by_query[q]) for q in queries
    ]  # one positive per query: more queries for the same budget
    if shuffle:
        rng.shuffle(out)
    return out, {
        "dataset": Path(folder).name,
        "train_pairs": len(pairs),
        "train_queries": len({p.query for p in pairs}),
        "queries_with_negatives": len(by_query),
        "kept": len(out),
        "mining": counts,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--beir", action="append", required=True, help="BEIR folder (its train qrels are used)")
    ap.add_argument("--max-queries", action="append", type=int, help="per --beir, in order; 0 = all")
    ap.add_argument("--num-negatives", type=int, default=3)
    ap.add_argument("--range-min", type=int, default=3)
    ap.add_argument("--range-max", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    limits = args.max_queries or [0] * len(args.beir)
    if len(limits) != len(args.beir):
        ap.error("give --max-queries once per --beir (or never)")
    config = MineConfig(
        method="bm25",
        num_negatives=args.num_negatives,
        range_min=args.range_min,
        range_max=args.range_max,
        relative_margin=None,
        seed=args.seed,
    )
    everything: list[Pair] = []
    report = []
    for folder, limit in zip(args.beir, limits, strict=True):
        pairs, info = mined_sample(folder, config, limit, args.seed)
        everything += pairs
        report.append(info)
    random.Random(args.seed).shuffle(everything)
    write_pairs(args.output, everything)
    Path(args.output + ".report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
