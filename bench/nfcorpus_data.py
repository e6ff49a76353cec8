"""Distillation data for NFCorpus from its *train* qrels: BM25 hard negatives and hybrid (BM25 + dense) teacher scores.

There is no working cross-encoder to distil from (the one trained earlier is at chance, see trainer/RESULTS.md), so
the teacher is the best ranker at hand without labels: the product's own hybrid signals, fused by score.

    teacher(q, d) = w · minmax_q(BM25(q, d)) + (1 - w) · minmax_q(cos(E(q), E(d)))

``E`` is the default model (multilingual-e5-small, torch fp32) and each signal is min-max normalised per query over
that retriever's top-100 documents (a document below the 100th gets 0). Both signals are read from an existing
full-corpus eval index (its BM25 matrix and its FAISS vectors, so the corpus is not encoded again); a document's
score is its best chunk's, as in the evaluation. Only the train queries are encoded.

Steps (test and dev qrels are never read):
1. every (query, relevant document) pair of the train qrels (``trainer.pairs.from_beir_qrels``);
2. BM25 hard negatives for all of them against the whole corpus (``trainer.mining.mine_hard_negatives``): all
   judged positives of a query are excluded, the first ``--range-min`` non-positive ranks skipped. Mining all
   pairs before sampling is why this is a script and not ``e5search train pairs --max-pairs`` + ``train mine``:
   the miner only knows the positives it is given, and a sampled pair would lose its query's other positives;
3. a seeded sample of queries, one positive each;
4. teacher scores for (positive, negatives), and the teacher temperature that gives the teacher's softmax over
   those candidates the same mean entropy as the starting student's (cos / 0.01), so the KL term teaches order
   rather than sharpness;
5. the teacher checked against the train qrels it never saw (nDCG@10 of its full-corpus ranking vs BM25 and
   dense alone, on the sampled queries), written to the report.

    python bench/nfcorpus_data.py --index DIR --output artifacts/train/nfcorpus/train.jsonl --max-queries 1600
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from bench.rerank_data import mined_sample
from trainer.config import MineConfig
from trainer.data import Pair, write_pairs
from trainer.pairs import doc_text, read_beir

logger = logging.getLogger("nfcorpus_data")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nfcorpus-beir"
DEPTH = 100  # min-max normalisation window per retriever


def _minmax_top(scores: np.ndarray, depth: int) -> np.ndarray:
    """Per row, (s - s_depth) / (s_1 - s_depth) clipped to [0, 1]: 1 for the best, 0 at and below the depth-th."""
    top = -np.sort(-scores, axis=1)  # (n_queries, n_docs)
    hi, lo = top[:, :1], top[:, depth - 1 : depth]
    return np.clip((scores - lo) / np.maximum(hi - lo, 1e-9), 0.0, 1.0)


class HybridTeacher:
    """Doc-level BM25 and dense score matrices for a set of queries, read from an eval index (best chunk per doc)."""

    def __init__(self, index_dir: Path, queries: list[str], model: str, bm25_weight: float):
        from indexer.encoding.encoder import Encoder
        from indexer.search.index import Index
        from trainer.stages import torch_model_config

        encoder = Encoder(torch_model_config(model, batch_size=64))
        idx = Index.open(index_dir, encoder=encoder)  # refuses an index built by another model
        try:
            with idx.reading() as reading:
                keys = idx.doc_keys(reading)  # chunk id -> doc id
            chunk_ids = idx.dense.ids()
            self.doc_ids = sorted(set(keys.values()))
            col = {d: j for j, d in enumerate(self.doc_ids)}
            chunk_col = np.array([col[keys[int(c)]] for c in chunk_ids])  # (n_chunks,)
            vectors = idx.dense.vectors(chunk_ids).astype(np.float32)  # (n_chunks, dim)
            t0 = time.time()
            qv = encoder.encode_queries(queries)  # (n_queries, dim)
            logger.info("encoded %d queries in %.0fs", len(queries), time.time() - t0)
            self.dense = self._best_chunk(qv @ vectors.T, chunk_col)  # (n_queries, n_docs)
            bm25 = np.zeros((len(queries), len(chunk_ids)), dtype=np.float32)  # (n_queries, n_chunks)
            pos = {int(c): i for i, c in enumerate(chunk_ids)}
            for i, q in enumerate(queries):
                for cid, s in idx.bm25.search(q, len(chunk_ids)):
                    bm25[i, pos[cid]] = s
            self.bm25 = self._best_chunk(bm25, chunk_col)
        finally:
            idx.close()
        self.row = {q: i for i, q in enumerate(queries)}
        self.col = col
        self.fused = bm25_weight * _minmax_top(self.bm25, DEPTH) + (1 - bm25_weight) * _minmax_top(
            self.dense, DEPTH
        )

    @staticmethod
    def _best_chunk(chunk_scores: np.ndarray, chunk_col: np.ndarray) -> np.ndarray:
        out = np.full((len(chunk_scores), chunk_col.max() + 1), -np.inf, dtype=np.float32)
        for j in range(chunk_scores.shape[1]):
            c = chunk_col[j]
            out[:, c] = np.maximum(out[:, c], chunk_scores[:, j])
        return out

    def scores(self, matrix: np.ndarray, query: str, doc_ids: list[str]) -> list[float]:
        return [float(matrix[self.row[query], self.col[d]]) for d in doc_ids]


def _entropy(logits: np.ndarray) -> float:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return float(-(p * np.log(np.maximum(p, 1e-30))).sum(axis=1).mean())


def match_temperature(teacher: np.ndarray, student_logits: np.ndarray) -> float:
    """The teacher temperature whose softmax has the student's mean entropy (bisection on log tau)."""
    target = _entropy(student_logits)
    lo, hi = np.log(1e-4), np.log(10.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        if _entropy(teacher / np.exp(mid)) < target:
            lo = mid  # too sharp: raise the temperature
        else:
            hi = mid
    return float(np.exp((lo + hi) / 2))


def teacher_quality(teacher: HybridTeacher, qrels: dict, qid_of: dict[str, str]) -> dict:
    """nDCG@10 / recall@100 on the train qrels of the sampled queries, for each signal's full-corpus ranking."""
    from eval.metrics import evaluate_run, mean

    metrics = ["ndcg@10", "recall@100"]
    out = {}
    for name, matrix in (("bm25", teacher.bm25), ("dense", teacher.dense), ("teacher", teacher.fused)):
        run = {}
        for q, i in teacher.row.items():
            top = np.argsort(-matrix[i], kind="stable")[:100]
            run[qid_of[q]] = {teacher.doc_ids[j]: float(100 - r) for r, j in enumerate(top)}
        sub = {qid: qrels[qid] for qid in run}
        out[name] = {m: round(v, 4) for m, v in mean(evaluate_run(sub, run, metrics), metrics).items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--index", required=True, help="full-corpus eval index of --data built with --model")
    ap.add_argument("--model", default=None, help="the index's model (default: the default model)")
    ap.add_argument("--max-queries", type=int, default=1600)
    ap.add_argument("--num-negatives", type=int, default=3)
    ap.add_argument("--range-min", type=int, default=3)
    ap.add_argument("--range-max", type=int, default=50)
    ap.add_argument("--bm25-weight", type=float, default=0.5)
    ap.add_argument("--student-temperature", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from indexer.config import DEFAULT_MODEL

    folder = Path(args.data)
    config = MineConfig(
        method="bm25",
        num_negatives=args.num_negatives,
        range_min=args.range_min,
        range_max=args.range_max,
        relative_margin=None,
        seed=args.seed,
    )
    pairs, report = mined_sample(folder, config, args.max_queries, args.seed, shuffle=True)
    corpus, queries, qrels = read_beir(folder, "train")
    doc_of = {}
    for did, doc in corpus.items():
        doc_of.setdefault(doc_text(doc), did)
    qid_of = {text: qid for qid, text in queries.items() if qid in qrels}
    teacher = HybridTeacher(
        Path(args.index), sorted({p.query for p in pairs}), args.model or DEFAULT_MODEL, args.bm25_weight
    )
    fused, student = [], []
    for p in pairs:
        ids = [doc_of[t] for t in (p.passage, *p.negatives)]
        fused.append(teacher.scores(teacher.fused, p.query, ids))
        student.append(teacher.scores(teacher.dense, p.query, ids))
    fused_a, student_a = np.array(fused), np.array(student) / args.student_temperature  # (n_pairs, 1 + n_neg)
    tau = match_temperature(fused_a, student_a)
    scored = [
        Pair(p.query, p.passage, p.negatives, tuple(round(s, 6) for s in f), p.task, p.lang, p.source, p.id)
        for p, f in zip(pairs, fused, strict=True)
    ]
    write_pairs(args.output, scored)
    report.update(
        {
            "teacher": f"{args.bm25_weight} * minmax_top{DEPTH}(bm25) + {1 - args.bm25_weight} * "
            f"minmax_top{DEPTH}(dense cos, {args.model or DEFAULT_MODEL}, torch fp32)",
            "index": args.index,
            "teacher_temperature": round(tau, 5),
            "positive_ranked_first": {
                "teacher": float(np.mean(fused_a.argmax(1) == 0)),
                "student": float(np.mean(student_a.argmax(1) == 0)),
            },
            "positive_above_negative": {
                "teacher": float(np.mean(fused_a[:, :1] > fused_a[:, 1:])),
                "student": float(np.mean(student_a[:, :1] > student_a[:, 1:])),
            },
            "mean_entropy": {
                "student": _entropy(student_a),
                "teacher": _entropy(fused_a / tau),
                "uniform": float(np.log(fused_a.shape[1])),
            },
            "train_qrels_quality": teacher_quality(teacher, qrels, qid_of),
        }
    )
    Path(args.output + ".report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
