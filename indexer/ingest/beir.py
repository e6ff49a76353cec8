"""BEIR files: corpus files found in a folder being indexed, and BEIR dataset folders for the eval and trainer.

Corpus files (``.jsonl``, ``.jsonl.gz``, ``.json``) are all or nothing: a malformed line, a record without
``_id``/``text`` or a duplicate ``_id`` skips the whole file with a reason naming the line (SkipFile), so a
half-indexed corpus never goes unnoticed. Records become documents ``"rel/corpus.jsonl#<_id>"`` with
``external_id=_id``. Dataset folders (corpus, queries, qrels per split) are read by the functions at the end of
this module, for every caller, with :class:`~indexer.errors.DatasetError` naming file and line.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from indexer.errors import DatasetError, SkipFile
from indexer.ingest.limits import Deadline, ReadLimits
from indexer.ingest.text import _normalise_newlines, decode_text, make_document, storable_path
from indexer.types import Corpus, Document, Qrels, Queries

logger = logging.getLogger(__name__)


def _beir_documents(
    records: Iterable[tuple[int, object]], rel: str, what: str, deadline: Deadline
) -> list[Document]:
    """``(line or item number, parsed JSON)`` pairs → one Document per record; any bad record skips the file."""
    docs: list[Document] = []
    seen: dict[str, int] = {}
    for number, record in records:
        deadline.check()
        where = f"{what} {number}"
        if not isinstance(record, dict) or "_id" not in record or "text" not in record:
            got = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise SkipFile(
                f'{where}: not a BEIR corpus record: expected an object with "_id", "text" '
                f'(and optional "title"), got {got}'
            )
        doc_id, text, title = record["_id"], record["text"], record.get("title") or ""
        if not isinstance(doc_id, (str, int)) or not isinstance(text, str) or not isinstance(title, str):
            raise SkipFile(f'{where}: "_id" must be a string and "text"/"title" strings')
        doc_id = storable_path(str(doc_id))  # a JSON "\\udc00" escape cannot be stored as it is
        if doc_id in seen:
            raise SkipFile(f"{where}: duplicate _id {doc_id!r} (first on {what} {seen[doc_id]})")
        seen[doc_id] = number
        body = _normalise_newlines(text).strip() or title.strip()
        if not body:
            logger.debug("%s: %s: record %r has no text; left out", rel, where, doc_id)
            continue
        docs.append(make_document(f"{rel}#{doc_id}", title, [((), body)], "jsonl", external_id=doc_id))
    if not docs:
        raise SkipFile(f"no records with text in this BEIR {'file' if what == 'line' else 'list'}")
    return docs


def _jsonl_records(text: str) -> Iterator[tuple[int, object]]:
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as e:
                raise SkipFile(f"line {number}: invalid JSON: {e.msg} (column {e.colno})") from None


def _read_jsonl(data: bytes, path: Path, rel: str, limits: ReadLimits) -> list[Document]:
    return _beir_documents(_jsonl_records(decode_text(data)), rel, "line", limits.deadline)


def _read_json(data: bytes, path: Path, rel: str, limits: ReadLimits) -> list[Document]:
    try:
        value = json.loads(decode_text(data))
    except json.JSONDecodeError as e:
        raise SkipFile(f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        value = [{"_id": k, **v} for k, v in value.items()]  # BEIR's in-memory corpus: {_id: {title, text}}
    if not isinstance(value, list):
        raise SkipFile(
            f'not a BEIR corpus: expected a list of objects with "_id" and "text", '
            f"got a JSON {type(value).__name__}"
        )
    return _beir_documents(enumerate(value, start=1), rel, "item", limits.deadline)


# ------------------------------------------------------------------------------------ BEIR dataset folders
# Layout (Thakur et al. 2021): DIR/corpus.jsonl[.gz], DIR/queries.jsonl[.gz], DIR/qrels/{split}.tsv[.gz].
# The eval (eval.datasets), the trainer (trainer.pairs) and the product's own file reader above all read BEIR
# files through these, so a malformed line is the same DatasetError with the same line number everywhere.
QRELS_FORMAT = "query-id<TAB>corpus-id<TAB>score (integer)"


def open_text(path: Path) -> TextIO:
    """A UTF-8 text file, gzip-compressed when its name ends in ``.gz``."""
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def find_file(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DatasetError(f"{folder}: no {stem} or {stem}.gz; is this a BEIR dataset folder?")


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    with open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                yield lineno, line.rstrip("\n")


def jsonl_records(path: Path, require_id: bool = True) -> Iterator[tuple[int, dict]]:
    """(line number, JSON object) per non-empty line; DatasetError naming the line when one is not an object
    (or, with ``require_id``, has no ``_id``)."""
    for lineno, line in text_lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or (require_id and "_id" not in record):
            field = ' with an "_id" field' if require_id else ""
            raise DatasetError(f"{path}:{lineno}: expected a JSON object{field}")
        yield lineno, record


def corpus_path(dataset_dir: str | Path) -> Path:
    return find_file(Path(dataset_dir), "corpus.jsonl")


def load_corpus(dataset_dir: str | Path) -> Corpus:
    path = corpus_path(dataset_dir)
    corpus: Corpus = {}
    for lineno, rec in jsonl_records(path):
        doc_id = str(rec["_id"])
        if doc_id in corpus:
            raise DatasetError(f"{path}:{lineno}: duplicate _id {doc_id!r}; document ids must be unique")
        corpus[doc_id] = {"title": str(rec.get("title") or ""), "text": str(rec.get("text") or "")}
    return corpus


def load_queries(dataset_dir: str | Path) -> Queries:
    path = find_file(Path(dataset_dir), "queries.jsonl")
    return {str(rec["_id"]): str(rec.get("text") or "") for _, rec in jsonl_records(path)}


def list_splits(dataset_dir: str | Path) -> list[str]:
    folder = Path(dataset_dir) / "qrels"
    if not folder.is_dir():
        return []
    names = {p.name.removesuffix(".gz").removesuffix(".tsv") for p in folder.glob("*.tsv*")}
    return sorted(names)


def load_qrels(dataset_dir: str | Path, split: str) -> Qrels:
    folder = Path(dataset_dir) / "qrels"
    try:
        path = find_file(folder, f"{split}.tsv")
    except DatasetError:
        have = list_splits(dataset_dir)
        raise DatasetError(
            f"{dataset_dir}: no qrels for split {split!r}; splits present: {', '.join(have) or 'none'}"
        ) from None
    qrels: Qrels = {}
    for lineno, line in text_lines(path):
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
