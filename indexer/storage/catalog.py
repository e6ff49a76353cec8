"""Reading chunks and documents back out of an index's SQLite database: hits, passages, filters, counts.

Functions of a :class:`~sqlalchemy.orm.Session`: the search facade runs all reads of one query in one session,
one SQLite snapshot, so the rows it hydrates belong to the generation it ranked with. Every reader (the CLI, the
app, the eval) asks the same questions the same way. Non-goal: writing (that is :mod:`indexer.build`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from indexer.errors import IndexStateError
from indexer.storage.store import ChunkRow, DocumentRow, FileRow
from indexer.types import Hit, Ranked

_MAX_IN = 900  # ids per IN (...) list: below SQLite's historical limit of 999 bound parameters
# The page heading each paged reader puts first in a section's heading path (indexer.ingest.office, .slides).
# Read back here, not stored apart, so that indexes built before pages were shown get pages too.
_PAGE_HEADINGS = {"pdf": re.compile(r"p\. (\d+)"), "pptx": re.compile(r"slide (\d+)")}


def page_of(file_type: str, heading_path: Sequence[str]) -> int | None:
    """The page (PDF) or slide (PPTX) number a chunk is on, from its heading path; None for unpaged sources.

    >>> page_of("pdf", ("p. 3",)), page_of("pptx", ("slide 2", "Results")), page_of("md", ("p. 3",))
    (3, 2, None)
    """
    pattern = _PAGE_HEADINGS.get(file_type)
    match = pattern.fullmatch(heading_path[0]) if pattern and heading_path else None
    return int(match.group(1)) if match else None


def chunk_ids_where(
    session: Session, lang: str | None = None, file_type: str | None = None, path_prefix: str | None = None
) -> list[int]:
    """Ids of the chunks in language ``lang``, of documents of ``file_type`` under ``path_prefix``, ascending."""
    stmt = select(ChunkRow.id).join(DocumentRow)
    if lang:
        stmt = stmt.where(ChunkRow.lang == lang)
    if file_type:
        stmt = stmt.where(DocumentRow.file_type == file_type.lstrip(".").lower())
    if path_prefix:
        stmt = stmt.where(DocumentRow.path.startswith(path_prefix.lstrip("/"), autoescape=True))
    return sorted(session.scalars(stmt))


def passage_parts(session: Session, chunk_ids: Sequence[int]) -> dict[int, tuple[str, tuple[str, ...], str]]:
    """chunk id -> (document title, heading path, chunk text): what the encoder's passage was made of."""
    rows = session.execute(
        select(ChunkRow.id, DocumentRow.title, ChunkRow.heading_path, ChunkRow.text)
        .join(DocumentRow)
        .where(ChunkRow.id.in_(list(chunk_ids)))
    ).all()
    return {r[0]: (r[1], tuple(json.loads(r[2])), r[3]) for r in rows}


def hits(session: Session, ranked: Ranked, before: dict[int, int] | None) -> list[Hit]:
    """``ranked`` hydrated into hits; ``before`` maps chunk id -> rank before reranking (for the movement)."""
    rows = {
        c.id: c for c in session.scalars(select(ChunkRow).where(ChunkRow.id.in_([cid for cid, _ in ranked])))
    }
    out = []
    for rank, (cid, score) in enumerate(ranked, start=1):
        c = rows.get(cid)
        if c is None:  # the index changed under us; skip rather than show a ghost
            continue
        d = c.document
        out.append(
            Hit(
                rank=rank,
                score=score,
                chunk_id=cid,
                doc_path=d.path,
                title=d.title,
                text=c.text,
                lang=c.lang,
                heading_path=c.headings,
                doc_id=d.external_id,
                prev_rank=before.get(cid) if before is not None else None,
                page=page_of(d.file_type, c.headings),
            )
        )
    return out


def chunk_langs(session: Session, chunk_ids: Iterable[int]) -> dict[int, str]:
    """chunk id -> language (``ChunkRow.lang``) for ``chunk_ids``, in the session's snapshot; unknown ids are left
    out. Asked per query for the few chunks fusion reads (cheaper than holding every chunk's language)."""
    ids = sorted(set(chunk_ids))
    out: dict[int, str] = {}
    for i in range(0, len(ids), _MAX_IN):
        rows = session.execute(
            select(ChunkRow.id, ChunkRow.lang).where(ChunkRow.id.in_(ids[i : i + _MAX_IN]))
        )
        out.update((cid, lang) for cid, lang in rows)
    return out


def doc_keys(session: Session) -> dict[int, str]:
    """chunk id -> document key (external id, else path), for document-level runs."""
    rows = session.execute(select(ChunkRow.id, DocumentRow.external_id, DocumentRow.path).join(DocumentRow))
    return {cid: ext if ext is not None else path for cid, ext, path in rows}


def chunk(session: Session, chunk_id: int, neighbours: int = 0) -> dict:
    """A chunk with its document's metadata and up to ``neighbours`` chunks either side."""
    c = session.get(ChunkRow, chunk_id)
    if c is None:
        raise IndexStateError(f"chunk {chunk_id} is not in this index")
    d = c.document
    near = session.scalars(
        select(ChunkRow)
        .where(
            ChunkRow.document_id == d.id,
            ChunkRow.ordinal.between(c.ordinal - neighbours, c.ordinal + neighbours),
        )
        .order_by(ChunkRow.ordinal)
    )
    return {
        "chunk_id": c.id,
        "text": c.text,
        "heading_path": list(c.headings),
        "lang": c.lang,
        "start": c.start,
        "end": c.end,
        "ordinal": c.ordinal,
        "neighbours": [
            {"chunk_id": n.id, "ordinal": n.ordinal, "text": n.text} for n in near if n.id != c.id
        ],
        "document": {
            "path": d.path,
            "title": d.title,
            "lang": d.lang,
            "file_type": d.file_type,
            "external_id": d.external_id,
            "n_chars": d.n_chars,
            "n_chunks": len(d.chunks),
            "size": d.file.size,
            "mtime": d.file.mtime,
            "content_hash": d.file.content_hash,
        },
    }


def source_file(session: Session, chunk_id: int) -> str:
    """The file a chunk was read from, relative to the index's source root (IndexStateError if not in the index)."""
    path = session.scalar(
        select(FileRow.path)
        .join(DocumentRow, DocumentRow.file_id == FileRow.id)
        .join(ChunkRow)
        .where(ChunkRow.id == chunk_id)
    )
    if path is None:
        raise IndexStateError(f"chunk {chunk_id} is not in this index")
    return path


def counts(session: Session) -> dict:
    """Files, documents and chunks; chunks and documents per language; documents per file type; skipped files."""

    def grouped(column) -> dict:
        return dict(session.execute(select(column, func.count()).group_by(column)).all())

    return {
        "files": session.scalar(select(func.count()).select_from(FileRow).where(FileRow.status == "indexed")),
        "documents": session.scalar(select(func.count()).select_from(DocumentRow)),
        "chunks": session.scalar(select(func.count()).select_from(ChunkRow)),
        "chunk_languages": grouped(ChunkRow.lang),
        "document_languages": grouped(DocumentRow.lang),
        "file_types": grouped(DocumentRow.file_type),
        "skipped": [
            {"path": f.path, "reason": f.reason}
            for f in session.scalars(
                select(FileRow).where(FileRow.status == "skipped").order_by(FileRow.path)
            )
        ],
    }
