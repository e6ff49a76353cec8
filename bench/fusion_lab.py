"""Shared plumbing for fitting and comparing hybrid fusions on cached candidate lists (issue 14).

Encoding is the expensive part (hours for SciFact + NFCorpus on 2 cores), fusing costs microseconds, so each
dataset's per-query dense and BM25 lists are dumped once and every fusion rule is scored on the dump:

- :func:`dump` indexes a BEIR folder exactly as ``e5search eval`` does (``eval.run.prepare_index``: same chunking,
  language tags, BM25 analysers and embedding cache) and writes ``OUT/{name}.npz`` (``dense_ids``,
  ``dense_scores``, ``bm25_ids``, ``bm25_scores``, each ``(n_queries, depth)``, padded with id -1) and
  ``OUT/{name}.json`` (qids, split per query, query text and detected language, chunk -> document and chunk ->
  language for every listed chunk, qrels per split);
- :func:`load` reads a dump back as :class:`Cands`;
- :func:`evaluate` fuses every query of a split with a function and scores the document run with the project's
  trec_eval wrapper exactly as ``eval.run`` does (a document at its best chunk, top 100, scored in rank order).

Usage (from the repository root; ``nice`` on a shared machine)::

    python bench/fusion_lab.py --dataset /tmp/xling --splits dev,test,exact --out /tmp/fusion-cands
    python bench/fusion_lab.py --dataset ../shared/data/scifact-beir --splits train,test \\
        --max-queries train=300 --out /tmp/fusion-cands
    python bench/fusion_lab.py --dataset ../shared/data/nfcorpus-beir --splits dev,test --out /tmp/fusion-cands
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from eval.metrics import by_rank, evaluate_run
from eval.run import EvalConfig, prepare_index
from indexer.ingest.beir import load_corpus, load_qrels, load_queries
from indexer.ingest.langdetect import detect_language
from indexer.types import FusionWeights, Ranked

logger = logging.getLogger(__name__)

# (dense, bm25, query language, chunk -> language) -> (fused list, weights)
FuseFn = Callable[[Ranked, Ranked, str, Mapping[int, str]], tuple[Ranked, FusionWeights]]
DEPTH = 200  # what eval's Retriever asks each retriever for when k=100 (2k chunks)
K_DOCS = 100


@dataclass
class Cands:
    name: str
    qids: list[str]
    split: list[str]
    query_lang: list[str]
    dense: list[Ranked]
    bm25: list[Ranked]
    chunk_doc: dict[int, str]
    chunk_lang: dict[int, str]
    qrels: dict[str, dict[str, dict[str, int]]]  # split -> qid -> doc -> relevance

    def rows(self, split: str) -> list[int]:
        return [i for i, s in enumerate(self.split) if s == split]

    def group(self, i: int) -> str:
        """The language pair for the cross-lingual folder set (``"ja>en"``), else the dataset's name."""
        parts = self.qids[i].split(".")
        return f"{parts[0]}>{parts[1]}" if len(parts) == 3 and self.name == "xling" else self.name


def _lists(ids: np.ndarray, scores: np.ndarray) -> list[Ranked]:
    return [[(int(c), float(s)) for c, s in zip(r_ids, r_s) if c >= 0] for r_ids, r_s in zip(ids, scores)]


def load(folder: str | Path, name: str) -> Cands:
    folder = Path(folder)
    arrays = np.load(folder / f"{name}.npz")
    meta = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    return Cands(
        name=name,
        qids=meta["qids"],
        split=meta["split"],
        query_lang=meta["query_lang"],
        dense=_lists(arrays["dense_ids"], arrays["dense_scores"]),
        bm25=_lists(arrays["bm25_ids"], arrays["bm25_scores"]),
        chunk_doc={int(c): d for c, d in meta["chunk_doc"].items()},
        chunk_lang={int(c): lang for c, lang in meta["chunk_lang"].items()},
        qrels=meta["qrels"],
    )


def doc_run(
    ranked: Sequence[tuple[int, float]], chunk_doc: Mapping[int, str], k: int = K_DOCS
) -> dict[str, float]:
    """A document's score is its best chunk's, as in ``indexer.search.retriever``."""
    docs: dict[str, float] = {}
    for cid, score in ranked:
        key = chunk_doc.get(cid)
        if key is not None and key not in docs:
            docs[key] = score
            if len(docs) >= k:
                break
    return docs


def evaluate(c: Cands, split: str, fn: FuseFn, metric: str = "ndcg@10") -> dict[str, float]:
    """Per-query ``metric`` (qid -> value) for every query of ``split``, fused by ``fn``."""
    rows = c.rows(split)
    run = {
        c.qids[i]: doc_run(fn(c.dense[i], c.bm25[i], c.query_lang[i], c.chunk_lang)[0], c.chunk_doc)
        for i in rows
    }
    qrels = {c.qids[i]: c.qrels[split][c.qids[i]] for i in rows}
    return {q: v[metric] for q, v in evaluate_run(qrels, by_rank(run), [metric]).items()}


