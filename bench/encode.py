"""Encoding speed and quality per encoder backend, side by side with plain sentence-transformers (issue 6).

Rows: ``st-fp32`` is the baseline, plain ``SentenceTransformer.encode`` in fp32 (batch 32, its default threads);
``st-fp32-1t`` the same on one thread (on a loaded machine torch's spinning OpenMP threads cost more than they
bring, so this is the stronger baseline there); the others are :class:`indexer.encoding.encoder.Encoder` with
``ModelConfig(backend=...)``. Every measurement runs in a fresh process (so peak RSS is per row), and speed
rounds alternate the rows, so load from other processes shows up as spread between rounds rather than as a bias
against one row. CPU seconds are reported next to wall time: on a shared machine they are the steadier number.

- speed: a seeded sample of SciFact abstracts encoded as passages (title + abstract, up to 512 tokens).
- query latency: single SciFact test queries, one encode call each (after warm-up), p50 / p95.
- cosine: per-text cosine with the baseline's vectors on NTREX-128 news sentences in 16 languages.
- nDCG@10 (pytrec_eval): a SciFact subset, the same for every row: all 300 test queries against their judged
  abstracts plus a seeded sample of the others, ``--eval-docs`` in all (``eval.datasets.subset``, seed 0).
  Documents are embedded whole (no chunking), so the numbers are for comparing backends, not for the
  leaderboard. Embeddings are cached under ``<cache>/bench/encode`` so re-runs only measure speed.

Usage:  python bench/encode.py [--speed-docs 200] [--rounds 2] [--eval-docs 1500] [--no-eval]
Writes bench/results/encode.md (date, hardware, load average).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
SCIFACT = DATA / "scifact-beir"
NTREX_LANGS = (
    "eng-US",
    "deu",
    "fra",
    "spa",
    "rus",
    "ukr",
    "arb",
    "heb",
    "hin",
    "jpn",
    "kor",
    "zho-CN",
    "tha",
    "tur",
    "vie",
    "swa",
)
BASELINE = "st-fp32"
PLAIN = {BASELINE: None, "st-fp32-1t": 1}  # plain sentence-transformers rows -> torch threads (None: default)


# --------------------------------------------------------------------------------------------- the worker
def _load(name: str):
    """(encode passages, encode one query, encoder description) for a row."""
    from indexer.config import ModelConfig

    if name in PLAIN:
        import torch
        from sentence_transformers import SentenceTransformer

        from indexer.config import DEFAULT_MODEL
        from indexer.models.resolve import resolve_model

        if PLAIN[name]:
            torch.set_num_threads(PLAIN[name])
        model = SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")
        return (
            lambda t: model.encode(t, prompt="passage: ", batch_size=32, normalize_embeddings=True),
            lambda q: model.encode([q], prompt="query: ", normalize_embeddings=True),
            {"backend": "sentence-transformers fp32", "threads": __import__("torch").get_num_threads()},
        )
    from indexer.encoding.encoder import Encoder

    enc = Encoder(ModelConfig(backend=name, device="cpu"))
    return enc.encode_passages, lambda q: enc.encode_queries([q]), enc.describe()


def worker(name: str, task: str, texts_path: Path, out_path: Path) -> None:
    texts = json.loads(texts_path.read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    passages, query, info = _load(name)
    result: dict = {"name": name, "load_s": time.perf_counter() - t0, "info": info}
    if task == "speed":
        passages(texts[:4])  # warm-up
        w, c = time.perf_counter(), time.process_time()
        passages(texts)
        result.update(wall_s=time.perf_counter() - w, cpu_s=time.process_time() - c)
    elif task == "latency":
        for q in texts[:5]:
            query(q)
        wall, cpu = [], []
        for q in texts:
            w, c = time.perf_counter(), time.process_time()
            query(q)
            wall.append(time.perf_counter() - w)
            cpu.append(time.process_time() - c)
        result.update(
            p50_ms=1e3 * np.percentile(wall, 50),
            p95_ms=1e3 * np.percentile(wall, 95),
            cpu_p50_ms=1e3 * np.percentile(cpu, 50),
        )
    else:  # embed: {"passages": [...], "queries": [...]} -> npz
        data = texts
        np.savez(
            out_path.with_suffix(".npz"),
            passages=passages(data["passages"]),
            queries=np.concatenate([query(q) for q in data["queries"]]) if data["queries"] else np.zeros(0),
        )
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out_path.write_text(json.dumps(result), encoding="utf-8")


def run_worker(name: str, task: str, payload, tmp: Path) -> dict:
    texts_path, out_path = tmp / f"{name}-{task}-in.json", tmp / f"{name}-{task}-out.json"
    texts_path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    load_before = os.getloadavg()[0]
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            name,
            "--task",
            task,
            "--texts",
            str(texts_path),
            "--outfile",
            str(out_path),
        ],
        check=True,
    )
    result = json.loads(out_path.read_text(encoding="utf-8"))
    result["load"] = (load_before + os.getloadavg()[0]) / 2
    return result


# ----------------------------------------------------------------------------------------------- the data
def scifact_docs() -> dict[str, str]:
    out = {}
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            out[d["_id"]] = f"{d['title']}\n\n{d['text']}".strip()
    return out


def ntrex_sample(per_lang: int = 20) -> list[str]:
    texts = []
    for lang in NTREX_LANGS:
        with gzip.open(DATA / "ntrex-128" / "NTREX-128" / f"newstest2019-ref.{lang}.txt.gz", "rt") as f:
            lines = [line.strip() for line in f]
        texts += [lines[i] for i in range(0, per_lang * 50, 50)]
    return texts


def cached_embed(name: str, model_fp: str, payload: dict, tmp: Path) -> dict[str, np.ndarray]:
    """The row's embeddings of ``payload``, computed once per (row, model, texts) and kept in the cache."""
    from indexer.cache import cache_home

    files = () if name in PLAIN else ("encoder.py", "backends.py", "onnx_build.py", "ct2_build.py")
    code = [(ROOT / "indexer" / f).read_text(encoding="utf-8") for f in files]
    key = hashlib.sha256(
        json.dumps([name, model_fp, code, payload], ensure_ascii=False).encode()
    ).hexdigest()[:16]
    path = cache_home() / "bench" / "encode" / f"{name}-{key}.npz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        run_worker(name, "embed", payload, tmp)
        (tmp / f"{name}-embed-out.npz").replace(path)
    with np.load(path) as z:
        return {"passages": z["passages"], "queries": z["queries"]}


