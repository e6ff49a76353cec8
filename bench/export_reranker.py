"""Export a LoRA reranker trained by ``e5search train reranker --lora-r R`` as the small delta the product ships.

``trainer.reranker.export_delta`` renames the run's peft adapter to plain weight names, checks that folding it
into the backbone reproduces the trainer's merged weights, and writes ``delta.safetensors`` + ``reranker.json``;
this script adds the measured nDCG@10 (``bench/rerank_eval.py``'s JSON) to the metadata.

    python bench/export_reranker.py --model artifacts/rerank/model --asset-dir indexer/assets/reranker \
        --results bench/results/rerank
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trainer.reranker import export_delta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path, help="the trainer's output folder (with adapter/)")
    ap.add_argument("--asset-dir", required=True, type=Path)
    ap.add_argument("--results", type=Path, help="folder of bench/rerank_eval.py's JSON results")
    args = ap.parse_args()
    results = (
        {p.stem: json.loads(p.read_text())["results"] for p in sorted(args.results.glob("*.json"))}
        if args.results
        else {}
    )
    ndcg = {name: {r: round(v["ndcg@10"], 4) for r, v in res.items()} for name, res in results.items()}
    meta = export_delta(args.model, args.asset_dir, {"ndcg@10": ndcg, "recipe": "bench/train_reranker.sh"})
    size = sum(p.stat().st_size for p in args.asset_dir.iterdir())
    print(
        f"wrote {args.asset_dir} ({size / 1e6:.1f} MB); merged-weight max |diff| {meta['merge_max_abs_diff']:.1e}; "
        f"reference scores {[round(s, 3) for s in meta['reference']['scores']]}"
    )


if __name__ == "__main__":
    main()