def by_group(c: Cands, per_query: Mapping[str, float]) -> dict[str, float]:
    index = {q: i for i, q in enumerate(c.qids)}
    groups: dict[str, list[float]] = {}
    for q, v in per_query.items():
        groups.setdefault(c.group(index[q]), []).append(v)
    return {g: float(np.mean(v)) for g, v in sorted(groups.items())}


def dense_only(
    dense: Ranked, bm25: Ranked, ql: str, langs: Mapping[int, str]
) -> tuple[Ranked, FusionWeights]:
    return list(dense), FusionWeights("dense", bm25=0.0, dense=1.0)


def bm25_only(dense: Ranked, bm25: Ranked, ql: str, langs: Mapping[int, str]) -> tuple[Ranked, FusionWeights]:
    return list(bm25), FusionWeights("bm25", bm25=1.0, dense=0.0)


# ---------------------------------------------------------------- dumping candidate lists (encodes: slow)
def _select_queries(dataset: Path, splits: list[str], caps: dict[str, int], seed: int):
    queries = load_queries(dataset)
    qrels: dict[str, dict[str, dict[str, int]]] = {}
    split_of: dict[str, str] = {}
    for split in splits:
        rels = {q: r for q, r in load_qrels(dataset, split).items() if q in queries}
        qids = sorted(rels)
        if split in caps and caps[split] < len(qids):
            qids = sorted(random.Random(seed).sample(qids, caps[split]))
        qrels[split] = {q: rels[q] for q in qids}
        for q in qids:
            split_of.setdefault(q, split)
    return queries, qrels, split_of


def _pad(runs: list[Ranked], depth: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.full((len(runs), depth), -1, dtype=np.int64)  # (n_queries, depth)
    scores = np.zeros((len(runs), depth), dtype=np.float32)
    for i, run in enumerate(runs):
        for j, (cid, s) in enumerate(run[:depth]):
            ids[i, j], scores[i, j] = cid, s
    return ids, scores


def dump(
    dataset: Path, splits: list[str], out: Path, caps: dict[str, int], backend: str, seed: int = 0
) -> None:
    """Index ``dataset`` as ``e5search eval`` does and write its queries' candidate lists (module docstring)."""
    from indexer.config import ModelConfig
    from indexer.encoding.encoder import Encoder
    from indexer.search.index import Index
    from indexer.storage import catalog

    queries, qrels, split_of = _select_queries(dataset, splits, caps, seed)
    qids = sorted(split_of)
    texts = [queries[q] for q in qids]
    encoder = Encoder(ModelConfig(backend=backend, batch_size=32))  # type: ignore[arg-type]
    config = EvalConfig(backend=backend, batch_size=32)  # type: ignore[arg-type]
    index_dir = prepare_index(load_corpus(dataset), dataset.name, encoder, config, show_progress=True)
    idx = Index.open(index_dir, encoder=encoder)
    t0 = time.perf_counter()
    with idx.reading() as reading:
        dense, bm25 = (idx.rank(reading, texts, mode, DEPTH) for mode in ("dense", "bm25"))
        wanted = {c for run in (*dense, *bm25) for c, _ in run}
        chunk_lang = catalog.chunk_langs(reading.session, wanted)
        chunk_doc = {c: d for c, d in idx.doc_keys(reading).items() if c in wanted}
    idx.close()
    out.mkdir(parents=True, exist_ok=True)
    (d_ids, d_scores), (b_ids, b_scores) = _pad(dense, DEPTH), _pad(bm25, DEPTH)
    np.savez_compressed(
        out / f"{dataset.name}.npz",
        dense_ids=d_ids,
        dense_scores=d_scores,
        bm25_ids=b_ids,
        bm25_scores=b_scores,
    )
    meta = {
        "dataset": str(dataset),
        "backend": backend,
        "encoder": encoder.describe(),
        "depth": DEPTH,
        "index_dir": str(index_dir),
        "qids": qids,
        "split": [split_of[q] for q in qids],
        "query_text": texts,
        "query_lang": [detect_language(t) for t in texts],
        "chunk_doc": {str(c): d for c, d in chunk_doc.items()},
        "chunk_lang": {str(c): lang for c, lang in chunk_lang.items()},
        "qrels": qrels,
        "caps": caps,
        "seed": seed,
        "seconds_ranking": time.perf_counter() - t0,
    }
    (out / f"{dataset.name}.json").write_text(json.dumps(meta, ensure_ascii=False) + "\n", encoding="utf-8")
    logger.info("%s: %d queries dumped to %s", dataset.name, len(qids), out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--splits", required=True, help="comma-separated qrels splits")
    parser.add_argument("--max-queries", default="", help="split=N,...: seeded samples of a split's queries")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    caps = {k: int(v) for k, v in (p.split("=") for p in args.max_queries.split(",") if p)}
    dump(args.dataset, args.splits.split(","), args.out, caps, args.backend, args.seed)


if __name__ == "__main__":
    main()
