"""Indexing and dense-query benchmarks (run by hand; results go to bench/results/index.md).

1. End-to-end ``build_index`` chunks/s vs the model's encode-only chunks/s on the very same chunk texts:
   the pipeline (reading, chunking, language detection, SQLite, FAISS, BM25) should add little on top of the
   encoder (target: end-to-end >= 0.9x encode-only). With ``--off-cpu RATE`` also an encoder that computes
   nothing on the CPU (it sleeps ``1 / RATE`` s per chunk: a stand-in for a GPU, which this machine lacks), run
   with and without the read-ahead thread, to show what overlapping reading with encoding buys there.
2. Peak memory (max RSS) of indexing N chunks.
3. Dense query latency p50/p95 on a 100k-chunk index (flat and HNSW), search only and with query encoding.

Usage:  python bench/index.py [--docs 300] [--latency-chunks 100000] [--fake] [--off-cpu 150]
Corpus: SciFact abstracts from ../shared/data (one document per .txt file, written to a temp folder).
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
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
SCIFACT = ROOT.parent / "shared" / "data" / "scifact-beir" / "corpus.jsonl.gz"


def write_corpus(folder: Path, n_docs: int) -> None:
    with gzip.open(SCIFACT, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= n_docs:
                break
            doc = json.loads(line)
            (folder / f"{doc['_id']}.txt").write_text(f"{doc['title']}\n\n{doc['text']}", encoding="utf-8")


def make_encoder(fake: bool):
    if fake:
        from tests.fakes import FakeEncoder

        return FakeEncoder(dim=384, max_length=512)
    from indexer.config import ModelConfig
    from indexer.encoding.encoder import Encoder

    return Encoder(ModelConfig())


def off_cpu_encoder(rate: float, overlap: bool):
    """The fake encoder, plus ``1 / rate`` s of sleep per chunk during which the CPU is free (like a GPU)."""
    from tests.fakes import FakeEncoder

    class OffCpuEncoder(FakeEncoder):
        on_gpu = overlap

        def encode_passages(self, texts, show_progress=False):
            time.sleep(len(texts) / rate)
            return super().encode_passages(texts, show_progress)

    return OffCpuEncoder(dim=384, max_length=512)


def describe(encoder) -> str:
    info = encoder.describe()
    backend = info.get("backend")
    return f"{info['model']}, {backend}" if backend else info["model"]


def throughput(n_docs: int, encoder) -> dict:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from indexer.build.job import build_index
    from indexer.ingest.chunking import passage_text
    from indexer.search.index import Index
    from indexer.storage import catalog
    from indexer.storage.store import ChunkRow

    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        write_corpus(docs, n_docs)
        t0 = time.perf_counter()
        summary = build_index(docs, Path(tmp) / "idx", encoder=encoder)
        e2e = time.perf_counter() - t0
        index = Index.open(Path(tmp) / "idx", encoder=encoder)
        with Session(index.engine) as session:
            ids = session.scalars(select(ChunkRow.id).order_by(ChunkRow.id)).all()
        texts = [passage_text(*parts) for parts in catalog.passage_parts(index.engine, ids).values()]
        t0 = time.perf_counter()
        encoder.encode_passages(texts)
        enc = time.perf_counter() - t0
    return {
        "docs": n_docs,
        "chunks": summary.chunks,
        "e2e_s": e2e,
        "encode_s": enc,
        "encoder": describe(encoder),
        "e2e_chunks_per_s": summary.chunks / e2e,
        "encode_chunks_per_s": len(texts) / enc,
        "ratio": (summary.chunks / e2e) / (len(texts) / enc),
    }


def peak_memory(n_docs: int, fake: bool) -> float:
    """Max RSS (MB) of a fresh process that indexes n_docs documents."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import bench.index as b, tempfile, pathlib, resource;"
        f"from indexer.build import build_index;"
        f"t = pathlib.Path(tempfile.mkdtemp()); (t / 'd').mkdir(); b.write_corpus(t / 'd', {n_docs});"
        f"s = build_index(t / 'd', t / 'i', encoder=b.make_encoder({fake}));"
        f"print(s.chunks, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[-1]), int(out[-2])


