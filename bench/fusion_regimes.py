"""Where the weighted fusion loses to dense on a language pair: queries split by whether dense's best hit is in
another script than the query (``dense_top_cross_script``), with the BM25 weight the shipped fusion gives them and
nDCG@10 at fixed BM25 weights (issue 14; ``bench/results/fusion_quality.md``).

Usage::

    python bench/fusion_regimes.py --cands /tmp/fusion-cands-s1 --split dev --query-lang en
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import fusion_lab as lab
from bench.fit_fusion import fitted, fixed_weight
from indexer.retrieval.fusion import fuse
from indexer.retrieval.fusion_model import load_config, query_features

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cands", type=Path, required=True, help="bench/fusion_lab.py dumps (xling)")
    parser.add_argument("--split", choices=["dev", "test"], default="dev")
    parser.add_argument("--query-lang", default="en", help="pairs whose queries are in this language")
    args = parser.parse_args()
    config = load_config()
    c = lab.load(args.cands, "xling")
    at = {w: lab.evaluate(c, args.split, fixed_weight(w, "convex", config)) for w in WEIGHTS}
    new = lab.evaluate(c, args.split, fitted(config))
    rows: dict[tuple[str, bool], list[list[float]]] = {}
    for i in c.rows(args.split):
        pair, q = c.group(i), c.qids[i]
        if not pair.startswith(f"{args.query_lang}>"):
            continue
        crossed = (
            query_features(c.dense[i], c.bm25[i], c.query_lang[i], c.chunk_lang)["dense_top_cross_script"] > 0
        )
        weight = fuse(c.dense[i], c.bm25[i], c.query_lang[i], c.chunk_lang, config)[1].bm25
        rows.setdefault((pair, crossed), []).append([weight, new[q], *(at[w][q] for w in WEIGHTS)])
    print("| pair | dense's best hit in another script | queries | shipped BM25 weight (mean) | shipped | "
          + " | ".join(f"w={w:g}" for w in WEIGHTS) + " |")  # fmt: skip
    print("|---|---|---:|---:|---:|" + "---:|" * len(WEIGHTS))
    for (pair, crossed), values in sorted(rows.items()):
        a = np.array(values)  # (queries, 2 + len(WEIGHTS))
        print(f"| {pair} | {'yes' if crossed else 'no'} | {len(a)} | {a[:, 0].mean():.2f} | {100 * a[:, 1].mean():.1f} | "
              + " | ".join(f"{100 * v:.1f}" for v in a[:, 2:].mean(0)) + " |")  # fmt: skip


if __name__ == "__main__":
    main()