def ndcg10(doc_ids: list[str], qids: list[str], qrels: dict, emb: dict[str, np.ndarray]) -> float:
    from eval.metrics import evaluate_run, mean

    scores = emb["queries"] @ emb["passages"].T  # (queries, docs)
    top = np.argsort(-scores, axis=1)[:, :100]
    run = {q: {doc_ids[j]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(qids)}
    return mean(evaluate_run(qrels, run, ["ndcg@10"]), ["ndcg@10"])["ndcg@10"]


# ------------------------------------------------------------------------------------------------ the table
def hardware() -> str:
    model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    flags = next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")), "")
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f" {f}" in flags]
    from importlib.metadata import version

    return (
        f"{model}, {os.cpu_count()} CPUs ({', '.join(isa)}), Python {platform.python_version()}, "
        f"torch {version('torch')}, onnxruntime {version('onnxruntime')}, "
        f"sentence-transformers {version('sentence-transformers')}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=f"{BASELINE},st-fp32-1t,torch,onnx-int8,ct2-int8")
    ap.add_argument("--speed-docs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--queries", type=int, default=100, help="single-query latency sample")
    ap.add_argument("--eval-docs", type=int, default=1500)
    ap.add_argument(
        "--eval-rows", default=f"{BASELINE},onnx-int8,ct2-int8", help="rows whose nDCG is computed"
    )
    ap.add_argument("--no-eval", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "encode.md"))
    for name in ("--worker", "--task", "--texts", "--outfile"):
        ap.add_argument(name, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.task, Path(args.texts), Path(args.outfile))
        return
    from sentence_transformers import SentenceTransformer

    from eval.datasets import load_beir, subset
    from indexer.config import DEFAULT_MODEL
    from indexer.encoding.encoder import folder_fingerprint
    from indexer.models.resolve import resolve_model
    from indexer.tokens import token_ids

    rows = args.rows.split(",")
    docs = scifact_docs()
    speed_texts = [docs[d] for d in random.Random(0).sample(sorted(docs), args.speed_docs)]
    model_path = resolve_model(DEFAULT_MODEL)
    model_fp = folder_fingerprint(Path(model_path))
    st = SentenceTransformer(model_path, device="cpu")  # for token counts only
    n_tokens = sum(len(ids) for ids in token_ids(st, ["passage: " + t for t in speed_texts]))
    del st
    _, queries, _ = load_beir(SCIFACT, "test")
    query_texts = [queries[q] for q in sorted(queries)][: args.queries]

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        speed: dict[str, list[dict]] = {r: [] for r in rows}
        for _ in range(args.rounds):
            for r in rows:
                speed[r].append(run_worker(r, "speed", speed_texts, tmp))
        latency = {r: run_worker(r, "latency", query_texts, tmp) for r in rows}
        ml = ntrex_sample()
        ml_emb = {r: cached_embed(r, model_fp, {"passages": ml, "queries": []}, tmp) for r in rows}
        quality: dict[str, float] = {}
        if not args.no_eval:
            corpus, qs, qrels = subset(*load_beir(SCIFACT, "test"), max_docs=args.eval_docs, seed=0)
            doc_ids, qids = sorted(corpus), sorted(qs)
            payload = {
                "passages": [f"{corpus[d].get('title', '')}\n\n{corpus[d]['text']}".strip() for d in doc_ids],
                "queries": [qs[q] for q in qids],
            }
            for r in args.eval_rows.split(","):
                emb = cached_embed(r, model_fp, payload, tmp)
                quality[r] = ndcg10(doc_ids, qids, qrels, emb)
    report = render(rows, speed, latency, ml_emb, quality, n_tokens, args, len(ml))
    print(report)
    Path(args.out).write_text(report, encoding="utf-8")


