"""Chunking configs side by side (issue 15): tokens encoded, encode time and nDCG@10 through the eval path.

For each ``size:overlap[:title]`` config this builds (or reuses) the eval index of one BEIR dataset with the
product's own ``eval.run`` functions (prepare_index → run_retrievers → score_runs), counts the chunks and the
tokens the encoder actually saw (prompt + header + body, as tokenized for the model, truncated at its window),
times ``encode_passages`` alone and the whole build, and tests each config's per-query nDCG@10 against the first
config's with the paired randomisation test (eval.significance). Results accumulate in a JSON file keyed by
dataset and config, so a cached index (nothing encoded) keeps the counts and times of the run that built it.

    .venv/bin/python -m bench.chunking --dataset ../shared/data/scifact-beir \
        --configs 256:32,512:0,256:0,384:0,512:32,256:32:16 --json bench/results/chunking.json

Non-goals: choosing defaults (this only measures), the DDTP suite and folder corpora (BEIR folders only).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eval.datasets import load_beir
from eval.metrics import column
from eval.run import EvalConfig, prepare_index, run_retrievers, score_runs
from eval.significance import paired_test
from indexer.config import ChunkConfig

logger = logging.getLogger(__name__)


class TimedEncoder:
    """Delegates to an encoder; records the passages it encodes and the seconds ``encode_passages`` takes."""

    def __init__(self, encoder):
        self._encoder = encoder
        self.texts: list[str] = []
        self.seconds = 0.0

    def __getattr__(self, name: str):
        return getattr(self._encoder, name)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        t0 = time.perf_counter()
        out = self._encoder.encode_passages(texts, show_progress=show_progress)
        self.seconds += time.perf_counter() - t0
        self.texts.extend(texts)
        return out

    def tokens_encoded(self) -> int:
        """Tokens the model saw: prompt + text with special tokens, cut at its window (as the encoder does)."""
        tok, prompt = self._encoder.tokenizer, self._encoder.passage_prompt
        total = 0
        for i in range(0, len(self.texts), 1024):
            batch = [prompt + t for t in self.texts[i : i + 1024]]
            ids = tok(batch, truncation=True, max_length=self._encoder.max_length)["input_ids"]
            total += sum(len(x) for x in ids)
        return total


def parse_config(text: str) -> ChunkConfig:
    """``"256:32"`` → ChunkConfig(256, 32); ``"256:32:16"`` also sets max_title_tokens=16."""
    parts = [int(p) for p in text.split(":")]
    names = ("chunk_size", "chunk_overlap", "max_title_tokens")
    return ChunkConfig(**dict(zip(names, parts, strict=False)))


def label(c: ChunkConfig) -> str:
    title = "" if c.max_title_tokens == ChunkConfig.max_title_tokens else f", title {c.max_title_tokens}"
    return f"{c.chunk_size}/{c.chunk_overlap}{title}"


def index_stats(index_dir: Path) -> dict[str, int]:
    """Chunks in the index and the sum of their body tokens (ChunkRow.n_tokens, header and prompt excluded)."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from indexer.storage.store import ChunkRow, open_engine

    engine = open_engine(index_dir)
    try:
        with Session(engine) as session:
            n, body = session.execute(select(func.count(ChunkRow.id), func.sum(ChunkRow.n_tokens))).one()
    finally:
        engine.dispose()
    return {"chunks": int(n), "body_tokens": int(body or 0)}


def eval_config(chunking: ChunkConfig, retrievers: tuple[str, ...]) -> EvalConfig:
    """The eval settings that build and score an index chunked by ``chunking``."""
    return EvalConfig(
        retrievers=retrievers,
        chunk_size=chunking.chunk_size,
        chunk_overlap=chunking.chunk_overlap,
        max_title_tokens=chunking.max_title_tokens,
    )


