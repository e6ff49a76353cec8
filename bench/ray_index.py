"""Indexing through Ray workers vs the local pipeline, on one folder (run by hand; results in bench/results/ray.md).

Rows, each a fresh index of the same folder with the same model and backend (``auto`` here: ``onnx-int8``):

- ``local``: ``build_index`` with the encoder in this process (the default path);
- ``ray N``: ``build_index`` with a :class:`~indexer.encoding.ray_encode.RayEncoder` of N actors on a local Ray
  cluster started on 127.0.0.1 (``--ray auto`` without a running cluster); actors are started and have loaded
  the model before the clock starts, as a long run amortises that;
- ``local, torch on 1 thread``: the local run with one intra-op thread, as each of 2 workers on 2 cores has;
- ``read + chunk + write``: the same run with vectors for free (:class:`NoModel`): the pipeline's own rate, the
  ceiling of any number of workers, since reading and chunking stay on this machine;
- ``encode only``: the local encoder on the run's chunk texts, without the pipeline.

Usage:  nice -n 5 python bench/ray_index.py [--docs 48] [--workers 1 2] [--rounds 2] [--out bench/results/ray.md]
Corpus: a seeded sample of SciFact abstracts from ../shared/data (one .txt file a document).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SCIFACT = ROOT.parent / "shared" / "data" / "scifact-beir" / "corpus.jsonl.gz"


def write_sample(folder: Path, n_docs: int, seed: int) -> None:
    with gzip.open(SCIFACT, "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    for i in sorted(np.random.default_rng(seed).choice(len(docs), size=n_docs, replace=False)):
        doc = docs[int(i)]
        (folder / f"{doc['_id']}.txt").write_text(f"{doc['title']}\n\n{doc['text']}", encoding="utf-8")


def machine() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next(
        (ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?"
    )
    flags = Path("/proc/cpuinfo").read_text()
    have = [f for f in ("avx2", "avx512f", "amx_bf16") if f" {f}" in flags]
    return f"{model}, {os.cpu_count()} cores, flags {' '.join(have) or 'none of avx2/avx512f/amx'}"


def run_index(folder: Path, work: Path, name: str, encoder) -> dict:
    from indexer.build.job import build_index

    summary = build_index(folder, work / name.replace(" ", "-"), encoder=encoder)
    return {"row": name, "chunks": summary.chunks, "seconds": summary.seconds}


def ray_row(folder: Path, work: Path, local, workers: int) -> dict:
    from indexer.encoding.ray_encode import EncoderSpec, RayEncoder, connect, cpus_per_worker, worker_model

    started = time.perf_counter()
    cluster = connect("auto")  # no cluster running: a local one on 127.0.0.1 (before ray is imported)
    import ray

    config, _ = worker_model(local.config, local.backend, 0)
    spec = EncoderSpec("indexer.encoding.encoder:Encoder", {"config": config})
    cpus = cpus_per_worker(ray.cluster_resources()["CPU"], workers)
    encoder = RayEncoder(
        local, spec, workers, local.config.batch_size, started_cluster=cluster, num_cpus=cpus
    )
    ready = time.perf_counter() - started
    try:
        row = run_index(folder, work, f"ray {workers}", encoder)
    finally:
        encoder.close()
    return row | {"startup_s": ready}


class NoModel:
    """The local encoder's tokenizer and identity with vectors for free: the pipeline's own rate on the very
    chunks the real runs make (reading, chunking, language detection, SQLite, FAISS, BM25)."""

    def __init__(self, local):
        self.local = local

    def __getattr__(self, name: str):
        return getattr(self.local, name)

    def encode_passages(self, texts, show_progress: bool = False) -> np.ndarray:
        unit = np.zeros((len(texts), self.local.dim), dtype=np.float32)  # (n, dim)
        unit[:, 0] = 1.0
        return unit


def encode_only(local, work: Path) -> dict:
    import sqlite3

    with sqlite3.connect(work / "local" / "index.sqlite") as conn:
        texts = [t for (t,) in conn.execute("SELECT text FROM chunks ORDER BY id")]
    t0 = time.perf_counter()
    local.encode_passages(
        texts
    )  # the chunk texts; the job also adds the title header, so this is a lower bound
    return {"row": "encode only (local)", "chunks": len(texts), "seconds": time.perf_counter() - t0}


def one_thread(folder: Path, work: Path, local) -> dict:
    """The local run with torch on one thread: what each Ray worker gets when 2 share 2 cores (Ray sets a worker's
    OMP_NUM_THREADS to its CPUs), to tell Ray's part from the thread count's on a loaded machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_index(folder, work, "local, torch on 1 thread", local)
    finally:
        torch.set_num_threads(threads)


