"""Dense retrieval under the published (MTEB) protocol vs e5search's own pipeline, same model, same queries.

MTEB embeds each BEIR document once as ``passage: {title} {text}`` truncated to 512 tokens and ranks by exact
cosine; e5search indexes documents the way it indexes a user's folder (``Title > text`` chunks of <= 512 tokens,
a document scored by its best chunk). This script measures the MTEB protocol with our copy of the model, so the
gap to the published score splits into a protocol part (this row vs our ``eval`` row) and a weights part
(this row vs the published score: the 4-bit rounding of our offline copy).

    python bench/protocol_gap.py --dataset ../shared/data/scifact-beir --json bench/results/protocol_scifact.json

Embeddings are cached beside the JSON (``.npy``), so a second run only searches.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from eval.datasets import load_beir
from eval.metrics import evaluate_run, mean
from indexer.config import DEFAULT_MODEL, ModelConfig
from indexer.encoding.encoder import Encoder

logger = logging.getLogger("protocol_gap")


def mteb_text(doc: dict[str, str]) -> str:
    return (doc.get("title", "") + " " + doc.get("text", "")).strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument(
        "--backend", default="torch", help="encoder backend (default: fp32 torch, the model's own vectors)"
    )
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    corpus, queries, qrels = load_beir(args.dataset, args.split)
    encoder = Encoder(ModelConfig(model=args.model, batch_size=args.batch_size, backend=args.backend))
    dids, qids = list(corpus), list(queries)
    cache = args.json.with_suffix(f".{encoder.fingerprint}.npy")
    t0 = time.perf_counter()
    if cache.exists():
        docs = np.load(cache)
    else:
        docs = encoder.encode_passages([mteb_text(corpus[d]) for d in dids], show_progress=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, docs)
    seconds = time.perf_counter() - t0
    q = encoder.encode_queries([queries[x] for x in qids])
    scores = q @ docs.T
    top = np.argsort(-scores, axis=1)[:, :100]
    run = {qid: {dids[j]: float(scores[i, j]) for j in top[i]} for i, qid in enumerate(qids)}
    result = {
        "dataset": args.dataset.name,
        "split": args.split,
        "model": args.model,
        "fingerprint": encoder.fingerprint,
        "protocol": "mteb: 'passage: title text', 512 tokens, exact cosine",
        "n_queries": len(qids),
        "n_docs": len(dids),
        "encode_seconds": round(seconds, 1),
        "scores": {k: round(100 * v, 2) for k, v in mean(evaluate_run(qrels, run)).items()},
        "date": time.strftime("%Y-%m-%d"),
    }
    text = json.dumps(result, indent=2)
    print(text)
    args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
