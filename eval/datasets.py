"""BEIR-layout datasets: loading with clear errors, content hashing, and seeded subsets for CI.

Layout (Thakur et al. 2021)::

    DIR/corpus.jsonl[.gz]      {"_id": ..., "title": ..., "text": ...} per line
    DIR/queries.jsonl[.gz]     {"_id": ..., "text": ...} per line
    DIR/qrels/{split}.tsv[.gz] header line, then query-id <TAB> corpus-id <TAB> integer score

Like BEIR's ``GenericDataLoader``, queries without qrels in the split are dropped. Unlike it, qrels that name a
query or a document the dataset does not have are an error by default (``on_unknown="error"``): they usually mean
the wrong corpus or a truncated file, and a silently unretrievable relevant document lowers every recall number.
With ``on_unknown="warn"`` the count is logged; qrels of unknown queries are dropped (nothing to run) and those of
unknown documents are kept, which is what trec_eval does with relevant documents no system can return.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Literal

from indexer.errors import DatasetError
from indexer.ingest.beir import load_corpus, load_qrels, load_queries
from indexer.types import Corpus, Qrels, Queries

logger = logging.getLogger(__name__)

OnUnknown = Literal["error", "warn"]


def check_qrels(qrels: Qrels, corpus: Corpus, queries: Queries, on_unknown: OnUnknown = "error") -> Qrels:
    """Qrels restricted to known queries; raises (or warns) on ids the dataset does not have."""
    bad_q = sorted(q for q in qrels if q not in queries)
    bad_d = sorted({d for rels in qrels.values() for d in rels if d not in corpus})
    if bad_q or bad_d:
        msg = (
            f"qrels name {len(bad_q)} unknown query id(s) {bad_q[:5]} and {len(bad_d)} unknown document id(s) "
            f"{bad_d[:5]}"
        )
        if on_unknown == "error":
            raise DatasetError(
                msg + "; check that the qrels belong to this corpus, or pass on_unknown='warn' "
                "(--allow-unknown-ids) to drop unknown queries and count unknown documents as unretrievable"
            )
        logger.warning("%s: unknown queries dropped, unknown documents kept as unretrievable", msg)
    return {q: dict(rels) for q, rels in qrels.items() if q in queries}


def load_beir(
    dataset_dir: str | Path, split: str = "test", on_unknown: OnUnknown = "error"
) -> tuple[Corpus, Queries, Qrels]:
    """Load a BEIR folder; queries are restricted to those with qrels in ``split``.

    >>> corpus, queries, qrels = load_beir("../shared/data/scifact-beir", "test")
    >>> len(queries), len(qrels)  # (300, 300)
    """
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise DatasetError(f"{dataset_dir}: no such dataset folder")
    qrels = load_qrels(dataset_dir, split)  # first: a wrong split fails before the corpus is read
    corpus = load_corpus(dataset_dir)
    queries = load_queries(dataset_dir)
    qrels = check_qrels(qrels, corpus, queries, on_unknown)
    kept = {q: queries[q] for q in queries if q in qrels}
    logger.info("%s/%s: %d docs, %d queries with qrels", dataset_dir.name, split, len(corpus), len(kept))
    return corpus, kept, qrels


def subset(
    corpus: Corpus,
    queries: Queries,
    qrels: Qrels,
    max_queries: int | None = None,
    max_docs: int | None = None,
    seed: int = 0,
) -> tuple[Corpus, Queries, Qrels]:
    """A seeded sample for CI: ``max_queries`` queries, and a corpus that keeps every document judged for them
    plus a random sample of the rest up to ``max_docs`` (more when the judged documents alone exceed it)."""
    rng = random.Random(seed)
    qids = sorted(queries)
    if max_queries is not None and max_queries < len(qids):
        qids = sorted(rng.sample(qids, max_queries))
    queries = {q: queries[q] for q in qids}
    qrels = {q: dict(qrels[q]) for q in qids if q in qrels}
    if max_docs is not None and max_docs < len(corpus):
        judged = sorted({d for rels in qrels.values() for d in rels if d in corpus})
        judged_set = set(judged)
        rest = sorted(d for d in corpus if d not in judged_set)
        extra = rng.sample(rest, max(0, min(len(rest), max_docs - len(judged))))
        keep = judged_set | set(extra)
        corpus = {d: corpus[d] for d in corpus if d in keep}
    return dict(corpus), queries, qrels


def corpus_hash(corpus: Corpus) -> str:
    """A content hash of a corpus, independent of file name, compression and line order."""
    h = hashlib.sha256()
    for doc_id in sorted(corpus):
        doc = corpus[doc_id]
        h.update(json.dumps([doc_id, doc.get("title", ""), doc.get("text", "")], ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def write_corpus(corpus: Corpus, path: Path) -> Path:
    """Write ``corpus`` as BEIR ``corpus.jsonl`` (sorted by id, so equal corpora give equal files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for doc_id in sorted(corpus):
            doc = corpus[doc_id]
            f.write(
                json.dumps(
                    {"_id": doc_id, "title": doc.get("title", ""), "text": doc.get("text", "")},
                    ensure_ascii=False,
                )
                + "\n"
            )
    tmp.replace(path)
    return path


def write_beir(folder: Path, corpus: Corpus, queries: Queries, qrels: dict[str, Qrels]) -> Path:
    """Write a BEIR folder; ``qrels`` maps split name to that split's qrels."""
    write_corpus(corpus, folder / "corpus.jsonl")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
        for qid in sorted(queries):
            f.write(json.dumps({"_id": qid, "text": queries[qid]}, ensure_ascii=False) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    for split, rels in qrels.items():
        with open(folder / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for qid in sorted(rels):
                for doc_id, score in sorted(rels[qid].items()):
                    f.write(f"{qid}\t{doc_id}\t{score}\n")
    return folder