def one_round(folder: Path, work: Path, local, workers: list[int], reverse: bool) -> list[dict]:
    """Every row once, in this round's order (reversed every other round, so drift in the machine's load
    does not always favour the same row); each row indexes into a fresh folder."""
    names = ["local", "local 1 thread", *(f"ray {n}" for n in workers), "no model"]
    rows = []
    for name in reversed(names) if reverse else names:
        if name == "local":
            rows.append(run_index(folder, work, "local", local))
        elif name == "local 1 thread":
            rows.append(one_thread(folder, work, local))
        elif name == "no model":
            rows.append(run_index(folder, work, "read + chunk + write (no model)", NoModel(local)))
        else:
            rows.append(ray_row(folder, work, local, int(name.split()[1])))
    rows.append(encode_only(local, work))
    for path in work.iterdir():
        if path.name != "docs":
            shutil.rmtree(path)
    return rows


def report(rounds: list[list[dict]], args: argparse.Namespace, backend: str, loads: list[str]) -> str:
    """Per row: chunks/s of each round, and × local: the median over rounds of the ratio to local's rate in
    the same round."""
    names = [r["row"] for r in rounds[0]]
    lines = [
        f"## {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: {args.docs} SciFact docs (seed {args.seed}), "
        f"backend {backend}, {len(rounds)} rounds",
        "",
        f"`nice -n 5 python bench/ray_index.py --docs {args.docs} --workers {' '.join(map(str, args.workers))} "
        f"--rounds {args.rounds}`; {machine()}; load average at each round's start {', '.join(loads)} "
        "(2 cores shared with other jobs).",
        "",
        "| row | chunks | seconds (each round) | chunks/s (each round) | × local (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in names:
        rows = [next(r for r in rnd if r["row"] == name) for rnd in rounds]
        local = [next(r for r in rnd if r["row"] == "local") for rnd in rounds]
        rates = [r["chunks"] / r["seconds"] for r in rows]
        ratio = float(np.median([a / (b["chunks"] / b["seconds"]) for a, b in zip(rates, local)]))
        ready = [f"{r['startup_s']:.0f}" for r in rows if "startup_s" in r]
        extra = f" (workers ready in {'/'.join(ready)} s, not counted)" if ready else ""
        secs = " / ".join(f"{r['seconds']:.1f}" for r in rows)
        cps = " / ".join(f"{x:.1f}" for x in rates)
        lines.append(f"| {name}{extra} | {rows[0]['chunks']} | {secs} | {cps} | {ratio:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, help="append the Markdown section here")
    args = ap.parse_args()
    from indexer.config import ModelConfig
    from indexer.encoding.encoder import Encoder

    local = Encoder(ModelConfig())
    rounds, loads = [], []
    with tempfile.TemporaryDirectory(prefix="e5ray-bench") as tmp:
        folder, work = Path(tmp) / "docs", Path(tmp)
        folder.mkdir()
        write_sample(folder, args.docs, args.seed)
        run_index(folder, work, "warm-up", NoModel(local))  # first-use imports and loads, outside the rows
        shutil.rmtree(work / "warm-up")
        for i in range(args.rounds):
            loads.append(Path("/proc/loadavg").read_text().split()[0])
            rounds.append(one_round(folder, work, local, args.workers, reverse=i % 2 == 1))
    text = report(rounds, args, local.backend, loads)
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
