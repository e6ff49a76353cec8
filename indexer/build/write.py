"""The indexing job's second half: everything one transaction changes, and a folder's next generation files.

Changed documents are rewritten, removed ones deleted, and the manifest's generation is bumped in the same
transaction: that commit is the atomic switch. A folder index writes FAISS and BM25 files of the next generation
beside the current ones first (:mod:`indexer.storage.layout`); a PostgreSQL index writes its vectors as rows of
the transaction itself (:mod:`indexer.storage.pg_vectors`).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session
from tqdm.auto import tqdm

from indexer import __version__
from indexer.build.scan import _Prepared
from indexer.cache import package_versions
from indexer.config import IndexConfig
from indexer.encoding.encoder import TextEncoder
from indexer.ingest.chunking import passage_text
from indexer.retrieval.dense import DenseIndex
from indexer.storage import pg_vectors
from indexer.storage.embcache import text_hash
from indexer.storage.layout import Layout
from indexer.storage.store import ChunkRow, DocumentRow, FileRow, utcnow, write_manifest
from indexer.storage.stores import FolderStore, Store
from indexer.types import Progress

_RECORDED_PACKAGES = ("faiss-cpu", "sentence-transformers", "transformers", "torch", "bm25s", "sqlalchemy")


def _insert_file(
    session: Session, prep: _Prepared, vectors: dict[str, np.ndarray]
) -> tuple[list[int], list[np.ndarray]]:
    status = "skipped" if prep.reason else "indexed"
    row = FileRow(
        path=prep.rel,
        content_hash=prep.content_hash,
        mtime=prep.mtime,
        size=prep.size,
        status=status,
        reason=prep.reason,
        indexed_at=utcnow(),
    )
    session.add(row)
    session.flush()
    ids: list[int] = []
    vecs: list[np.ndarray] = []
    for doc, chunks, langs, texts in prep.docs:
        lang = Counter(langs).most_common(1)[0][0] if langs else "und"
        drow = DocumentRow(
            file_id=row.id,
            path=doc.path,
            external_id=doc.external_id,
            title=doc.title,
            file_type=doc.file_type,
            lang=lang,
            n_chars=len(doc.text),
        )
        session.add(drow)
        session.flush()
        if not chunks:
            continue
        params = [
            {
                "document_id": drow.id,
                "ordinal": j,
                "text": c.text,
                "start": c.start,
                "end": c.end,
                "heading_path": json.dumps(list(c.heading_path), ensure_ascii=False),
                "lang": lg,
                "n_tokens": c.n_tokens,
                "text_hash": text_hash(t),
            }
            for j, (c, lg, t) in enumerate(zip(chunks, langs, texts))
        ]
        new_ids = session.scalars(
            insert(ChunkRow).returning(ChunkRow.id, sort_by_parameter_order=True), params
        ).all()
        ids.extend(new_ids)
        vecs.extend(vectors[text_hash(t)] for t in texts)
    return ids, vecs


def all_passages(session: Session) -> tuple[list[int], list[str], list[str], list[str]]:
    """Every chunk's id, passage text (what was encoded and what BM25 indexes), language and text hash."""
    rows = session.execute(
        select(
            ChunkRow.id,
            ChunkRow.text,
            ChunkRow.heading_path,
            ChunkRow.lang,
            ChunkRow.text_hash,
            DocumentRow.title,
        )
        .join(DocumentRow, ChunkRow.document_id == DocumentRow.id)
        .order_by(ChunkRow.id)
    ).all()
    ids = [r[0] for r in rows]
    texts = [passage_text(r[5], tuple(json.loads(r[2])), r[1]) for r in rows]
    return ids, texts, [r[3] for r in rows], [r[4] for r in rows]


def _dense_kind(config: IndexConfig, n_vectors: int, threshold: int | None = None) -> str:
    """``config.dense_kind``, with "auto" resolved: HNSW above ``threshold`` vectors (``config.ann_threshold``)."""
    if config.dense_kind != "auto":
        return config.dense_kind
    return "hnsw" if n_vectors > (config.ann_threshold if threshold is None else threshold) else "flat"