def run_one(dataset: Path, chunking: ChunkConfig, retrievers: tuple[str, ...], encoder) -> dict:
    corpus, queries, qrels = load_beir(dataset, "test")
    config = eval_config(chunking, retrievers)
    timed = TimedEncoder(encoder)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    index_dir = prepare_index(corpus, dataset.name, timed, config, show_progress=True)
    build_s = time.perf_counter() - t0
    runs, seconds = run_retrievers(index_dir, queries, config, encoder)
    results, _, per_query = score_runs(runs, qrels, seconds, config)
    row = {
        "config": label(chunking),
        "chunking": dataclasses.asdict(chunking),
        **index_stats(index_dir),
        "encoded": len(timed.texts),
        "load_avg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "ndcg@10": {name: results[name]["ndcg@10"] for name in retrievers},
        "per_query": {name: {q: v["ndcg@10"] for q, v in pq.items()} for name, pq in per_query.items()},
    }
    if timed.texts:  # built now: the counts and times are this run's
        row |= {"tokens_encoded": timed.tokens_encoded(), "encode_s": timed.seconds, "build_s": build_s}
    return row


def rule_ab(dataset: Path, chunking: ChunkConfig, retrievers: tuple[str, ...], encoder) -> list[dict]:
    """A chunking *rule* change, measured without re-encoding the corpus: the cached eval index of ``chunking`` is
    copied and re-chunked (``build_index(..., rechunk=True)``) twice in one process, by the rule before the
    room-filling of long units (``_SectionCutter._fill`` switched off) and by today's, and both are scored. Both
    rows come from today's code (BM25, languages, fusion rebuilt alike), so only the rule differs; only chunk texts
    that changed are encoded (the copy's embedding cache holds the rest)."""
    import indexer.ingest.chunking as chunker

    fill = chunker._SectionCutter._fill
    rows = []
    for name, rule in (("before", lambda self, chunk, start, levels: chunk), ("today", fill)):
        chunker._SectionCutter._fill = rule  # type: ignore[method-assign]
        try:
            rows.append({"rule": name, **rechunk_cached(dataset, chunking, retrievers, encoder)})
        finally:
            chunker._SectionCutter._fill = fill  # type: ignore[method-assign]
        rows[-1]["config"] = f"{label(chunking)}, rule {name}"
    return rows


def rechunk_cached(dataset: Path, chunking: ChunkConfig, retrievers: tuple[str, ...], encoder) -> dict:
    """The cached eval index of ``chunking``, copied and re-chunked with the chunker as it is now, scored like
    :func:`run_one`."""
    import shutil
    import tempfile

    from eval.run import _chunking_key
    from indexer.build.job import build_index
    from indexer.cache import cache_home
    from indexer.config import IndexConfig, ModelConfig

    _, queries, qrels = load_beir(dataset, "test")
    config = eval_config(chunking, retrievers)
    pattern = f"{dataset.name}-*-{encoder.fingerprint}-{_chunking_key(chunking)}"
    cached = sorted((cache_home() / "eval").glob(pattern))
    if len(cached) != 1:
        raise SystemExit(
            f"{pattern}: {len(cached)} cached eval indexes; run this config without --rule-ab first"
        )
    timed = TimedEncoder(encoder)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / cached[0].name
        shutil.copytree(cached[0], folder)
        _move_source_root(folder / "index", folder / "corpus")
        index_config = IndexConfig(
            model=ModelConfig(model=encoder.name, backend=config.backend), chunking=chunking
        )
        source = folder / "corpus" / "corpus.jsonl"
        build_index(source, folder / "index", index_config, encoder=timed, rechunk=True)
        runs, seconds = run_retrievers(folder / "index", queries, config, encoder)
        results, _, per_query = score_runs(runs, qrels, seconds, config)
        stats = index_stats(folder / "index")
    return {
        "chunking": dataclasses.asdict(chunking),
        **stats,
        "encoded": len(timed.texts),
        "ndcg@10": {name: results[name]["ndcg@10"] for name in retrievers},
        "per_query": {name: {q: v["ndcg@10"] for q, v in pq.items()} for name, pq in per_query.items()},
    }


