"""GPU corpus encoding: plain ``SentenceTransformer.encode`` bf16 (at each batch size) vs :mod:`indexer.encoding.gpu_encode`.

Same texts, same process, same GPU. Prints and writes one table: texts/s, tokens/s, ratio to the best
sentence-transformers bf16 row, achieved TFLOP/s and its share of the bf16 peak, peak GPU memory, and the cosine
of every text's embedding against sentence-transformers fp32 (the reference). ``--eval`` adds nDCG@10 on BEIR
test sets under the MTEB protocol (``passage: title text``, 512 tokens, exact cosine search) for the fp32
reference and the fast path, so a quality delta is measured, not assumed.

    python bench/encode_gpu.py --model DIR --data ../shared/data --json bench/results/encode_gpu.json --eval
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger("encode_gpu")
H100_BF16_PEAK = 989.4e12  # dense bf16 tensor-core peak of an H100 SXM, FLOP/s


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def beir(folder: Path) -> tuple[dict, dict, dict]:
    corpus_file = (
        folder / "corpus.jsonl.gz" if (folder / "corpus.jsonl.gz").exists() else folder / "corpus.jsonl"
    )
    corpus = {str(d["_id"]): d for d in read_jsonl(corpus_file)}
    queries = {str(q["_id"]): q["text"] for q in read_jsonl(folder / "queries.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, score = line.split("\t")[:3]
        qrels.setdefault(qid, {})[did] = int(score)
    return corpus, {q: queries[q] for q in qrels if q in queries}, qrels


def passage(doc: dict) -> str:
    return ("passage: " + (doc.get("title", "") + " " + doc.get("text", "")).strip()).strip()


def flops(lengths: np.ndarray, config) -> float:
    """Forward FLOPs: 2 x linear-layer parameters per token + attention's QK^T and AV (4 L^2 H per layer)."""
    h, inter, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    linear = n * (4 * h * h + 2 * h * inter)
    lengths = lengths.astype(np.float64)
    return float(2 * linear * lengths.sum() + n * 4 * h * (lengths**2).sum())


def timed(fn, cuda: bool):
    import torch

    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = fn()
    if cuda:
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0, (torch.cuda.max_memory_allocated() / 2**30 if cuda else None)


