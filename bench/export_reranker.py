"""Export a trained cross-encoder as the small artefact the product ships (format 2 of
``indexer.models.default_reranker``): fp16 deltas of the kept layers against the default backbone, the new head,
``reranker.json`` with reference scores; checked by rebuilding it before anything is written.

    python bench/export_reranker.py --model artifacts/rerank/model --output indexer/assets/reranker \
        [--results bench/results/rerank] [--recipe bench/train_reranker.sh]

``--results``: a folder of ``bench/rerank_eval.py`` JSON results, whose nDCG@10 go into the metadata.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from indexer.errors import E5SearchError
from indexer.models.default_reranker import make_delta
from trainer.runs import RECORD


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path, help="the trained CrossEncoder folder")
    ap.add_argument(
        "--output", required=True, type=Path, help="the asset folder, e.g. indexer/assets/reranker"
    )
    ap.add_argument("--results", type=Path, help="folder of bench/rerank_eval.py's JSON results")
    ap.add_argument("--recipe", default="bench/train_reranker.sh", help="how it was trained (recorded)")
    args = ap.parse_args(argv)
    extra: dict = {"recipe": args.recipe}
    if args.results:
        results = {p.stem: json.loads(p.read_text())["results"] for p in sorted(args.results.glob("*.json"))}
        extra["ndcg@10"] = {
            n: {r: round(v["ndcg@10"], 4) for r, v in res.items()} for n, res in results.items()
        }
    record = args.model / RECORD
    if record.is_file():
        extra["training"] = json.loads(record.read_text(encoding="utf-8"))
    try:
        meta = make_delta(args.model, asset_dir=args.output, extra=extra)
    except E5SearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {args.output}: {meta['num_layers']} layers, delta {meta['delta_bytes'] / 1e6:.1f} MB, "
        f"rebuild max |score diff| {meta['rebuild_max_abs_diff']:.1e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