def _move_source_root(index_dir: Path, root: Path) -> None:
    """A copied index reads its files from the copy's folder (the manifest records the folder it indexed)."""
    from sqlalchemy.orm import Session

    from indexer.storage.store import open_engine, write_manifest

    engine = open_engine(index_dir)
    try:
        with Session(engine) as session, session.begin():
            write_manifest(session, {"source_root": str(root)})
    finally:
        engine.dispose()


def significance(rows: list[dict], retrievers: Sequence[str]) -> None:
    """Adds ``p_vs_base`` (paired randomisation, nDCG@10) to every row against the first one."""
    base = rows[0]
    for row in rows:
        row["p_vs_base"] = {}
        for name in retrievers:
            qids = sorted(base["per_query"][name])
            a = column({q: {"m": v} for q, v in row["per_query"][name].items()}, "m", qids)
            b = column({q: {"m": v} for q, v in base["per_query"][name].items()}, "m", qids)
            row["p_vs_base"][name] = paired_test(a, b)["p_randomization"]


def table(dataset: str, rows: list[dict], retrievers: Sequence[str]) -> str:
    head = ["size/overlap", "chunks", "tokens encoded", "encode s", "build s"]
    for name in retrievers:
        head += [f"nDCG@10 {name}", f"p {name}"]
    head.append(f"{retrievers[0]} nDCG per 1M tokens")
    lines = [f"**{dataset}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        tokens = r.get("tokens_encoded")
        cells = [
            r["config"],
            f"{r['chunks']:,}",
            f"{tokens:,}" if tokens else "n/a",
            f"{r['encode_s']:.0f}" if "encode_s" in r else "n/a",
            f"{r['build_s']:.0f}" if "build_s" in r else "n/a",
        ]
        for name in retrievers:
            pv = r["p_vs_base"][name]
            cells += [f"{100 * r['ndcg@10'][name]:.2f}", f"{pv:.3f}" if pv >= 0.001 else "<0.001"]
        cells.append(f"{100 * r['ndcg@10'][retrievers[0]] / (tokens / 1e6):.1f}" if tokens else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from indexer.config import DEFAULT_MODEL, ModelConfig
    from indexer.encoding.encoder import Encoder

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--configs", default="256:32,512:0,256:0,384:0,512:32,256:32:16")
    p.add_argument("--retrievers", default="dense,hybrid")
    p.add_argument("--backend", default="auto")
    p.add_argument("--json", dest="json_out", type=Path, default=Path("bench/results/chunking.json"))
    p.add_argument(
        "--rule-ab",
        action="store_true",
        help="re-chunk each config's cached eval index by the chunking rule before and after the room-filling "
        "change (rule_ab) and test one against the other; results go to the --json file's '<dataset> rule' key",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    retrievers = tuple(r.strip() for r in args.retrievers.split(","))
    store = json.loads(args.json_out.read_text(encoding="utf-8")) if args.json_out.exists() else {}
    done = store.setdefault(args.dataset.name, {})
    encoder = Encoder(ModelConfig(model=DEFAULT_MODEL, backend=args.backend))
    for text in args.configs.split(","):
        chunking = parse_config(text)
        if args.rule_ab:
            pair = rule_ab(args.dataset, chunking, retrievers, encoder)
            significance(pair, retrievers)
            print(table(args.dataset.name, pair, retrievers))
            store.setdefault(f"{args.dataset.name} rule", {}).update({r["config"]: r for r in pair})
            args.json_out.write_text(json.dumps(store, indent=1), encoding="utf-8")
            continue
        row = run_one(args.dataset, chunking, retrievers, encoder)
        done[row["config"]] = {**done.get(row["config"], {}), **row}  # a cached rerun keeps the first times
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(store, indent=1), encoding="utf-8")
        logger.info("%s: %s", row["config"], {k: v for k, v in row.items() if k != "per_query"})
    if args.rule_ab:
        return 0
    rows = [done[label(parse_config(t))] for t in args.configs.split(",")]
    significance(rows, retrievers)
    print(table(args.dataset.name, rows, retrievers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