def ndcg10(q_emb: np.ndarray, d_emb: np.ndarray, qids: list[str], dids: list[str], qrels: dict) -> float:
    import pytrec_eval
    import torch

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    scores = torch.from_numpy(q_emb).to(dev) @ torch.from_numpy(d_emb).to(dev).T
    top = torch.topk(scores, k=min(100, len(dids)), dim=1)
    vals, idx = top.values.cpu().numpy(), top.indices.cpu().numpy()
    run = {q: {dids[j]: float(v) for j, v in zip(idx[i], vals[i])} for i, q in enumerate(qids)}
    per = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run)
    return float(np.mean([per[q]["ndcg_cut_10"] for q in qids]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="sentence-transformers folder (the default model's)")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument(
        "--repeat", type=int, default=4, help="SciFact corpus copies to encode (default: %(default)s)"
    )
    ap.add_argument("--limit", type=int, help="encode only the first N texts (smoke test)")
    ap.add_argument("--st-batch-sizes", default="32,64,128,256,512")
    ap.add_argument("--budgets", default="32768,65536,131072", help="token budgets of the fast path")
    ap.add_argument("--eval", action="store_true", help="nDCG@10 on SciFact and NFCorpus (MTEB protocol)")
    ap.add_argument("--compile", action="store_true", help="also time the packed path under torch.compile")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import torch
    from sentence_transformers import SentenceTransformer

    from indexer.encoding.gpu_encode import GPUEncoder

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    corpus, _, _ = beir(args.data / "scifact-beir")
    texts = ([passage(d) for d in corpus.values()] * args.repeat)[: args.limit]
    st32 = SentenceTransformer(args.model, device=device)
    st32.max_seq_length = 512
    lengths = np.array([len(x) for x in st32.tokenizer(texts, truncation=True, max_length=512)["input_ids"]])
    total_flops = flops(lengths, st32[0].auto_model.config)
    gpu = torch.cuda.get_device_name(0) if cuda else "cpu"
    logger.info("%d texts, %d tokens (mean %.0f) on %s", len(texts), lengths.sum(), lengths.mean(), gpu)

    matmul = None
    if cuda:  # what this GPU reaches on a large bf16 matmul, for scale
        a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        for _ in range(3):
            a @ a
        _, s, _ = timed(lambda: [a @ a for _ in range(10)], cuda)
        matmul = 10 * 2 * 8192**3 / s
        del a

    rows: list[dict] = []

    def row(name: str, fn) -> np.ndarray:
        fn(texts[: min(512, len(texts) // 4 + 1)])  # warm-up: kernels, allocator, tokenizer
        emb, seconds, peak = timed(lambda: fn(texts), cuda)
        emb = np.asarray(emb, dtype=np.float32)
        rows.append(
            {
                "row": name,
                "seconds": round(seconds, 2),
                "texts_per_s": round(len(texts) / seconds, 1),
                "tokens_per_s": round(float(lengths.sum()) / seconds),
                "tflops": round(total_flops / seconds / 1e12, 1),
                "peak_share": round(total_flops / seconds / H100_BF16_PEAK, 4),
                "peak_gib": peak and round(peak, 2),
            }
        )
        logger.info("%s", rows[-1])
        return emb

    ref = row("st-fp32 bs=128", lambda t: st32.encode(t, batch_size=128, convert_to_numpy=True))
    st16 = SentenceTransformer(args.model, device=device)
    st16.max_seq_length = 512
    st16.to(torch.bfloat16)
    for bs in [int(b) for b in args.st_batch_sizes.split(",")]:
        row(f"st-bf16 bs={bs}", lambda t, bs=bs: st16.encode(t, batch_size=bs, convert_to_numpy=True))
    fast_embs = {}
    for budget in [int(b) for b in args.budgets.split(",")]:
        for packed in (False, True):
            enc = GPUEncoder(st32, dtype=torch.bfloat16, max_tokens=budget, packed=packed)
            name = f"fast-{'packed' if packed else 'padded'} tokens={budget}"
            fast_embs[name] = row(name, enc.encode)
    if args.compile:
        enc = GPUEncoder(st32, dtype=torch.bfloat16, max_tokens=65536, packed=True)
        enc.model = torch.compile(enc.model, dynamic=True)  # type: ignore[assignment]
        fast_embs["fast-packed compiled"] = row("fast-packed compiled tokens=65536", enc.encode)

    best_st = max((r for r in rows if r["row"].startswith("st-bf16")), key=lambda r: r["tokens_per_s"])
    for r, emb in zip([r for r in rows if r["row"].startswith("fast")], fast_embs.values()):
        cos = (emb * ref).sum(1)
        r.update(cos_min=round(float(cos.min()), 5), cos_p1=round(float(np.percentile(cos, 1)), 5))
    for r in rows:
        r["x_best_st_bf16"] = round(r["tokens_per_s"] / best_st["tokens_per_s"], 2)

    result: dict = {
        "gpu": gpu,
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "texts": len(texts),
        "tokens": int(lengths.sum()),
        "bf16_matmul_tflops": matmul and round(matmul / 1e12),
        "rows": rows,
    }
    if args.eval:
        best_fast = max((r for r in rows if r["row"].startswith("fast")), key=lambda r: r["tokens_per_s"])
        fast = GPUEncoder(
            st32,
            dtype=torch.bfloat16,
            max_tokens=int(best_fast["row"].split("=")[-1]),
            packed="packed" in best_fast["row"],
        )
        result["ndcg@10"] = {}
        for name in ("scifact", "nfcorpus"):
            corpus, queries, qrels = beir(args.data / f"{name}-beir")
            dids, qids = list(corpus), list(queries)
            docs = [passage(corpus[d]) for d in dids]
            qs = ["query: " + queries[q] for q in qids]
            q_ref = st32.encode(qs, batch_size=256)
            out = {
                "st-fp32": ndcg10(q_ref, st32.encode(docs, batch_size=128), qids, dids, qrels),
                best_fast["row"]: ndcg10(q_ref, fast.encode(docs), qids, dids, qrels),
            }
            result["ndcg@10"][name] = {k: round(100 * v, 2) for k, v in out.items()}
            logger.info("%s nDCG@10: %s", name, result["ndcg@10"][name])
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