def paired_ratios(base: list[dict], row: list[dict], key: str) -> str:
    """Median (min-max) over rounds of baseline time / row time, each round against its own baseline run."""
    ratios = [b[key] / r[key] for b, r in zip(base, row)]
    spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
    return f"{np.median(ratios):.2f}{spread}"


def render(rows, speed, latency, ml_emb, quality, n_tokens, args, n_ml) -> str:
    loads = [s["load"] for r in rows for s in speed[r]]
    lines = [
        f"# Encoding benchmark ({date.today()})",
        "",
        f"Hardware: {hardware()}.",
        "",
        f"Load average (1 min) during the runs: {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs "
        "(machine shared with other jobs: wall times are noisy, CPU seconds steadier).",
        "",
        f"Speed: {args.speed_docs} SciFact abstracts ({n_tokens:,} tokens with prompt and special tokens), "
        f"{args.rounds} rounds interleaved, median shown (all rounds in brackets). × baseline: the median over "
        "rounds of the ratio to the baseline's run in the same round (lowest-highest in brackets), so a round "
        "that ran while the machine was slow compares with a baseline that ran about then too.",
        "",
        "| row | texts/s | tokens/s | × baseline (wall) | × baseline (CPU s) | query p50 / p95 ms (CPU p50) "
        "| nDCG@10 subset | Δ nDCG (points) | cosine vs fp32 min / p1 / median | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        wall = np.median([s["wall_s"] for s in speed[r]])
        rounds = ", ".join(f"{args.speed_docs / s['wall_s']:.2f}" for s in speed[r])
        by_wall = paired_ratios(speed[BASELINE], speed[r], "wall_s")
        by_cpu = paired_ratios(speed[BASELINE], speed[r], "cpu_s")
        lat = latency[r]
        cos = np.sum(ml_emb[r]["passages"] * ml_emb[BASELINE]["passages"], axis=1)
        nd = f"{quality[r]:.4f}" if r in quality else "-"
        delta = (
            f"{100 * (quality[r] - quality[BASELINE]):+.2f}" if r in quality and BASELINE in quality else "-"
        )
        rss = max(s["peak_rss_mb"] for s in speed[r])
        lines.append(
            f"| {r} | {args.speed_docs / wall:.2f} ({rounds}) | {n_tokens / wall:,.0f} | {by_wall} "
            f"| {by_cpu} | {lat['p50_ms']:.1f} / {lat['p95_ms']:.1f} ({lat['cpu_p50_ms']:.1f}) | {nd} "
            f"| {delta} | {cos.min():.4f} / {np.percentile(cos, 1):.4f} / {np.median(cos):.4f} | {rss:,.0f} |"
        )
    lines += [
        "",
        f"Cosine sample: {n_ml} NTREX-128 sentences ({len(NTREX_LANGS)} languages: "
        f"{', '.join(NTREX_LANGS)}), embedded as passages.",
        f"nDCG subset: SciFact test, 300 queries, {args.eval_docs} documents (judged + seeded sample, seed 0).",
        "",
        "Rows: " + "; ".join(f"{r}: {json.dumps(speed[r][0]['info'].get('backend'))}" for r in rows),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
