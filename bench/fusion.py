"""What hybrid search's fusion costs per query: the weighted fusion against plain RRF in the same run (issue 14).

Two measurements per dataset, each the mean over queries of the best of ``--repeats`` runs, reported as
milliseconds and as a ratio to RRF (ratios measured side by side are what to trust on a shared machine):

- **fuse**: :func:`indexer.retrieval.fusion.fuse` alone on each query's dense and BM25 lists (the top ``--depth``
  of each, 100 = what ``e5search search`` fuses), weighted vs ``mode="rrf"``;
- **stage**: the whole fusion stage of a search as ``Index.rank`` runs it (:func:`indexer.search.hybrid.fuse_runs`:
  query language detection, the candidates' languages from SQLite in the query's snapshot, fusion), one query at
  a time; needs the dump's index folder.

Lists come from ``bench/fusion_lab.py`` dumps (``--cands``), or are synthetic (``--synthetic N``: N queries of
random lists, languages drawn from seven; no index, so no stage row).

Usage::

    python bench/fusion.py --cands /tmp/fusion-cands [--out bench/results/fusion.md]
    python bench/fusion.py --synthetic 2000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import fusion_lab as lab
from indexer.retrieval.fusion import fuse
from indexer.retrieval.fusion_model import fusion_config

LANGS = ("en", "de", "fr", "es", "ru", "ja", "zh")


def best_of(repeats: int, fn: Callable[..., object], *args: object) -> float:
    """Seconds of the fastest of ``repeats`` calls ``fn(*args)``."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best


def time_fuse(c: lab.Cands, depth: int, repeats: int) -> dict[str, float]:
    """Mean ms per query of ``fuse`` on the top ``depth`` of each list, weighted and RRF, interleaved."""
    out: dict[str, list[float]] = {"weighted": [], "rrf": []}
    for i in range(len(c.qids)):
        dense, bm25 = c.dense[i][:depth], c.bm25[i][:depth]
        for mode in out:
            config = fusion_config(mode)  # type: ignore[arg-type]
            out[mode].append(best_of(repeats, fuse, dense, bm25, c.query_lang[i], c.chunk_lang, config))
    return {mode: 1e3 * float(np.mean(v)) for mode, v in out.items()}


def time_stage(c: lab.Cands, index_dir: Path, texts: list[str], depth: int, repeats: int) -> dict[str, float]:
    """Mean ms per query of the whole fusion stage (``fuse_runs``) in a real reading of the dump's index."""
    from indexer.search.hybrid import fuse_runs
    from indexer.search.index import Index

    idx = Index.open(index_dir)
    out: dict[str, list[float]] = {"weighted": [], "rrf": []}
    with idx.reading() as reading:
        for i, text in enumerate(texts):
            dense, bm25 = [c.dense[i][:depth]], [c.bm25[i][:depth]]
            for mode in out:
                config = fusion_config(mode)  # type: ignore[arg-type]
                out[mode].append(best_of(repeats, fuse_runs, reading, [text], dense, bm25, config))
    idx.close()
    return {mode: 1e3 * float(np.mean(v)) for mode, v in out.items()}


def synthetic(n: int, depth: int, seed: int = 0) -> lab.Cands:
    rng = random.Random(seed)
    dense, bm25 = [], []
    for _ in range(n):
        d_ids = rng.sample(range(100_000), depth)
        b_ids = rng.sample(d_ids[: depth // 2], depth // 5) + rng.sample(range(100_000), depth - depth // 5)
        dense.append([(c, 0.9 - 0.002 * j) for j, c in enumerate(d_ids)])
        bm25.append([(c, 20.0 * 0.97**j) for j, c in enumerate(b_ids)])
    langs = {c: rng.choice(LANGS) for run in dense + bm25 for c, _ in run}
    qids = [str(i) for i in range(n)]
    query_lang = [rng.choice(LANGS) for _ in range(n)]
    return lab.Cands("synthetic", qids, ["test"] * n, query_lang, dense, bm25, {}, langs, {})


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cands", type=Path, help="folder of bench/fusion_lab.py dumps")
    parser.add_argument("--synthetic", type=int, help="N random queries instead of dumps")
    parser.add_argument(
        "--depth", type=int, default=100, help="list length fused per retriever (default 100)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, help="also write the table here (Markdown)")
    args = parser.parse_args()
    if (args.cands is None) == (args.synthetic is None):
        parser.error("give --cands DIR or --synthetic N")
    rows = []
    names = [p.stem for p in sorted(args.cands.glob("*.npz"))] if args.cands else ["synthetic"]
    for name in names:
        c = lab.load(args.cands, name) if args.cands else synthetic(args.synthetic, args.depth)
        fused = time_fuse(c, args.depth, args.repeats)
        rows.append((name, "fuse", len(c.qids), fused))
        meta = json.loads((args.cands / f"{name}.json").read_text(encoding="utf-8")) if args.cands else {}
        if meta.get("index_dir") and Path(meta["index_dir"]).is_dir():
            stage = time_stage(c, Path(meta["index_dir"]), meta["query_text"], args.depth, args.repeats)
            rows.append((name, "stage", len(c.qids), stage))
    lines = [
        f"Fusion cost per query, {dt.date.today()}, {_cpu()}, {platform.python_version()}; lists of {args.depth} "
        f"per retriever, best of {args.repeats} per query, mean over queries.",
        "",
        "| lists | what | queries | RRF ms | weighted ms | weighted / RRF |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, what, n, t in rows:
        lines.append(
            f"| {name} | {what} | {n} | {t['rrf']:.3f} | {t['weighted']:.3f} | {t['weighted'] / t['rrf']:.2f} |"
        )
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
