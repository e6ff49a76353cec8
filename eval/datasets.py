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

import gzip
import hashlib
import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from indexer.errors import E5SearchError
from indexer.types import Corpus, Qrels, Queries

logger = logging.getLogger(__name__)

OnUnknown = Literal["error", "warn"]
QRELS_FORMAT = "query-id<TAB>corpus-id<TAB>score (integer)"


class DatasetError(E5SearchError, ValueError):
    """A BEIR folder is missing a file or has a malformed line."""


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DatasetError(f"{folder}: no {stem} or {stem}.gz; is this a BEIR dataset folder?")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                yield lineno, line.rstrip("\n")


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    for lineno, line in _lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or "_id" not in record:
            raise DatasetError(f"{path}:{lineno}: expected a JSON object with an \"_id\" field")
        yield lineno, record


def corpus_path(dataset_dir: str | Path) -> Path:
    return _find(Path(dataset_dir), "corpus.jsonl")


def load_corpus(dataset_dir: str | Path) -> Corpus:
    path = corpus_path(dataset_dir)
    corpus: Corpus = {}
    for lineno, rec in _jsonl(path):
        doc_id = str(rec["_id"])
        if doc_id in corpus:
            raise DatasetError(f"{path}:{lineno}: duplicate _id {doc_id!r}; document ids must be unique")
        corpus[doc_id] = {"title": str(rec.get("title") or ""), "text": str(rec.get("text") or "")}
    return corpus


def load_queries(dataset_dir: str | Path) -> Queries:
    path = _find(Path(dataset_dir), "queries.jsonl")
    return {str(rec["_id"]): str(rec.get("text") or "") for _, rec in _jsonl(path)}


def list_splits(dataset_dir: str | Path) -> list[str]:
    folder = Path(dataset_dir) / "qrels"
    if not folder.is_dir():
        return []
    names = {p.name.removesuffix(".gz").removesuffix(".tsv") for p in folder.glob("*.tsv*")}
    return sorted(names)


def load_qrels(dataset_dir: str | Path, split: str) -> Qrels:
    folder = Path(dataset_dir) / "qrels"
    try:
        path = _find(folder, f"{split}.tsv")
    except DatasetError:
        have = list_splits(dataset_dir)
        raise DatasetError(
            f"{dataset_dir}: no qrels for split {split!r}; splits present: {', '.join(have) or 'none'}"
        ) from None
    qrels: Qrels = {}
    for lineno, line in _lines(path):
        parts = line.split("\t")
        if lineno == 1 and parts[0].strip().lower() in ("query-id", "query_id", "qid"):
            continue  # the BEIR header
        if len(parts) != 3 or not _is_int(parts[2]):
            raise DatasetError(f"{path}:{lineno}: expected {QRELS_FORMAT}, got {line!r}")
        qid, doc_id = parts[0].strip(), parts[1].strip()
        qrels.setdefault(qid, {})[doc_id] = int(parts[2])
    return qrels


def _is_int(text: str) -> bool:
    try:
        int(text.strip())
    except ValueError:
        return False
    return True


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
            f.write(json.dumps({"_id": doc_id, "title": doc.get("title", ""), "text": doc.get("text", "")},
                               ensure_ascii=False) + "\n")
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
