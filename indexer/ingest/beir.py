"""File formats → :class:`~indexer.types.Document`.

Scope: plain text (.txt), Markdown (.md, .markdown), reStructuredText (.rst), HTML (.html, .htm), PDF, DOCX and
BEIR corpora (.jsonl, .jsonl.gz, .json). Each reader returns sections that carry their heading path; the caller
chunks them. Anything that goes wrong with a file raises :class:`~indexer.errors.SkipFile` with a reason that a
person can act on; no library exception escapes :func:`read_documents`.

Decisions worth knowing:

- ``Document.path`` is the path relative to the indexed folder, in POSIX form; records of a BEIR file are
  ``"rel/corpus.jsonl#<_id>"`` with ``external_id=_id``.
- Sections are stripped and never empty; ``Section.start`` is the offset in ``Document.text``, which joins the
  sections with a blank line.
- PDF: one section per page with heading path ``("p. 3",)``, so every chunk knows its page.
- BEIR files are all or nothing: a malformed line, a record without ``_id``/``text`` or a duplicate ``_id``
  skips the whole file with a reason naming the line, so a half-indexed corpus never goes unnoticed.
- Folder walks yield supported files only (others are not documents); a single file given directly is yielded
  whatever its suffix, so an unsupported one is reported as skipped rather than silently ignored.
- Text encodings: a BOM wins, then strict UTF-8, then charset-normalizer with near-ties broken towards today's
  common encodings (cp1252 before Mac Roman). NUL bytes without a UTF-16/32 BOM mean binary: skipped.
- Titles: HTML ``<title>`` (else first h1), YAML front matter ``title:`` (else first Markdown H1), the first RST
  section title, DOCX core title (else first Title/Heading paragraph), PDF ``/Title``; else the file stem with
  ``_`` and ``-`` as spaces (always so for .txt). BEIR records keep their own title, possibly empty.

Non-goals: OCR of scanned PDFs, legacy .doc, spreadsheets, e-mail formats, DOCX text boxes/headers/footers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from indexer.errors import SkipFile
from indexer.ingest.text import _normalise_newlines, decode_text, make_document
from indexer.types import Document

logger = logging.getLogger(__name__)


def _beir_documents(records: Iterable[tuple[int, object]], rel: str, what: str) -> list[Document]:
    """``(line or item number, parsed JSON)`` pairs → one Document per record; any bad record skips the file."""
    docs: list[Document] = []
    seen: dict[str, int] = {}
    for number, record in records:
        where = f"{what} {number}"
        if not isinstance(record, dict) or "_id" not in record or "text" not in record:
            got = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise SkipFile(f'{where}: not a BEIR corpus record: expected an object with "_id", "text" '
                           f'(and optional "title"), got {got}')
        doc_id, text, title = record["_id"], record["text"], record.get("title") or ""
        if not isinstance(doc_id, (str, int)) or not isinstance(text, str) or not isinstance(title, str):
            raise SkipFile(f'{where}: "_id" must be a string and "text"/"title" strings')
        doc_id = str(doc_id)
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


def _read_jsonl(data: bytes, path: Path, rel: str) -> list[Document]:
    return _beir_documents(_jsonl_records(decode_text(data)), rel, "line")


def _read_json(data: bytes, path: Path, rel: str) -> list[Document]:
    try:
        value = json.loads(decode_text(data))
    except json.JSONDecodeError as e:
        raise SkipFile(f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        value = [{"_id": k, **v} for k, v in value.items()]  # BEIR's in-memory corpus: {_id: {title, text}}
    if not isinstance(value, list):
        raise SkipFile(f'not a BEIR corpus: expected a list of objects with "_id" and "text", '
                       f"got a JSON {type(value).__name__}")
    return _beir_documents(enumerate(value, start=1), rel, "item")