def latency(n_chunks: int, fake: bool, n_queries: int = 200) -> list[dict]:
    from indexer.retrieval.dense import DenseIndex

    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((n_chunks, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    encoder = make_encoder(fake)
    queries = [f"what is the effect of treatment {i} on patients" for i in range(n_queries)]
    rows = []
    for kind in ("flat", "hnsw"):
        index = DenseIndex.empty(384)
        index.add(np.arange(n_chunks, dtype=np.int64), vecs)
        if kind == "hnsw":
            t0 = time.perf_counter()
            index.build_ann()
            build_s = time.perf_counter() - t0
        search_ms, total_ms = [], []
        for q in queries:
            t0 = time.perf_counter()
            qv = encoder.encode_queries([q])
            t1 = time.perf_counter()
            index.search(qv, 10)
            t2 = time.perf_counter()
            search_ms.append((t2 - t1) * 1e3)
            total_ms.append((t2 - t0) * 1e3)
        rows.append(
            {
                "kind": kind,
                "chunks": n_chunks,
                "search_p50": np.percentile(search_ms, 50),
                "search_p95": np.percentile(search_ms, 95),
                "total_p50": np.percentile(total_ms, 50),
                "total_p95": np.percentile(total_ms, 95),
                "build_s": build_s if kind == "hnsw" else 0.0,
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=300)
    ap.add_argument("--memory-docs", type=int, default=10_000 // 2)
    ap.add_argument("--latency-chunks", type=int, default=100_000, help="0 skips the query latency part")
    ap.add_argument("--fake", action="store_true", help="fake encoder: measures the pipeline alone")
    ap.add_argument(
        "--off-cpu",
        type=float,
        default=0.0,
        metavar="RATE",
        help="also an off-CPU encoder of RATE chunks/s, with and without the read-ahead thread",
    )
    ap.add_argument("--out", help="default: bench/results/index_fake.md with --fake, else index_real.md")
    args = ap.parse_args()
    encoder = make_encoder(args.fake)
    runs = [throughput(args.docs, encoder)]
    for overlap in (False, True) if args.off_cpu else ():
        runs.append(throughput(args.docs, off_cpu_encoder(args.off_cpu, overlap)))
        runs[-1]["encoder"] = (
            f"off-CPU stand-in, {args.off_cpu:g} chunks/s, "
            f"{'reading overlapped (read-ahead thread)' if overlap else 'read, then encode'}"
        )
    mem_mb, mem_chunks = peak_memory(args.memory_docs, args.fake)
    lines = [
        f"# Indexing benchmark ({date.today()}, {platform.machine()}, {resource.getpagesize()}-byte pages, "
        f"{__import__('os').cpu_count()} CPUs; encoder: {describe(encoder)})",
        "",
        "| encoder | docs | chunks | end-to-end chunks/s | encode-only chunks/s | ratio (target >= 0.9) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {tp['encoder']} | {tp['docs']} | {tp['chunks']} | {tp['e2e_chunks_per_s']:.1f} "
        f"| {tp['encode_chunks_per_s']:.1f} | {tp['ratio']:.2f} |"
        for tp in runs
    ]
    lines += [
        "",
        f"Peak RSS indexing {mem_chunks} chunks ({args.memory_docs} SciFact docs): {mem_mb:.0f} MB",
        "",
    ]
    if args.latency_chunks:
        lines += [
            "| dense index | chunks | search p50 ms | search p95 ms | encode+search p50 ms "
            "| encode+search p95 ms | build s |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['kind']} | {r['chunks']} | {r['search_p50']:.2f} | {r['search_p95']:.2f} | "
            f"{r['total_p50']:.2f} | {r['total_p95']:.2f} | {r['build_s']:.1f} |"
            for r in latency(args.latency_chunks, args.fake)
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = args.out or ROOT / "bench" / "results" / ("index_fake.md" if args.fake else "index_real.md")
    Path(out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