class _FolderVectors:
    """A folder index's vectors and BM25: the next generation's FAISS and BM25 files, written beside the
    current ones and fsync'ed before the caller commits."""

    def __init__(self, layout: Layout, manifest: dict, dim: int, rebuild: bool):
        self.layout, self.rebuild, self.dim = layout, rebuild, dim
        # the current generation's vectors to update; a missing or unreadable file is an error that names
        # --repair, never an empty index (which would silently drop every unchanged chunk's vector)
        gen = manifest.get("generation", 0)
        self.dense = DenseIndex.load(layout.dense(gen)) if gen and not rebuild else DenseIndex.empty(dim)

    def remove(self, ids: list[int]) -> None:
        self.dense.remove(set(ids))

    def add(self, ids: list[int], vecs: np.ndarray) -> None:
        self.dense.add(np.asarray(ids, dtype=np.int64), vecs)

    def finish(
        self, session: Session, gen: int, config: IndexConfig, vectors: dict[str, np.ndarray], show: bool
    ) -> tuple[str, int]:
        from indexer.retrieval.bm25 import BM25Index

        ids, texts, langs, hashes = all_passages(session)
        if self.rebuild:
            self.dense = DenseIndex.empty(self.dim)
            if ids:
                self.dense.add(np.asarray(ids, dtype=np.int64), np.stack([vectors[h] for h in hashes]))
        kind = _dense_kind(config, len(self.dense))
        if kind == "hnsw":
            self.dense.build_ann(m=config.hnsw_m)
        self.dense.save(self.layout.dense(gen), self.layout.hnsw(gen))
        bm25 = BM25Index.build(ids, texts, langs, k1=config.bm25_k1, b=config.bm25_b, show_progress=show)
        bm25.save(self.layout.bm25(gen))
        self.layout.sync(gen)
        return kind, len(ids)


class _PgVectors:
    """A PostgreSQL index's vectors: rows of the caller's transaction. A removed chunk's row goes with it
    (ON DELETE CASCADE); BM25 is derived by each reader from the committed chunks, so nothing else is written."""

    def __init__(self, session: Session, dim: int, m: int, rebuild: bool):
        self.session, self.rebuild = session, rebuild
        pg_vectors.ensure_table(session, dim, m)

    def remove(self, ids: list[int]) -> None:
        pass  # cascaded from the chunks' rows

    def add(self, ids: list[int], vecs: np.ndarray) -> None:
        pg_vectors.insert(self.session, ids, vecs)

    def finish(
        self, session: Session, gen: int, config: IndexConfig, vectors: dict[str, np.ndarray], show: bool
    ) -> tuple[str, int]:
        rows = session.execute(select(ChunkRow.id, ChunkRow.text_hash).order_by(ChunkRow.id)).all()
        if self.rebuild and rows:
            pg_vectors.delete_all(session)
            pg_vectors.insert(session, [r[0] for r in rows], np.stack([vectors[r[1]] for r in rows]))
        return _dense_kind(config, len(rows), min(config.ann_threshold, pg_vectors.EXACT_SCAN_LIMIT)), len(
            rows
        )


def _write(
    session: Session,
    store: Store,
    manifest: dict,
    prepared: list[_Prepared],
    removed: list[str],
    vectors: dict[str, np.ndarray],
    encoder: TextEncoder,
    config: IndexConfig,
    root: Path,
    show_progress: bool,
    progress: Progress | None,
    rebuild_dense: bool = False,
) -> int:
    """All changes in the caller's transaction; returns the new generation (a folder's files written and
    fsync'ed, nothing committed). ``rebuild_dense`` writes every chunk's vector from ``vectors`` instead of
    updating the current ones (``--repair``)."""
    gone = [p.rel for p in prepared if not p.is_new] + removed
    old_ids = (
        session.scalars(
            select(ChunkRow.id).join(DocumentRow).join(FileRow).where(FileRow.path.in_(gone))
        ).all()
        if gone
        else []
    )
    if gone:
        session.execute(delete(FileRow).where(FileRow.path.in_(gone)))
    sink: _FolderVectors | _PgVectors = (
        _FolderVectors(store.layout, manifest, encoder.dim, rebuild_dense)
        if isinstance(store, FolderStore)
        else _PgVectors(session, encoder.dim, config.hnsw_m, rebuild_dense)
    )
    sink.remove(list(old_ids))
    for prep in tqdm(prepared, desc="writing", unit="file", disable=not show_progress):
        ids, vecs = _insert_file(session, prep, vectors)
        if ids:
            sink.add(ids, np.stack(vecs))
    if progress:
        progress("writing", 0, 1)
    gen = manifest.get("generation", 0) + 1
    kind, n_chunks = sink.finish(session, gen, config, vectors, show_progress)
    write_manifest(session, _manifest_values(manifest, gen, kind, encoder, config, root, n_chunks))
    if progress:
        progress("writing", 1, 1)
    return gen


def _manifest_values(
    manifest: dict, gen: int, kind: str, encoder: TextEncoder, config: IndexConfig, root: Path, n_chunks: int
) -> dict:
    return {
        "schema_version": 1,
        "generation": gen,
        "source_root": str(root),
        "model": encoder.describe(),
        "dim": encoder.dim,
        "dense_kind": kind,
        "config": config.to_dict(),
        "versions": {"e5search": __version__, **package_versions(*_RECORDED_PACKAGES)},
        "n_chunks": n_chunks,
        "created_at": manifest.get("created_at", utcnow()),
        "updated_at": utcnow(),
    }
